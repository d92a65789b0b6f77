//! Flatlab's boot policy: what the boot server tells each machine, and where it keeps their
//! state. The protocol code in `bootd` asks through its `Booter` trait.

use flatlab_bootd::{
    AllowList, BootClient, BootFile, Booter, Firmware, Mac, MachineRecord, SaveFuture, Script, ScriptRequest, Stage,
    StrangerRecord,
};

use crate::Flatlab;

/// The boot policy of one plan's boot server.
pub(crate) struct PlanBooter {
    app: Flatlab,
    plan: String,
    /// The iPXE binaries the server has, by the firmware that runs them.
    bios: Option<String>,
    uefi_x64: Option<String>,
    uefi_arm64: Option<String>,
}

fn first_of(binaries: &AllowList, names: &[&str]) -> Option<String> {
    names.iter().find(|n| binaries.contains(n)).map(|n| (*n).to_owned())
}

impl PlanBooter {
    pub(crate) fn new(app: Flatlab, plan: &str, binaries: &AllowList) -> Self {
        PlanBooter {
            app,
            plan: plan.to_owned(),
            bios: first_of(binaries, &["undionly.kpxe"]),
            uefi_x64: first_of(binaries, &["snponly.efi", "ipxe.efi"]),
            uefi_arm64: first_of(binaries, &["snp-arm64.efi", "ipxe-arm64.efi"]),
        }
    }
}

/// How many times a machine the plan does not have asks again (15 s apart: 10 minutes) before
/// it goes on to its next boot device.
pub(crate) const STRANGER_ROUNDS: u32 = 40;

/// What a machine the plan does not have is told: it keeps asking for a while, so that adding
/// it to the plan (and arming it) or inspecting it takes effect without touching the machine.
fn stranger_script(mac: flatlab_bootd::Mac, http_base: &str, round: u32) -> String {
    if round >= STRANGER_ROUNDS {
        return format!(
            "#!ipxe
echo Flatlab: {mac} is still not in the plan; continuing with the next boot device.
exit
"
        );
    }
    let next = round + 1;
    let left = (STRANGER_ROUNDS - round) * 15 / 60;
    format!(
        "#!ipxe
echo
echo Flatlab: this machine ({mac}) is not in the plan.
echo Add it to the plan in the Flatlab app (it is listed under discovered machines), or Inspect it
echo there to see its hardware. Waiting for that (about {left} more minutes), then the next boot device.
sleep 15
chain --replace --autofree {http_base}/v1/boot/${{net0/mac:hexhyp}}.ipxe?round={next} || exit
"
    )
}

/// The mirror files whose download marks a stage.
const KERNEL: &str = "flatcar_production_pxe.vmlinuz";
const INITRD: &str = "flatcar_production_pxe_image.cpio.gz";

impl Booter for PlanBooter {
    fn boot_file(&self, client: &BootClient, http_base: &str) -> Option<BootFile> {
        // iPXE gets the script URL: handing it iPXE again would start a loop.
        if client.ipxe {
            return Some(BootFile::Url(format!("{http_base}/boot.ipxe")));
        }
        match client.firmware? {
            Firmware::Bios => self.bios.clone().map(BootFile::Tftp),
            Firmware::UefiX64 => self.uefi_x64.clone().map(BootFile::Tftp),
            Firmware::UefiArm64 => self.uefi_arm64.clone().map(BootFile::Tftp),
            // UEFI HTTP boot: x64 (16) or arm64 (19) wants a URL to a binary of its own kind.
            Firmware::UefiHttp => {
                let file = if client.arch == Some(19) { &self.uefi_arm64 } else { &self.uefi_x64 };
                file.as_ref().map(|f| BootFile::Url(format!("{http_base}/ipxe/{f}")))
            }
            // 32-bit UEFI cannot run the 64-bit iPXE.
            Firmware::UefiIa32 | Firmware::Other(_) => None,
        }
    }

    fn first_stage(&self, http_base: &str) -> String {
        // Make sure DHCP gave iPXE a boot file (a slow proxy reply can be missed), then chain to
        // this machine's own script.
        format!(
            "#!ipxe
# Flatlab boot server: first stage.
set attempt:int32 0
:dhcp
isset ${{filename}} && goto chain ||
inc attempt
iseq ${{attempt}} 10 && goto chain ||
echo Flatlab: waiting for the boot server's DHCP answer (attempt ${{attempt}})
dhcp || sleep 2
goto dhcp
:chain
chain --autofree {http_base}/v1/boot/${{net0/mac:hexhyp}}.ipxe?uuid=${{uuid}}&arch=${{buildarch}}&platform=${{platform}} || goto retry
# The machine's script returned (an installed UEFI machine, or a stranger): on to the next
# boot device. With status 1: UEFI firmware takes success for a finished boot and stops in its menu.
exit 1
:retry
echo Flatlab: the boot server did not answer; retrying in 5 seconds
sleep 5
goto chain
"
        )
    }

