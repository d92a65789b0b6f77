//! Renders a validated plan into everything a node needs: the Ignition config the installed system
//! applies on first boot (`config.ign`), the Ignition config of the network-booted installer
//! (`install.ign`), the node's iPXE script (`boot.ipxe`), and a README for the bundle.
//!
//! Pure functions: the plan, the secrets, the boot server's address and the K3s download come in
//! as values, so the same inputs always give byte-identical output. Only a [`ValidatedPlan`] can be
//! rendered. Serving, storing and writing the files is left to `bootd`, `store` and `api`.

mod addons;
mod error;
mod final_config;
mod ignition;
mod inspect;
mod install;
mod ipxe;
mod k3s;
mod readme;

use std::collections::BTreeMap;

use flatlab_model::{Arch, ValidatedNode, ValidatedPlan, to_yaml};

pub use addons::{IMAGES as ADDON_IMAGES, virtual_ip};
pub use error::{Error, Result};
pub use ignition::{IgnitionSpec, data_url_decode, inline_contents};
pub use inspect::{Inspection, render_inspection};

/// Stands for the boot server's address in a bundle rendered without one.
pub const PLACEHOLDER_BASE_URL: &str = "http://flatlab-boot.invalid:8080";

/// Where nodes download the K3s binary from, and the hash that pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K3sSource {
    /// The `k3s` (amd64) or `k3s-arm64` binary.
    pub url: String,
    /// Its SHA-256 (hex). With it, Ignition downloads and verifies the binary before first boot.
    /// Without it, a unit downloads the release's `sha256sum-<arch>.txt` next to the binary and
    /// checks against that.
    pub sha256: Option<String>,
    /// K3s's air-gap image tarball, when the mirror holds it: every node gets it in
    /// `/var/lib/rancher/k3s/agent/images/`, where K3s imports it at start instead of pulling
    /// its images from registries.
    pub airgap: Option<Airgap>,
}

/// A K3s air-gap image tarball to place on the nodes, pinned by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Airgap {
    /// `k3s-airgap-images-<arch>.tar.zst` in the mirror.
    pub url: String,
    pub sha256: String,
}

/// Where K3s imports image tarballs from at its start.
pub const AIRGAP_IMAGES_DIR: &str = "/var/lib/rancher/k3s/agent/images";

impl K3sSource {
    /// The binary as published on the K3s release page.
    pub fn upstream(version: &str, arch: Arch, sha256: Option<String>) -> Self {
        let version = path_segment(version);
        Self {
            url: format!("https://github.com/k3s-io/k3s/releases/download/{version}/{}", k3s_binary(arch)),
            sha256,
            airgap: None,
        }
    }

    /// The binary as served from a Flatlab mirror: `<base>/mirror/k3s/<version>/<binary>`.
    pub fn mirror(base_url: &str, version: &str, arch: Arch, sha256: Option<String>) -> Self {
        let version = path_segment(version);
        Self {
            url: format!("{}/mirror/k3s/{version}/{}", base_url.trim_end_matches('/'), k3s_binary(arch)),
            sha256,
            airgap: None,
        }
    }

    /// With the air-gap image tarball of a Flatlab mirror: `<base>/mirror/k3s/<version>/<name>`.
    pub fn with_mirrored_airgap(mut self, base_url: &str, version: &str, arch: Arch, sha256: String) -> Self {
        let version = path_segment(version);
        self.airgap = Some(Airgap {
            url: format!("{}/mirror/k3s/{version}/{}", base_url.trim_end_matches('/'), airgap_name(arch)),
            sha256,
        });
        self
    }

    /// The release's checksum file next to the binary.
    pub(crate) fn sums_url(&self, arch: Arch) -> String {
        let dir = self.url.rsplit_once('/').map(|(d, _)| d).unwrap_or(&self.url);
        format!("{dir}/sha256sum-{}.txt", arch.as_str())
    }
}

/// A K3s version as one URL path segment: `v1.32.2+k3s1` is `v1.32.2%2Bk3s1` (a `+` in a path
/// reaches some servers as a space).
fn path_segment(version: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(version, SEGMENT).to_string()
}

/// The K3s release asset name for an architecture.
pub fn k3s_binary(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => "k3s",
        Arch::Arm64 => "k3s-arm64",
    }
}

/// The K3s air-gap image tarball's name for an architecture.
pub fn airgap_name(arch: Arch) -> String {
    format!("k3s-airgap-images-{}.tar.zst", arch.as_str())
}

