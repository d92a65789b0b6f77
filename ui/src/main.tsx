import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { DatabaseGate } from "./app/DatabaseGate";
import "./styles.css";

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <DatabaseGate>
        <App />
      </DatabaseGate>
    </StrictMode>,
  );
}