    fn script(&self, request: &ScriptRequest<'_>, http_base: &str) -> Script {
        let mac = request.mac;
        // An inspection comes first: the user asked to see the machine before it installs.
        if let Some(inspect) = request.inspect_script {
            return Script::Inspect(inspect.to_owned());
        }
        match (request.stage, request.install_script) {
            (Some(stage), _) if stage.is_installed() => Script::Other(format!(
                "#!ipxe
# Flatlab: {mac} is installed; booting from its disk. Arm it again in Flatlab to reinstall.
echo Flatlab: this machine is installed, booting from disk
iseq ${{platform}} efi && exit ||
sanboot --no-describe --drive 0x80 || exit
"
            )),
            (Some(_), Some(script)) => Script::Install(script.to_owned()),
            _ => Script::Other(stranger_script(mac, http_base, request.round)),
        }
    }

    fn download_stage(&self, file: &str) -> Option<Stage> {
        match file {
            KERNEL => Some(Stage::Kernel),
            INITRD => Some(Stage::Initrd),
            _ => None,
        }
    }

    fn save(&self, record: MachineRecord) -> SaveFuture {
        let (app, plan) = (self.app.clone(), self.plan.clone());
        Box::pin(async move { app.save_record(&plan, &record).await.map_err(|e| format!("{e:#}")) })
    }

    fn save_inventory(&self, mac: Mac, node: &str, body: Vec<u8>) -> SaveFuture {
        let (app, plan, node) = (self.app.clone(), self.plan.clone(), node.to_owned());
        Box::pin(async move {
            app.save_inventory(&plan, &mac.to_string(), &node, &body).await.map_err(|e| format!("{e:#}"))
        })
    }

