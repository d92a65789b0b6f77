//! The bundle's README.md: what each file is and how to use the bundle by hand.

use flatlab_model::ValidatedPlan;

use crate::{Inputs, PLACEHOLDER_BASE_URL};

pub(crate) fn bundle_readme(plan: &ValidatedPlan, inputs: &Inputs<'_>) -> String {
    let p = plan.plan();
    let mut nodes = String::new();
    for n in plan.nodes() {
        nodes.push_str(&format!(
            "| {} | {} | `{}` | {} | `{}` |\n",
            n.name,
            n.role.as_str(),
            n.mac,
            n.address.map(|a| a.to_string()).unwrap_or_else(|| "DHCP".into()),
            n.install_disk
        ));
    }
    let base_note = if inputs.base_url == PLACEHOLDER_BASE_URL {
        format!(
            "This bundle was rendered without a boot server address: URLs in `boot.ipxe` and\n\
             `install.ign` point at the placeholder `{PLACEHOLDER_BASE_URL}`. Render again with\n\
             `flatlab render {name} -o DIR --base-url http://ADDRESS:PORT` to network-install by hand,\n\
             or let `flatlab serve` render and serve everything. `config.ign` works as it is for a\n\
             USB install (below); without a boot server it reports no progress.\n",
            name = p.name
        )
    } else {
        format!("The boot server address in these files is `{}`.\n", inputs.base_url)
    };
    let k3s_note = match &inputs.k3s.sha256 {
        Some(sha) => format!("Ignition downloads K3s from `{}` and checks its SHA-256 `{sha}`.", inputs.k3s.url),
        None => format!(
            "Nodes download K3s from `{}` and check it against the release's published `sha256sum` file.\n\
             Set `kubernetes.k3s_sha256` in the plan to pin the binary in the Ignition config itself.",
            inputs.k3s.url
        ),
    };
    format!(
        "# Flatlab bundle: {name}

Rendered by Flatlab from plan `{name}`: Flatcar {version} ({channel}, {arch}), K3s {k3s},
API endpoint `{api_url}`. Ignition spec {spec}.

| node | role | MAC | address | install disk |
|---|---|---|---|---|
{nodes}
## Files

- `plan.yaml`: the plan these files were rendered from (no secrets in it).
- `nodes/<name>/config.ign`: the Ignition config the installed system applies on its first boot:
  hostname, SSH keys, network, K3s and its configuration. **It contains the cluster's K3s token
  (and the first server's, `{first}`, the keys of the cluster's certificate authorities): keep
  it private.**
- `nodes/<name>/install.ign`: the Ignition config of the network-booted installer: fetches
  `config.ign` from the boot server, runs `flatcar-install`, reports progress, reboots.
- `nodes/<name>/boot.ipxe`: the iPXE script that boots the installer.

{base_note}
{k3s_note}

## Installing with the boot server

`flatlab serve {name} --interface IF` does everything: answers the machines' network boot,
serves these files and the Flatcar images, and shows each machine's progress. Set the machines'
firmware to boot from the network once (or from disk first, then network).

## Installing by hand from a live USB stick

Boot the machine from a Flatcar live image, copy `nodes/<name>/config.ign` onto it, then:

    sudo flatcar-install -d <install disk> -C {channel} -V {version} -i config.ign

and reboot. On its first boot from disk the node applies `config.ign` and joins the cluster.
Install the first server (`{first}`) first: the other nodes wait for it.

## After the install

Flatcar downloads its updates by itself; kured, which every server deploys, reboots the nodes
into them one at a time (`REBOOT_STRATEGY=off` in `/etc/flatcar/update.conf` keeps Flatcar
from rebooting on its own). `flatlab kubeconfig {name} --merge` gives this workstation admin
access to the cluster, and `flatlab cluster status {name}` shows its nodes. Each node announces
itself over mDNS as `_flatlab._tcp`, so the Flatlab app finds it.
",
        name = p.name,
        version = p.os.version,
        channel = p.os.channel.as_str(),
        arch = p.os.arch.as_str(),
        k3s = p.kubernetes.k3s_version,
        api_url = crate::k3s::api_url(&plan.api_endpoint()),
        spec = p.os.ignition_version.as_deref().unwrap_or("3.3.0"),
        first = plan.first_server().name,
    )
}