/// Everything besides the plan that goes into the rendered files.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The boot server, such as `http://10.0.0.2:8080`: iPXE, Ignition, reports and the mirror.
    pub base_url: &'a str,
    /// How nodes join the cluster, and the certificate authorities of its first server.
    pub cluster: &'a ClusterSecrets,
    /// Each node's boot token (by node name): its Ignition URL and report URL carry it.
    pub node_tokens: &'a BTreeMap<String, String>,
    pub k3s: &'a K3sSource,
}

/// The cluster's join tokens and certificate authorities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSecrets {
    /// The servers' token: `K10<sha256 of server-ca.crt>::server:<secret>` with Flatlab's CAs (the
    /// hash pins the cluster CA for joining servers), or the secret alone when K3s made its own.
    pub server_token: String,
    /// The agents' token, `K10<hash>::node:<secret>` (or the secret alone): agents never get
    /// the servers' token.
    pub agent_token: String,
    /// The certificate authorities' files, by their path under
    /// `/var/lib/rancher/k3s/server/tls/` (`server-ca.crt`, `etcd/peer-ca.key`, ...): written
    /// on the first server only, before K3s first starts, so that it uses them. Empty when the
    /// cluster's CAs were made by K3s (a cluster installed before Flatlab made them).
    pub ca_files: Vec<(String, String)>,
    /// The first server joins the cluster instead of starting it: the cluster exists already
    /// (it is being reinstalled while the cluster runs on the other servers). Like every node
    /// that joins, it finds a live server itself when it starts.
    pub first_server_joins: bool,
    /// The first server restores the cluster from this etcd snapshot before K3s first starts
    /// (the cluster is being brought back onto new disks); the other servers join it.
    pub restore: Option<RestoreSnapshot>,
}

/// An etcd snapshot the first server restores: fetched from the boot server during its first
/// boot (`<base>/v1/file/<token>/<name>`, that machine only), pinned by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSnapshot {
    /// Its file name, such as `etcd-snapshot-cp1-1764993600`.
    pub name: String,
    pub sha256: String,
}

/// Where the first server keeps the snapshot it restores.
pub const RESTORE_DIR: &str = "/var/lib/flatlab/restore";
/// Written once the restore is done: the restore runs once per install.
pub const RESTORED_MARK: &str = "/var/lib/flatlab/restored";

/// The files K3s reads its certificate authorities from when they are there at its first
/// start, by their path under `/var/lib/rancher/k3s/server/tls/`. All of them, or K3s makes
/// the missing ones itself and the cluster has a mixed PKI.
pub const CA_FILES: [&str; 11] = [
    "server-ca.crt",
    "server-ca.key",
    "client-ca.crt",
    "client-ca.key",
    "request-header-ca.crt",
    "request-header-ca.key",
    "etcd/peer-ca.crt",
    "etcd/peer-ca.key",
    "etcd/server-ca.crt",
    "etcd/server-ca.key",
    "service.key",
];

/// The files of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedNode {
    pub name: String,
    /// `config.ign`: applied by the installed system on its first boot.
    pub config: String,
    /// `install.ign`: applied by the network-booted live system, which installs to disk.
    pub install: String,
    /// `boot.ipxe`: loads the live system with `install.ign`.
    pub ipxe: String,
    /// The install script `install.ign` runs (`/opt/flatlab/install.sh`): what a live system
    /// booted for inspection runs to install from where it is.
    pub install_script: String,
}

/// A rendered plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub plan_yaml: String,
    pub readme: String,
    pub nodes: Vec<RenderedNode>,
}

/// One file of a bundle, by its path relative to the bundle's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleFile<'a> {
    pub path: &'a str,
    pub contents: &'a str,
    /// True for files that carry the K3s token: written owner-only, left out of Git by default.
    pub secret: bool,
}

impl Bundle {
    /// Every file with its path in the bundle layout: `plan.yaml`, `README.md`,
    /// `nodes/<name>/{config.ign,install.ign,boot.ipxe}`.
    pub fn files(&self) -> Vec<(String, BundleFile<'_>)> {
        let mut out = vec![
            ("plan.yaml".to_owned(), BundleFile { path: "plan.yaml", contents: &self.plan_yaml, secret: false }),
            ("README.md".to_owned(), BundleFile { path: "README.md", contents: &self.readme, secret: false }),
        ];
        for n in &self.nodes {
            for (file, contents, secret) in
                [("config.ign", &n.config, true), ("install.ign", &n.install, false), ("boot.ipxe", &n.ipxe, false)]
            {
                out.push((format!("nodes/{}/{file}", n.name), BundleFile { path: file, contents, secret }));
            }
        }
        out
    }
}

