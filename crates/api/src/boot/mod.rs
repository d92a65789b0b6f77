//! Running the boot server for a plan: turns the plan into per-machine boot material for
//! `bootd`, answers its questions (`policy`), and keeps the store up to date with what it
//! reports (`machines`, the one conversion between its types and store rows).

mod firewall;
mod inspect;
mod lan;
mod machines;
mod policy;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use flatlab_bootd::{AllowList, BootServer, Config, DhcpMode, FullDhcp, MachineSpec};
use flatlab_model::ValidatedPlan;
use flatlab_render::{Bundle, Inputs, K3sSource, k3s_binary, render};
use rand::Rng;

pub use inspect::{InspectRequested, InspectTarget};
pub use lan::taken_addresses;
pub(crate) use machines::MachineState;
use policy::PlanBooter;

use crate::Flatlab;

/// The iPXE binaries the boot server offers, in the order it looks for them.
pub const IPXE_BINARIES: &[&str] = &["undionly.kpxe", "ipxe.efi", "snponly.efi", "ipxe-arm64.efi", "snp-arm64.efi"];

/// Where iPXE binaries are looked for when `--ipxe-dir` is not given: Debian's `ipxe` package,
/// then the package's and the source checkout's `assets/ipxe`.
pub fn default_ipxe_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/lib/ipxe"), PathBuf::from("/usr/share/flatlab/ipxe")];
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/ipxe"));
    dirs
}

/// What `flatlab serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub interface: Option<String>,
    pub address: Option<Ipv4Addr>,
    pub http_port: u16,
    pub tftp_port: u16,
    pub dhcp: DhcpMode,
    /// With full DHCP: the addresses to hand out; default the top quarter of the plan's subnet.
    pub dhcp_range: Option<(Ipv4Addr, Ipv4Addr)>,
    pub mirror: Option<PathBuf>,
    pub admin: SocketAddr,
    pub ipxe_dirs: Vec<PathBuf>,
    /// How long an armed machine may go without network-booting before its timeline says how
    /// to choose network boot.
    pub no_boot_after: std::time::Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            interface: None,
            address: None,
            http_port: 8080,
            tftp_port: 69,
            dhcp: DhcpMode::Proxy,
            dhcp_range: None,
            mirror: None,
            admin: SocketAddr::from(([127, 0, 0, 1], 7070)),
            ipxe_dirs: default_ipxe_dirs(),
            no_boot_after: std::time::Duration::from_secs(300),
        }
    }
}

/// A machine armed, and what the cluster decided for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    pub node: String,
    /// For a server: whether it starts the cluster or joins it.
    pub cluster: Option<crate::ClusterDecision>,
}

impl Armed {
    /// What its install does to the cluster, in words.
    pub fn describe(&self) -> Option<String> {
        use crate::ClusterDecision as D;
        Some(match self.cluster.as_ref()? {
            D::Start => format!("{} starts the plan's cluster (it never ran)", self.node),
            D::StartNew => format!("{} starts a new cluster; the old cluster's data is gone", self.node),
            D::Join { via } if via.is_empty() => {
                format!("{} joins the plan's cluster through whichever server is up when it starts", self.node)
            }
            D::Join { via } => format!(
                "{} joins the plan's cluster, which answered at {via}, through whichever server is up when it starts",
                self.node
            ),
        })
    }
}

