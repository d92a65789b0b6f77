//! `boot.ipxe`: the node's iPXE script. Loads the Flatcar PXE kernel and initrd from the boot
//! server's mirror and hands the kernel the node's install config.
//!
//! The kernel writes to both the serial port and the screen; the last `console=` (the screen)
//! is where the install's own messages go, since hobbyists watch a monitor.

use flatlab_model::{ValidatedNode, ValidatedPlan};

use crate::Urls;

/// The initrd's name: the kernel's `initrd=` argument must name it, or UEFI boots hang.
const INITRD: &str = "flatcar_production_pxe_image.cpio.gz";
const KERNEL: &str = "flatcar_production_pxe.vmlinuz";

pub(crate) fn render(plan: &ValidatedPlan, node: &ValidatedNode, urls: &Urls) -> String {
    let os = &plan.plan().os;
    live_system_script(
        &format!(
            "network-install Flatcar {} ({}, {}) on node {} ({})",
            os.version,
            os.channel.as_str(),
            os.arch.as_str(),
            node.name,
            node.mac
        ),
        &urls.mirror_release,
        &format!("loading Flatcar {} for {}", os.version, node.name),
        &urls.install_ignition,
        &format!("Check that the boot server is running and its mirror holds {}. Rebooting in 30 seconds.", os.version),
    )
}

/// A script that boots the Flatcar PXE kernel and initrd from `mirror` with the Ignition config
/// at `ignition`, trying 10 times, then rebooting: the install's and the inspection's.
pub(crate) fn live_system_script(what: &str, mirror: &str, loading: &str, ignition: &str, failed: &str) -> String {
    format!(
        "#!ipxe
# Flatlab: {what}.
set mirror {mirror}
set attempt:int32 0

:load
inc attempt
iseq ${{attempt}} 11 && goto failed ||
echo Flatlab: {loading} (attempt ${{attempt}} of 10)
imgfree
kernel ${{mirror}}/{KERNEL} initrd={INITRD} flatcar.first_boot=1 ignition.config.url={ignition} console=ttyS0,115200n8 console=tty0 || goto retry
initrd --name {INITRD} ${{mirror}}/{INITRD} || goto retry
boot || goto retry

:retry
echo Flatlab: download failed, retrying in 5 seconds
sleep 5
goto load

:failed
echo Flatlab: could not load Flatcar from ${{mirror}} after 10 attempts.
echo {failed}
sleep 30
reboot
"
    )
}