/// Renders every node of the plan.
pub fn render(plan: &ValidatedPlan, inputs: &Inputs<'_>) -> Result<Bundle> {
    check_inputs(inputs)?;
    let spec = IgnitionSpec::for_plan(plan)?;
    let nodes = plan
        .nodes()
        .iter()
        .enumerate()
        .map(|(index, node)| render_node(plan, index, node, inputs, spec))
        .collect::<Result<Vec<_>>>()?;
    Ok(Bundle { plan_yaml: to_yaml(plan.plan()), readme: readme::bundle_readme(plan, inputs), nodes })
}

fn render_node(
    plan: &ValidatedPlan,
    index: usize,
    node: &ValidatedNode,
    inputs: &Inputs<'_>,
    spec: IgnitionSpec,
) -> Result<RenderedNode> {
    let token =
        inputs.node_tokens.get(&node.name).ok_or_else(|| Error::MissingNodeToken { node: node.name.clone() })?;
    let urls = Urls::new(inputs.base_url, token, plan);
    Ok(RenderedNode {
        name: node.name.clone(),
        config: final_config::render(plan, index, node, inputs, &urls, spec),
        install: install::render(plan, node, &urls, spec),
        ipxe: ipxe::render(plan, node, &urls),
        install_script: install::script(plan, node, &urls),
    })
}

/// A K3s token: `K10<64 hex digits>::<user>:<secret>`, or the secret alone; the secret is at
/// least 16 letters and digits.
fn is_join_token(token: &str, user: &str) -> bool {
    let secret = match token.strip_prefix("K10") {
        Some(rest) => {
            let Some((hash, rest)) = rest.split_once("::") else { return false };
            let Some(secret) = rest.strip_prefix(user).and_then(|r| r.strip_prefix(':')) else { return false };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return false;
            }
            secret
        }
        None => token,
    };
    secret.len() >= 16 && secret.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn check_inputs(inputs: &Inputs<'_>) -> Result<()> {
    let base = inputs.base_url;
    let valid_base = (base.starts_with("http://") || base.starts_with("https://"))
        && !base.ends_with('/')
        && base.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'`' | b'$' | b';' | b'%'));
    if !valid_base {
        return Err(Error::BadBaseUrl { url: base.to_owned() });
    }
    let c = inputs.cluster;
    if !is_join_token(&c.server_token, "server") || !is_join_token(&c.agent_token, "node") {
        return Err(Error::BadToken);
    }
    if !c.ca_files.is_empty() {
        let mut names: Vec<&str> = c.ca_files.iter().map(|(p, _)| p.as_str()).collect();
        names.sort_unstable();
        let mut wanted = CA_FILES.to_vec();
        wanted.sort_unstable();
        if names != wanted {
            return Err(Error::IncompleteCa);
        }
    }
    for (node, token) in inputs.node_tokens {
        if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::BadNodeToken { node: node.clone() });
        }
    }
    if let Some(sha) = &inputs.k3s.sha256
        && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::BadSha256 { sha: sha.clone() });
    }
    Ok(())
}

/// The URLs one node's files point at.
pub(crate) struct Urls {
    /// `<base>/v1/ignition/<token>`: the install config.
    pub install_ignition: String,
    /// `<base>/v1/ignition/<token>/final`: the final config.
    pub final_ignition: String,
    /// `<base>/v1/report/<token>`: where stages are reported (`?stage=...`).
    pub report: String,
    /// `<base>/v1/inventory/<token>`: where the live system posts the machine's hardware.
    pub inventory: String,
    /// `<base>/mirror/<channel>/<board>`: what `flatcar-install -b` takes.
    pub mirror_board: String,
    /// `<mirror_board>/<version>`: where the PXE kernel and initrd are.
    pub mirror_release: String,
}

impl Urls {
    fn new(base: &str, token: &str, plan: &ValidatedPlan) -> Self {
        let os = &plan.plan().os;
        let mirror_board = format!("{base}/mirror/{}/{}", os.channel.as_str(), os.arch.board());
        Self {
            install_ignition: format!("{base}/v1/ignition/{token}"),
            final_ignition: format!("{base}/v1/ignition/{token}/final"),
            report: format!("{base}/v1/report/{token}"),
            inventory: format!("{base}/v1/inventory/{token}"),
            mirror_release: format!("{mirror_board}/{}", os.version),
            mirror_board,
        }
    }
}