    fn save_stranger(&self, r: StrangerRecord) -> SaveFuture {
        let app = self.app.clone();
        Box::pin(async move {
            app.store()
                .record_discovered(&r.mac.to_string(), r.firmware.as_deref(), r.vendor_class.as_deref(), r.at)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn booter(binaries: &[&str]) -> (PlanBooter, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tmp");
        let app = Flatlab::open(&dir.path().join("db")).await.expect("opens");
        let mut list = AllowList::new();
        for b in binaries {
            list.insert(b, vec![1]);
        }
        (PlanBooter::new(app, "lab", &list), dir)
    }

    const MAC: Mac = Mac([0x52, 0x54, 0, 0, 0, 1]);

    #[tokio::test]
    async fn firmware_kinds_get_their_boot_file() {
        let (b, _dir) = booter(&["undionly.kpxe", "ipxe.efi"]).await;
        let base = "http://10.0.0.2:8080";
        let tftp = |n: &str| Some(BootFile::Tftp(n.into()));
        let url = |u: &str| Some(BootFile::Url(u.into()));
        let cases = [
            (Some(Firmware::Bios), Some(0), false, tftp("undionly.kpxe")),
            (Some(Firmware::UefiX64), Some(7), false, tftp("ipxe.efi")),
            (Some(Firmware::UefiX64), Some(9), false, tftp("ipxe.efi")),
            (Some(Firmware::UefiHttp), Some(16), false, url("http://10.0.0.2:8080/ipxe/ipxe.efi")),
            (Some(Firmware::UefiHttp), Some(19), false, None),
            (Some(Firmware::UefiIa32), Some(6), false, None),
            (Some(Firmware::UefiArm64), Some(11), false, None),
            (Some(Firmware::Bios), Some(0), true, url("http://10.0.0.2:8080/boot.ipxe")),
            (Some(Firmware::UefiX64), Some(7), true, url("http://10.0.0.2:8080/boot.ipxe")),
            (None, None, false, None),
        ];
        for (firmware, arch, ipxe, want) in cases {
            let client = BootClient { mac: MAC, firmware, arch, ipxe, planned: true };
            assert_eq!(b.boot_file(&client, base), want, "{firmware:?} {arch:?} ipxe={ipxe}");
        }
        let (only_snp, _dir) = booter(&["snponly.efi"]).await;
        let client =
            BootClient { mac: MAC, firmware: Some(Firmware::UefiX64), arch: Some(7), ipxe: false, planned: false };
        assert_eq!(only_snp.boot_file(&client, base), tftp("snponly.efi"));
        // With both, the SNP-only build: it drives the NIC through the firmware's own driver,
        // so its `exit` hands the firmware a NIC it can boot from again (Debian's ipxe.efi
        // left OVMF hung on exit, with no further boot entry tried).
        let (both, _dir) = booter(&["ipxe.efi", "snponly.efi", "ipxe-arm64.efi", "snp-arm64.efi"]).await;
        assert_eq!(both.boot_file(&client, base), tftp("snponly.efi"));
        let arm = BootClient { firmware: Some(Firmware::UefiArm64), arch: Some(11), ..client };
        assert_eq!(both.boot_file(&arm, base), tftp("snp-arm64.efi"));
    }

    #[tokio::test]
    async fn scripts_install_send_installed_machines_to_disk_and_tell_strangers_what_to_do() {
        let (b, _dir) = booter(&[]).await;
        let install = "#!ipxe\necho install\n";
        let base = "http://10.0.0.2:8080";
        let armed = ScriptRequest {
            mac: MAC,
            node: Some("cp1"),
            stage: Some(Stage::Armed),
            install_script: Some(install),
            inspect_script: None,
            round: 0,
        };
        assert_eq!(b.script(&armed, base), Script::Install(install.into()));
        let failed = ScriptRequest { stage: Some(Stage::Failed), ..armed };
        assert_eq!(b.script(&failed, base), Script::Install(install.into()), "a failed install starts over");
        let inspected = ScriptRequest { inspect_script: Some("#!ipxe\ninspect\n"), ..armed };
        assert_eq!(b.script(&inspected, base), Script::Inspect("#!ipxe\ninspect\n".into()), "inspection first");
        for installed in [Stage::Installed, Stage::Booted, Stage::K3sReady] {
            let Script::Other(text) = b.script(&ScriptRequest { stage: Some(installed), ..armed }, base) else {
                panic!("an installed machine is not installed again")
            };
            assert!(
                text.contains("iseq ${platform} efi && exit") && text.contains("sanboot --no-describe --drive 0x80")
            );
        }
        let stranger =
            ScriptRequest { mac: MAC, node: None, stage: None, install_script: None, inspect_script: None, round: 0 };
        let Script::Other(text) = b.script(&stranger, base) else { panic!("a stranger is not installed") };
        assert!(text.contains("52:54:00:00:00:01) is not in the plan"), "{text}");
        // It asks again, round after round, so that adding or inspecting it takes effect...
        assert!(
            text.contains("chain --replace --autofree http://10.0.0.2:8080/v1/boot/${net0/mac:hexhyp}.ipxe?round=1"),
            "{text}"
        );
        let Script::Other(text) = b.script(&ScriptRequest { round: 7, ..stranger }, base) else { panic!() };
        assert!(text.contains("?round=8"), "{text}");
        // ... for ten minutes, then goes on to its next boot device.
        let Script::Other(text) = b.script(&ScriptRequest { round: STRANGER_ROUNDS, ..stranger }, base) else {
            panic!()
        };
        assert!(text.contains("\nexit\n") && !text.contains("chain"), "{text}");
        let first = b.first_stage("http://10.0.0.2:8080");
        assert!(first.contains("chain --autofree http://10.0.0.2:8080/v1/boot/${net0/mac:hexhyp}.ipxe"), "{first}");
        // A machine script that returns (`exit` of an installed UEFI machine, a stranger's wait)
        // must end iPXE, so the firmware goes on to its disk, not loop back into the retry.
        let after_chain = first.split_once("|| goto retry\n").map(|(_, rest)| rest).unwrap_or_default();
        assert!(after_chain.lines().find(|l| !l.starts_with('#')) == Some("exit 1"), "{first}");
    }

    #[tokio::test]
    async fn the_pxe_kernel_and_initrd_mark_their_stages() {
        let (b, _dir) = booter(&[]).await;
        assert_eq!(b.download_stage("flatcar_production_pxe.vmlinuz"), Some(Stage::Kernel));
        assert_eq!(b.download_stage("flatcar_production_pxe_image.cpio.gz"), Some(Stage::Initrd));
        assert_eq!(b.download_stage("flatcar_production_image.bin.bz2"), None);
    }
}
