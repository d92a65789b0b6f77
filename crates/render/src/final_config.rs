//! `config.ign`: what the installed system applies on its first boot from disk.

use flatlab_model::{Role, ValidatedNode, ValidatedPlan};

use crate::ignition::{ConfigBuilder, IgnitionSpec, MODE_0644};
use crate::{Inputs, PLACEHOLDER_BASE_URL, Urls, addons, k3s};

pub(crate) fn render(
    plan: &ValidatedPlan,
    index: usize,
    node: &ValidatedNode,
    inputs: &Inputs<'_>,
    urls: &Urls,
    spec: IgnitionSpec,
) -> String {
    let p = plan.plan();
    let mut b = ConfigBuilder::default();
    b.ssh_keys(&plan.ssh_keys());
    b.file("/etc/hostname", MODE_0644, &format!("{}\n", node.name));
    b.file("/etc/systemd/network/00-flatlab.network", MODE_0644, &network_file(plan, node));
    b.file(WAKE_ON_LAN_LINK, MODE_0644, &wake_on_lan_link(node));
    b.directory("/etc/systemd/resolved.conf.d", 0o755);
    b.file("/etc/systemd/resolved.conf.d/00-flatlab-mdns.conf", MODE_0644, "[Resolve]\nMulticastDNS=yes\n");
    b.directory("/etc/systemd/dnssd", 0o755);
    b.file("/etc/systemd/dnssd/flatlab.dnssd", MODE_0644, &dnssd_file(&p.name, node));
    b.file(
        "/etc/flatcar/update.conf",
        MODE_0644,
        &format!(
            "# Written by Flatlab. Locksmith's etcd lock does not work with K3s: kured (deployed by the\n\
             # servers) reboots one node at a time into a downloaded update.\nGROUP={}\nREBOOT_STRATEGY=off\n",
            p.os.channel.as_str()
        ),
    );
    // kured reboots into updates; locksmithd would not wait for it (Flatcar's docs say to mask it).
    b.masked_unit("locksmithd.service");
    let ntp = plan.ntp();
    if !ntp.is_empty() {
        b.directory("/etc/systemd/timesyncd.conf.d", 0o755);
        b.file(
            "/etc/systemd/timesyncd.conf.d/00-flatlab.conf",
            MODE_0644,
            &format!("# Written by Flatlab: the plan's time servers (network.ntp).\n[Time]\nNTP={}\n", ntp.join(" ")),
        );
    }
    k3s::add(&mut b, plan, index, node, inputs);
    addons::add(&mut b, plan, node);
    // Progress reports only make sense when a boot server is there to receive them.
    if inputs.base_url != PLACEHOLDER_BASE_URL {
        b.unit("flatlab-report-booted.service", true, &report_unit("booted", &urls.report, None));
        b.unit(
            "flatlab-report-k3s-ready.service",
            true,
            &report_unit(
                "k3s-ready",
                &urls.report,
                Some("until curl -sf http://127.0.0.1:10248/healthz >/dev/null; do sleep 5; done"),
            ),
        );
    }
    b.build(spec)
}

fn network_file(plan: &ValidatedPlan, node: &ValidatedNode) -> String {
    let mut out = format!(
        "# Written by Flatlab for node {}.\n[Match]\nMACAddress={}\n\n[Network]\nMulticastDNS=yes\n",
        node.name, node.mac
    );
    match node.address {
        Some(address) => {
            out.push_str(&format!("Address={address}\n"));
            if let Some(gw) = plan.gateway() {
                out.push_str(&format!("Gateway={gw}\n"));
            }
            for dns in plan.dns() {
                out.push_str(&format!("DNS={dns}\n"));
            }
        }
        None => out.push_str("DHCP=yes\n"),
    }
    out
}

/// Arms Wake-on-LAN on the planned NIC (Flatcar boots with it disarmed), so that `flatlab
/// power-on` can start the machine when it is off. udev applies `.link` files when it names the
/// device; the first file that matches is the only one used, so this one repeats the naming
/// policies of systemd's `99-default.link` (Flatcar's too) and the NIC keeps its name.
pub(crate) const WAKE_ON_LAN_LINK: &str = "/etc/systemd/network/50-flatlab-wol.link";

fn wake_on_lan_link(node: &ValidatedNode) -> String {
    format!(
        "# Written by Flatlab for node {}: Wake-on-LAN on (magic packet), for `flatlab power-on`.\n\
         # The first .link that matches a NIC is the only one udev uses: the naming policies are\n\
         # those of systemd's 99-default.link, so the NIC keeps its name.\n\
         [Match]\nMACAddress={}\n\n[Link]\nNamePolicy=keep kernel database onboard slot path\n\
         AlternativeNamesPolicy=database onboard slot path\nMACAddressPolicy=persistent\nWakeOnLan=magic\n",
        node.name, node.mac
    )
}

fn dnssd_file(plan_name: &str, node: &ValidatedNode) -> String {
    let port = match node.role {
        Role::Server => 6443,
        Role::Agent => 10250,
    };
    format!(
        "# Announces this node to the Flatlab app over mDNS (DNS-SD).\n[Service]\nName=%H\nType=_flatlab._tcp\nPort={port}\nTxtText=plan={plan_name} node={} role={}\n",
        node.name,
        node.role.as_str()
    )
}

/// A unit that reports a stage to the boot server once, in the background so that it never
/// holds up booting. A failed report is not retried on later boots: the boot server may be gone
/// once the install is done.
pub(crate) fn report_unit(stage: &str, report_url: &str, wait_for: Option<&str>) -> String {
    let marker = format!("/var/lib/flatlab/reported-{stage}");
    let after = if stage == "k3s-ready" { "network-online.target k3s.service" } else { "network-online.target" };
    let wait = wait_for.map(|w| format!("{w}; ")).unwrap_or_default();
    format!(
        "\
[Unit]
Description=Flatlab: report `{stage}` to the boot server
Wants=network-online.target
After={after}
ConditionPathExists=!{marker}

[Service]
Type=simple
ExecStart=/bin/sh -c '{wait}curl -fsS --max-time 10 --retry 10 --retry-delay 5 --retry-all-errors -X POST \"{report_url}?stage={stage}\"; mkdir -p /var/lib/flatlab && touch {marker}'

[Install]
WantedBy=multi-user.target
"
    )
}