/// A running boot server for one plan.
pub struct BootSession {
    server: BootServer,
    /// Things the user should know (no iPXE binaries found, no mirror, ...).
    pub warnings: Vec<String>,
    pub http_base: String,
    pub plan: String,
    mirror: Option<PathBuf>,
    _announcement: Option<flatlab_discovery::Announcement>,
    /// Takes up what other processes arm or inspect in the store.
    _sync: AbortOnDrop,
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl BootSession {
    pub fn server(&self) -> &BootServer {
        &self.server
    }

    pub async fn stop(self) {
        drop(self._sync);
        self.server.shutdown().await;
    }
}

impl Flatlab {
    /// Starts the boot server for a stored plan.
    pub async fn start_boot_server(
        &self,
        name: &str,
        options: ServeOptions,
        rng: &mut impl Rng,
    ) -> anyhow::Result<BootSession> {
        let plan =
            self.validated_plan(name, "fix the plan's errors before installing (`flatlab plan validate`)").await?;
        let address = server_address(options.interface.as_deref(), options.address)?;
        let http_base = format!("http://{address}:{}", options.http_port);
        let mut warnings = Vec::new();

        // Each machine keeps its token across restarts of the server until it is armed again.
        let states = self.machine_states(name, &plan, rng).await?;
        let specs =
            self.boot_specs(name, &plan, &states, &http_base, options.mirror.as_deref(), &mut warnings, rng).await?;
        let binaries = find_ipxe(&options.ipxe_dirs, &mut warnings);
        let mut config = Config::new(address);
        config.interface = options.interface.clone();
        config.http_port = options.http_port;
        config.tftp_port = options.tftp_port;
        config.admin = options.admin;
        config.mirror = options.mirror.clone();
        let booter = Arc::new(PlanBooter::new(self.clone(), name, &binaries));
        config.binaries = binaries;
        config.dhcp = options.dhcp;
        config.no_boot_after = options.no_boot_after;
        if options.dhcp_range.is_some() && options.dhcp != DhcpMode::Full {
            bail!("a DHCP range only applies to full DHCP (--dhcp full)");
        }
        if options.dhcp == DhcpMode::Full {
            config.full_dhcp = Some(full_dhcp(&plan, options.dhcp_range, self.db_path(), name, address)?);
        }
        if options.mirror.is_none() {
            warnings.push(
                "no image mirror: machines cannot load Flatcar from this server; fetch a release with `flatlab mirror fetch` (into ~/.local/share/flatlab/mirror, which the app uses) and pass it with --mirror DIR"
                    .into(),
            );
        } else if let Some(m) = &options.mirror {
            // The same check as the app's Images view.
            let os = &plan.plan().os;
            let release = m.join(os.channel.as_str()).join(os.arch.board()).join(&os.version);
            for file in crate::mirror::readiness(plan.plan(), m).flatcar_missing {
                warnings.push(format!(
                    "the mirror has no {}: installs of {} will fail",
                    release.join(file).display(),
                    os.version
                ));
            }
        }

        // A planned static address that another host already answers for would break that
        // node's network after its install.
        warnings.extend(lan::taken_addresses(plan.plan(), Some(address)).await.into_iter().map(|f| f.message));

        // This machine's firewall, when it can be read, may be in the way on the interface
        // machines boot on (given, or the one that holds the address).
        let interface = options.interface.clone().or_else(|| {
            if_addrs::get_if_addrs().ok()?.into_iter().find(|i| i.ip() == IpAddr::V4(address)).map(|i| i.name)
        });
        warnings.extend(firewall::warnings(
            &firewall::needed_ports(config.dhcp != DhcpMode::Off, config.tftp_port, config.http_port),
            interface.as_deref(),
        ));

        let clock = self.clock_fn();
        let server = BootServer::start(config, specs, clock, booter).await.context("starting the boot server")?;
        // Other Flatlab apps on the LAN find this boot server over mDNS.
        let port = server.http_addr().port();
        let announcement = match flatlab_discovery::Announcement::boot_server(
            &format!("Flatlab boot server for {name}"),
            IpAddr::V4(address),
            port,
            &[("plan", name), ("url", &http_base)],
        ) {
            Ok(a) => Some(a),
            Err(e) => {
                warnings.push(format!("cannot announce the boot server over mDNS: {e}"));
                None
            }
        };
        // What other processes arm or inspect reaches this server (at once for the first time:
        // inspections asked for before it started).
        let sync = {
            let (app, name, registry) = (self.clone(), name.to_owned(), server.registry().clone());
            let (base, mirror) = (http_base.clone(), options.mirror.clone());
            tokio::spawn(async move {
                loop {
                    if let Err(e) = app.sync_boot_server(&name, &registry, &base, mirror.as_deref()).await {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "cannot take up machines armed or inspected elsewhere"
                        );
                    }
                    tokio::time::sleep(inspect::SYNC_EVERY).await;
                }
            })
        };
        Ok(BootSession {
            server,
            warnings,
            http_base,
            plan: name.to_owned(),
            mirror: options.mirror,
            _announcement: announcement,
            _sync: AbortOnDrop(sync),
        })
    }

