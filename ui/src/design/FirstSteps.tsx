// What an empty plan shows over its canvas: the steps from here to installed machines, in
// order, with what is done and what comes next.
import type { Plan } from "../lib/ipc";
import { useReadiness } from "../images/ImagesView";

interface Props {
  plan: Plan;
  /** Bumped when the mirror may have changed. */
  imagesGeneration: number;
  onScan: () => void;
  onAddServer: () => void;
  onGo: (tab: "images" | "install") => void;
}

export function FirstSteps({ plan, imagesGeneration, onScan, onAddServer, onGo }: Props) {
  const readiness = useReadiness(plan, imagesGeneration);
  const network = Boolean(plan.network?.subnet);
  const machines = plan.nodes.length > 0;
  const images = readiness !== null && readiness.flatcar_missing.length === 0;
  const steps = [
    {
      id: "network",
      done: network,
      title: "Network",
      text: network
        ? `The plan's network is ${plan.network?.subnet}${plan.network?.gateway ? ` through ${plan.network.gateway}` : ""}: your workstation's LAN. Change it under Network in the inspector.`
        : "Set the subnet, router and DNS of the LAN the machines are on, under Network in the inspector.",
      action: null,
    },
    {
      id: "machines",
      done: machines,
      title: "Machines",
      text: "Scan the network for machines that announce themselves, or start the boot server (Install) and switch your machines on to network-boot: they show up under Found on the network, to drag onto the canvas. Or add a server and type its MAC.",
      action: (
        <>
          <button onClick={onScan} data-testid="first-scan">
            Scan network
          </button>
          <button onClick={onAddServer} data-testid="first-add">
            Add a server
          </button>
        </>
      ),
    },
    {
      id: "images",
      done: images,
      title: "Images",
      text: images
        ? `Flatcar ${plan.os.version} is in the mirror.`
        : `Fetch Flatcar ${plan.os.version || "(pin a release)"} and K3s into the mirror, so that machines install with no internet.`,
      action: images ? null : (
        <button onClick={() => onGo("images")} data-testid="first-images">
          Open Images
        </button>
      ),
    },
    {
      id: "install",
      done: false,
      title: "Install",
      text: "Start the boot server, then network-boot each machine: Inspect it first to choose its install disk from what it reports, or let it install.",
      action: (
        <button onClick={() => onGo("install")} data-testid="first-install">
          Open Install
        </button>
      ),
    },
  ];
  const next = steps.find((s) => !s.done)?.id;
  return (
    <div className="first-steps panel" data-testid="first-steps">
      <h2>From here to a running cluster</h2>
      <ol>
        {steps.map((s) => (
          <li key={s.id} className={s.done ? "done" : s.id === next ? "next" : "todo"} data-testid={`step-${s.id}`} data-state={s.done ? "done" : s.id === next ? "next" : "todo"}>
            <b>
              {s.done ? "✓ " : ""}
              {s.title}
            </b>
            {s.id === next && <span className="badge next-badge">next</span>}
            <p className="small">{s.text}</p>
            {s.action && !s.done && <div className="buttons">{s.action}</div>}
          </li>
        ))}
      </ol>
    </div>
  );
}
