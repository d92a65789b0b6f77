/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));

// The Tauri window loads ui/dist in builds and this dev server (port 5173) in `tauri dev`.
export default defineConfig({
  root,
  plugins: [react()],
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  // ELK (auto-layout) is one 1.4 MB chunk, loaded only when the button is pressed.
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 1600 },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
  },
});
