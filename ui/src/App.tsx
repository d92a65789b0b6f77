// The window's layout: the top bar, the plans sidebar, and the active tab. State lives in the
// feature hooks; this file only wires them together.
import { useCallback, useMemo, useState } from "react";
import type { Finding } from "./lib/ipc";
import { Banners } from "./app/Banners";
import { Modal } from "./app/Modal";
import { TopBar, type Tab } from "./app/TopBar";
import { useAppInfo } from "./app/useAppInfo";
import { useBanners } from "./app/useBanners";
import { useModal } from "./app/useModal";
import { NoPlan } from "./plans/NoPlan";
import { PlanSidebar } from "./plans/PlanSidebar";
import { usePlanActions } from "./plans/usePlanActions";
import { usePlanEditor } from "./plans/usePlanEditor";
import { usePlanList } from "./plans/usePlanList";
import { DesignView } from "./design/DesignView";
import { Palette } from "./design/Palette";
import { usePalette } from "./design/usePalette";
import { useSelection } from "./design/useSelection";
import { GenerateView } from "./generate/GenerateView";
import { InstallView } from "./install/InstallView";
import { useBootServer } from "./install/useBootServer";
import { fromCheck, stillTaken, type LanFinding } from "./install/lanFindings";
import { ExportView } from "./export/ExportView";
import { ClusterView } from "./cluster/ClusterView";
import { ImagesView } from "./images/ImagesView";
import { useImages } from "./images/useImages";

export function App() {
  const [tab, setTab] = useState<Tab>("design");
  const banners = useBanners();
  const { report, notify } = banners;
  const modal = useModal();
  const info = useAppInfo(report);
  const list = usePlanList(report);
  const selection = useSelection();
  const editor = usePlanEditor({ dialogs: modal, modalOpen: modal.shown !== null, report, onSaved: list.refresh, onSwitch: selection.clear });
  const actions = usePlanActions({ editor, refreshPlans: list.refresh, dialogs: modal, report, notify });
  const boot = useBootServer(report);
  const images = useImages(report);
  const current = editor.current;
  const plan = current?.plan ?? null;
  // Static addresses the LAN says are taken (checked at Start), shown on their nodes until the
  // node gets another address.
  const [lan, setLan] = useState<LanFinding[]>([]);
  const findings = useMemo(() => [...editor.findings, ...stillTaken(lan, plan)], [editor.findings, lan, plan]);
  const palette = usePalette({ booted: boot.sightings, plan, edit: editor.edit, select: selection.select, report, notify });

  // The cluster finished an upgrade and Flatlab saved the plan: show the new revision, unless
  // the user has unsaved changes (which would then carry the old K3s version).
  const { open: openPlan, dirty } = editor;
  const refreshPlans = list.refresh;
  const openName = current?.name ?? null;
  const onRevision = useCallback(
    (revision: number) => {
      void refreshPlans();
      if (!openName) return;
      if (dirty) notify(`The cluster finished its K3s upgrade and Flatlab saved revision ${revision}; your unsaved changes still say the old version.`);
      else void openPlan(openName, false);
    },
    [refreshPlans, openName, dirty, notify, openPlan],
  );

  // A finding chosen anywhere shows its node and field on the Design tab.
  const { reveal } = selection;
  const showFinding = useCallback(
    (finding: Finding) => {
      if (!plan) return;
      reveal(finding, plan);
      setTab("design");
    },
    [plan, reveal],
  );

  return (
    <div className="app">
      <TopBar editor={editor} tab={tab} onTab={setTab} bootRunning={boot.running} info={info} inform={modal.inform} />
      <Banners banners={banners} />

      <div className="body">
        <PlanSidebar plans={list.plans} open={current?.name ?? null} dirty={editor.dirty} actions={actions}>
          {tab === "design" && current && (
            <Palette sightings={palette.sightings} planMacs={palette.macs} scanning={palette.scanning} onScan={palette.scan} onAdd={palette.addToPlan} />
          )}
        </PlanSidebar>

        <main className="main">
          {!current ? (
            <NoPlan plans={list.plans} loading={editor.loading} actions={actions} />
          ) : tab === "design" ? (
            <DesignView
              plan={current.plan}
              planName={current.name}
              findings={findings}
              boot={boot.state}
              edit={editor.edit}
              selection={selection}
              onAddMachine={palette.addToPlan}
              onFinding={showFinding}
              onError={report}
              versions={images}
              onScan={palette.scan}
              onGo={setTab}
            />
          ) : tab === "generate" ? (
            <GenerateView plan={current.plan} findings={findings} onFinding={showFinding} />
          ) : tab === "images" ? (
            <ImagesView plan={current.plan} images={images} edit={editor.edit} onReport={report} />
          ) : tab === "install" ? (
            <InstallView
              plan={current.plan}
              planName={current.name}
              server={boot}
              ensureSaved={editor.settleDraft}
              confirm={modal.confirm}
              choose={modal.choose}
              onRestore={() => setTab("cluster")}
              images={images}
              onImages={() => setTab("images")}
              onLanFindings={(found) => setLan(fromCheck(found, current.plan))}
              onShowFinding={showFinding}
              onReport={report}
              onAddToPalette={(m) => {
                palette.show(m);
                setTab("design");
              }}
            />
          ) : tab === "cluster" ? (
            <ClusterView key={current.name} plan={current.plan} planName={current.name} dialogs={modal} onReport={report} onNotify={notify} onRevision={onRevision} />
          ) : (
            <ExportView planName={current.name} ensureSaved={editor.settleDraft} onReport={report} />
          )}
        </main>
      </div>
      {modal.shown && <Modal key={modal.shown.id} spec={modal.shown.spec} />}
    </div>
  );
}
