//! The boot policy the boot server's own tests run with: like Flatlab's (`api`'s `PlanBooter`),
//! with short scripts the tests can recognise, keeping every saved record.

use flatlab_bootd::{
    BootClient, BootFile, Booter, Firmware, Mac, MachineRecord, SaveFuture, Script, ScriptRequest, Stage,
    StrangerRecord,
};

/// A policy like Flatlab's, with short scripts the tests can recognise.
#[derive(Default)]
pub struct TestBooter {
    pub saved: std::sync::Mutex<Vec<MachineRecord>>,
    /// The inventories posted, by node.
    pub inventories: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
}

impl Booter for TestBooter {
    fn boot_file(&self, client: &BootClient, http_base: &str) -> Option<BootFile> {
        if client.ipxe {
            return Some(BootFile::Url(format!("{http_base}/boot.ipxe")));
        }
        match client.firmware? {
            Firmware::Bios => Some(BootFile::Tftp("undionly.kpxe".into())),
            Firmware::UefiX64 => Some(BootFile::Tftp("ipxe.efi".into())),
            Firmware::UefiHttp if client.arch == Some(16) => Some(BootFile::Url(format!("{http_base}/ipxe/ipxe.efi"))),
            _ => None,
        }
    }
    fn first_stage(&self, http_base: &str) -> String {
        format!("#!ipxe\nchain --autofree {http_base}/v1/boot/${{net0/mac:hexhyp}}.ipxe\n")
    }
    fn script(&self, r: &ScriptRequest<'_>, _: &str) -> Script {
        if let Some(inspect) = r.inspect_script {
            return Script::Inspect(inspect.to_owned());
        }
        match (r.stage, r.install_script) {
            (Some(s), _) if s.is_installed() => Script::Other("#!ipxe\necho boot from disk\nexit\n".into()),
            (Some(_), Some(script)) => Script::Install(script.to_owned()),
            _ => Script::Other(format!("#!ipxe\necho {} is not in the plan\nexit\n", r.mac)),
        }
    }
    fn download_stage(&self, file: &str) -> Option<Stage> {
        if file.ends_with("_pxe.vmlinuz") {
            Some(Stage::Kernel)
        } else if file.ends_with("_pxe_image.cpio.gz") {
            Some(Stage::Initrd)
        } else {
            None
        }
    }
    fn save(&self, record: MachineRecord) -> SaveFuture {
        self.saved.lock().expect("lock").push(record);
        Box::pin(async { Ok(()) })
    }
    fn save_stranger(&self, _: StrangerRecord) -> SaveFuture {
        Box::pin(async { Ok(()) })
    }
    fn save_inventory(&self, _: Mac, node: &str, body: Vec<u8>) -> SaveFuture {
        // Like Flatlab's: what is not JSON is refused.
        let ok = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
        if ok {
            self.inventories.lock().expect("lock").push((node.to_owned(), body));
        }
        Box::pin(async move { if ok { Ok(()) } else { Err("the inventory is not JSON".into()) } })
    }
}