    /// Arms a planned machine again: the next network boot reinstalls it with a new token.
    /// Takes effect when the boot server starts (or at once, given the running session).
    ///
    /// A server is armed only once the cluster said what it means
    /// ([`ClusterDecision`](crate::ClusterDecision)): it joins a cluster that runs; the plan's
    /// first server starts the cluster only when it never ran, or with `new_cluster` (the user
    /// gives up the old cluster's data). A cluster that ran and answers nowhere refuses it
    /// (`ClusterLost`), as does another cluster with the plan's CAs (`AnotherCluster`).
    pub async fn arm_machine(
        &self,
        name: &str,
        node: &str,
        new_cluster: bool,
        session: Option<&BootSession>,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Armed> {
        let cluster = self.decide_arm(name, node, new_cluster, rng).await?;
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let n = plan.nodes().iter().find(|n| n.name == node).context("the node was just found")?;
        let armed = self.rearm(name, n.mac, node, rng).await?;
        // An inspection of it ends: the install takes over (from the live system, if it waits).
        self.end_inspection(name, armed.mac).await?;
        if let Some(session) = session {
            let mut states = self.machine_states(name, &plan, rng).await?;
            states.retain(|s| s.mac != armed.mac);
            states.push(armed);
            let mut ignored = Vec::new();
            let spec = self
                .boot_specs(name, &plan, &states, &session.http_base, session.mirror.as_deref(), &mut ignored, rng)
                .await?
                .into_iter()
                .find(|s| s.node == node)
                .context("re-rendered node")?;
            session.server.registry().arm(spec).await;
        }
        Ok(Armed { node: node.to_owned(), cluster })
    }

    /// What arming `node` means to the plan's cluster, asked of the cluster and remembered (see
    /// [`Flatlab::arm_machine`]), without arming it: the app asks this before it hands the arm
    /// to a running boot server, so that a refusal comes back at once.
    pub async fn decide_arm(
        &self,
        name: &str,
        node: &str,
        new_cluster: bool,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Option<crate::ClusterDecision>> {
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let Some(n) = plan.nodes().iter().find(|n| n.name == node) else {
            bail!("plan {name} has no node called `{node}`");
        };
        let cluster = match n.role {
            flatlab_model::Role::Server => {
                let decision = self.cluster_decision(name, &plan, node, new_cluster, rng).await?;
                self.take_decision(name, &decision).await?;
                Some(decision)
            }
            flatlab_model::Role::Agent if new_cluster => {
                return Err(crate::ApiError::BadRequest(format!(
                    "{node} is an agent: a new cluster starts on the plan's first server, {}",
                    plan.first_server().name
                ))
                .into());
            }
            flatlab_model::Role::Agent => None,
        };
        Ok(cluster)
    }

    /// Renders every node with its machine's boot token and turns the files into boot specs.
    #[allow(clippy::too_many_arguments)]
    async fn boot_specs(
        &self,
        name: &str,
        plan: &ValidatedPlan,
        states: &[MachineState],
        http_base: &str,
        mirror: Option<&Path>,
        warnings: &mut Vec<String>,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Vec<MachineSpec>> {
        let node_tokens: BTreeMap<String, String> = states.iter().map(|s| (s.node.clone(), s.token.clone())).collect();
        let cluster = self.cluster_secrets(name, states, rng).await?;
        let k3s = k3s_source(plan, mirror, http_base, warnings);
        let inputs = Inputs { base_url: http_base, cluster: &cluster, node_tokens: &node_tokens, k3s: &k3s };
        let bundle = render(plan, &inputs).with_context(|| format!("rendering plan {name}"))?;
        let mut specs = machine_specs(plan, &bundle, states)?;
        let first = plan.first_server().name.clone();
        for spec in &mut specs {
            spec.files = self.restore_files(name, &spec.node, &first).await?;
        }
        Ok(specs)
    }

    fn clock_fn(&self) -> flatlab_bootd::Clock {
        let app = self.clone();
        Arc::new(move || app.now())
    }
}

fn machine_specs(plan: &ValidatedPlan, bundle: &Bundle, states: &[MachineState]) -> anyhow::Result<Vec<MachineSpec>> {
    let mut specs = Vec::new();
    for (node, files) in plan.nodes().iter().zip(&bundle.nodes) {
        let state = states.iter().find(|s| s.node == node.name).context("every node has a machine row")?;
        specs.push(MachineSpec {
            mac: state.mac,
            node: node.name.clone(),
            token: state.token.clone(),
            stage: state.stage,
            history: state.history.clone(),
            ip: state.ip,
            ipxe_script: files.ipxe.clone(),
            install_ignition: files.install.clone(),
            final_ignition: files.config.clone(),
            install_script: files.install_script.clone(),
            attempt: state.attempt.clone(),
            files: Vec::new(),
        });
    }
    Ok(specs)
}

/// K3s from the mirror when it holds the plan's release, else from the K3s release page.
fn k3s_source(plan: &ValidatedPlan, mirror: Option<&Path>, http_base: &str, warnings: &mut Vec<String>) -> K3sSource {
    let p = plan.plan();
    let (version, arch) = (&p.kubernetes.k3s_version, p.os.arch);
    let sha = p.kubernetes.k3s_sha256.clone();
    if let Some(m) = mirror {
        let file = m.join("k3s").join(version).join(k3s_binary(arch));
        if file.is_file() {
            let sha = sha.or_else(|| {
                std::fs::read_to_string(file.with_extension("sha256"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next().map(str::to_owned))
            });
            let source = K3sSource::mirror(http_base, version, arch, sha);
            // The air-gap images go along when they are mirrored (with the checksum the
            // mirror checked them against).
            let name = flatlab_render::airgap_name(arch);
            let airgap_sha = std::fs::read_to_string(m.join("k3s").join(version).join(format!("{name}.sha256")))
                .ok()
                .and_then(|s| s.split_whitespace().next().map(str::to_owned))
                .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
            return match airgap_sha {
                Some(sha) if m.join("k3s").join(version).join(&name).is_file() => {
                    source.with_mirrored_airgap(http_base, version, arch, sha)
                }
                _ => source,
            };
        }
        warnings.push(format!("the mirror has no K3s {version}: nodes download it from the K3s release page"));
    }
    K3sSource::upstream(version, arch, sha)
}

fn find_ipxe(dirs: &[PathBuf], warnings: &mut Vec<String>) -> AllowList {
    let mut list = AllowList::new();
    for name in IPXE_BINARIES {
        if let Some(bytes) = dirs.iter().find_map(|d| std::fs::read(d.join(name)).ok()) {
            list.insert(name, bytes);
        }
    }
    if list.names().next().is_none() {
        warnings.push(
            "no iPXE binaries found (undionly.kpxe, ipxe.efi): install Debian's `ipxe` package or pass --ipxe-dir; machines whose firmware runs iPXE already can still boot"
                .into(),
        );
    }
    list
}

/// The address to serve on: given, or the interface's first IPv4 address.
pub fn server_address(interface: Option<&str>, address: Option<Ipv4Addr>) -> anyhow::Result<Ipv4Addr> {
    let interfaces = if_addrs::get_if_addrs().context("listing network interfaces")?;
    if let Some(name) = interface {
        require_interface(&interfaces, name)?;
    }
    if let Some(a) = address {
        return Ok(a);
    }
    let Some(name) = interface else {
        bail!("give the interface machines boot on with --interface (or its address with --address)");
    };
    interfaces
        .iter()
        .filter(|i| i.name == name)
        .find_map(|i| match i.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .with_context(|| format!("interface `{name}` has no IPv4 address; give one with --address"))
}

/// An error naming this machine's interfaces when none is called `name`.
pub(crate) fn require_interface(interfaces: &[if_addrs::Interface], name: &str) -> anyhow::Result<()> {
    if interfaces.iter().any(|i| i.name == name) {
        return Ok(());
    }
    let mut names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    bail!("there is no network interface called `{name}`; this machine has: {}", names.join(", "))
}

fn full_dhcp(
    plan: &ValidatedPlan,
    range: Option<(Ipv4Addr, Ipv4Addr)>,
    db: &Path,
    name: &str,
    server: Ipv4Addr,
) -> anyhow::Result<FullDhcp> {
    let Some(subnet) = plan.subnet() else {
        bail!("full DHCP needs the plan's network.subnet (and network.gateway) to hand out addresses");
    };
    let (start, end) = match range {
        Some(r) => r,
        None => {
            let hosts: Vec<Ipv4Addr> = subnet.hosts().collect();
            let n = hosts.len();
            if n < 8 {
                bail!("subnet {subnet} is too small for a DHCP range; give one with --dhcp-range");
            }
            let start = hosts[(n * 3 / 4).min(n - 1)];
            (start, hosts[n - 2])
        }
    };
    if !subnet.contains(&start) || !subnet.contains(&end) || start > end {
        bail!("the DHCP range {start}-{end} must lie in the subnet {subnet}, lowest address first");
    }
    let dns = plan.dns().iter().filter_map(|d| if let IpAddr::V4(v) = d { Some(*v) } else { None }).collect();
    let dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(FullDhcp {
        range_start: start,
        range_end: end,
        netmask: subnet.netmask(),
        router: plan.gateway(),
        dns,
        lease_secs: 3600,
        leases_file: dir.join(format!("leases-{name}.json")),
        reserved: std::iter::once(server)
            .chain(plan.gateway())
            .chain(plan.nodes().iter().filter_map(|n| n.address.map(|a| a.addr())))
            .collect(),
        // Planned machines get their static address from the start: iPXE, the live system and
        // the installed node then have one address.
        fixed: plan.nodes().iter().filter_map(|n| Some((machines::wire_mac(n.mac), n.address?.addr()))).collect(),
    })
}
