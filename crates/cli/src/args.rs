//! The command line: every subcommand and flag, as clap types. The names are a public contract
//! (scripts rely on them): add, never rename.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use flatlab_api::{DhcpMode, Stage};

#[derive(Parser)]
#[command(name = "flatlab", version = flatlab_api::VERSION_LINE, about = "Plan and install Flatcar + K3s edge clusters", propagate_version = true)]
pub struct Cli {
    /// The Flatlab database [default: $XDG_DATA_HOME/flatlab/flatlab.db]
    #[arg(long, global = true, env = "FLATLAB_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create, check, store and export cluster plans
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Render a plan's Ignition configs, iPXE scripts and K3s configuration into a bundle folder
    Render {
        /// A stored plan's name, or a plan file (which is imported first, to keep its secrets)
        plan: String,
        /// The bundle folder: plan.yaml, README.md, nodes/<name>/{config.ign,install.ign,boot.ipxe}
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// The boot server's URL the files point at [default: a placeholder, see the bundle's README]
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Run the boot server: network-install the plan's machines and show their progress live
    Serve(ServeArgs),
    /// Export a plan and its rendered configs to a Git repository or a USB drive
    #[command(subcommand)]
    Export(ExportCommand),
    /// Fetch, verify and keep Flatcar images and K3s binaries for offline installs
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// List machines found on the LAN (mDNS) and machines seen network-booting
    Discover {
        /// How long to listen, in seconds
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        /// Print a JSON array of hosts
        #[arg(long)]
        json: bool,
    },
    /// Write a kubeconfig for the plan's cluster: an admin certificate from Flatlab's cluster CA
    Kubeconfig {
        plan: String,
        /// Write it to FILE (owner-only) [default: standard output]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Add the plan's context to ~/.kube/config ($KUBECONFIG's first file), or to FILE, keeping
        /// every other context
        #[arg(long)]
        merge: bool,
    },
    /// Back up or restore a plan's secrets (K3s tokens, the cluster's CA keys), age-encrypted
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The running cluster: its nodes as the API shows them, K3s upgrades, removing a node
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The hardware the plan's machines reported when their installs started (firmware, CPU,
    /// memory, NICs, disks), with the install disk it suggests and what to look out for
    Inventory {
        plan: String,
        /// Print a JSON array, one object per machine
        #[arg(long)]
        json: bool,
    },
    /// Arm a machine again so that its next network boot reinstalls it
    Arm {
        plan: String,
        /// The node's name in the plan
        node: String,
        /// Start a new cluster on the plan's first server: for a cluster that ran and is gone,
        /// when no snapshot is to be restored (the old cluster's data is lost)
        #[arg(long)]
        new_cluster: bool,
    },
    /// Power machines on by Wake-on-LAN: magic packets for one node, or every node of the plan,
    /// on the LAN of the interface machines boot on (installed nodes arm Wake-on-LAN; a machine
    /// never installed needs it on in its firmware setup)
    PowerOn {
        plan: String,
        /// The node's name in the plan [default: every node; one that is on ignores them]
        node: Option<String>,
        /// The network interface the machines are on [default: the one with an address on the
        /// plan's subnet]
        #[arg(long, value_name = "IF")]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Inspect a machine before its install: at its next network boot it reports its hardware
    /// (`flatlab inventory`) and waits; `flatlab arm` then installs it from there
    #[command(group(clap::ArgGroup::new("machine").required(true).args(["node", "mac"])))]
    Inspect {
        plan: String,
        /// The node's name in the plan
        node: Option<String>,
        /// A machine by its MAC address (one the plan does not have yet, too)
        #[arg(long)]
        mac: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Every node as the cluster's API shows it (Ready, role, K3s and Flatcar versions,
    /// address, reboots), beside the plan and the install timeline
    Status {
        plan: String,
        #[command(flatten)]
        access: AccessArgs,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Print again every N seconds until interrupted
        #[arg(long, value_name = "N")]
        watch: Option<u64>,
    },
    /// Upgrade K3s on every node, one at a time (servers first), through system-upgrade-controller;
    /// the plan gets the new version once every node runs it
    Upgrade {
        plan: String,
        /// The K3s release, such as v1.33.4+k3s1 (no downgrades, one minor version at a time)
        #[arg(long, value_name = "VERSION")]
        k3s: String,
        /// The plan's new k3s_sha256 (of the new k3s binary); without it the plan pins none
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Return once the cluster has the upgrade, without following it
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Drain a node the plan no longer has and delete it from the cluster (a server leaves etcd)
    RemoveNode {
        plan: String,
        node: String,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// The cluster's etcd snapshots (every server's, as K3s lists them) and the copies on this
    /// workstation
    Snapshots {
        plan: String,
        #[command(flatten)]
        access: AccessArgs,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Bring the cluster back from an etcd snapshot onto new disks: the first server restores
    /// it at its next network boot, the other servers are reinstalled and rejoin
    Restore {
        plan: String,
        /// A snapshot copied here (its name, from `cluster snapshots`), or a snapshot file
        snapshot: String,
        /// Return once the servers are armed, without following the restore
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Take an etcd snapshot now (K3s keeps it until it is deleted); with --download, copy it
    /// here too, or copy an existing one with --name
    Snapshot {
        plan: String,
        /// Copy the snapshot to this workstation (through the Kubernetes API, checked by SHA-256)
        #[arg(long)]
        download: bool,
        /// Copy this existing snapshot (its file name, from `cluster snapshots`) instead of taking one
        #[arg(long, value_name = "SNAPSHOT", requires = "download")]
        name: Option<String>,
        #[command(flatten)]
        access: AccessArgs,
    },
}

#[derive(clap::Args)]
pub struct AccessArgs {
    /// Reach the API at this address instead of the plan's (https://host:port), such as a port
    /// the router forwards
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Write the plan's secrets encrypted to age recipients: the keys to the cluster, for a backup
    Export {
        plan: String,
        /// An age recipient (age1...) who can open the backup; repeatable
        #[arg(long, value_name = "RECIPIENT", required = true)]
        encrypt_to: Vec<String>,
        /// The backup file (owner-only)
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Put the newest snapshot copied to this workstation in too: a recovery kit
        #[arg(long)]
        with_snapshot: bool,
    },
    /// Restore a backup into the plan it was made of (import the plan file first)
    Import {
        file: PathBuf,
        /// An age identity file (age-keygen's key.txt) that opens the backup
        #[arg(long, value_name = "KEYFILE")]
        identity: PathBuf,
        /// Replace secrets the plan holds already (another cluster's)
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Commit the plan file and rendered bundle to <repo>/<plan>/ (files with the K3s token are
    /// left out unless --encrypt-to is given), and push through the system git
    Git {
        plan: String,
        #[arg(long, value_name = "DIR")]
        repo: PathBuf,
        #[arg(long, value_name = "B")]
        branch: Option<String>,
        /// Push to this remote after committing
        #[arg(long, value_name = "REMOTE")]
        push: Option<String>,
        /// Commit the secret files encrypted to this age recipient (age1...); repeatable
        #[arg(long, value_name = "RECIPIENT")]
        encrypt_to: Vec<String>,
        /// The boot server URL the files point at [default: a placeholder]
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Write the rendered bundle to <drive>/flatlab/<plan>/, verified by reading back
    Usb {
        /// The plan (not needed with --list, nor with --eject alone, which only ejects the drive)
        #[arg(required_unless_present_any = ["list", "eject"])]
        plan: Option<String>,
        /// The drive's mount point
        #[arg(long, value_name = "MOUNTPOINT", conflicts_with = "device")]
        to: Option<PathBuf>,
        /// The drive's device, such as /dev/sdb1 (mounted through UDisks2 when it is not mounted)
        #[arg(long, value_name = "DEV")]
        device: Option<PathBuf>,
        /// List candidate drives, mounted or not
        #[arg(long, conflicts_with = "eject")]
        list: bool,
        /// Eject the drive safely after the bundle is written and verified: unmount it and power
        /// it off (through UDisks2; without it, only unmount)
        #[arg(long)]
        eject: bool,
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum MirrorCommand {
    /// Download a Flatcar release (and optionally K3s), verifying every file's signature
    // `--version` here names the release to fetch (the contract), not Flatlab's own version.
    #[command(disable_version_flag = true)]
    Fetch {
        #[arg(long, default_value = "stable")]
        channel: String,
        #[arg(long, default_value = "amd64")]
        arch: String,
        /// A release such as 4593.2.5, or `current`
        #[arg(long, default_value = "current")]
        version: String,
        /// Replaces https://<channel>.release.flatcar-linux.net (files at <base>/<arch>-usr/<version>/)
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// The signing key [default: the Flatcar image signing key shipped with Flatlab]
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The mirror [default: $XDG_DATA_HOME/flatlab/mirror]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Also fetch this K3s release's binary, checked against its sha256sum file
        #[arg(long, value_name = "VERSION")]
        k3s: Option<String>,
        /// Replaces https://github.com/k3s-io/k3s/releases/download
        #[arg(long, value_name = "URL")]
        k3s_base_url: Option<String>,
        /// With --k3s: also the airgap images tarball (k3s-airgap-images-<arch>.tar.zst)
        #[arg(long, requires = "k3s")]
        k3s_airgap: bool,
    },
    /// List the mirrored releases
    List {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Check every mirrored file again against its signature or checksum
    Verify {
        /// The mirror [default: $XDG_DATA_HOME/flatlab/mirror]
        dir: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Keep the newest N releases of each channel and architecture; remove the rest
    Prune {
        #[arg(long)]
        keep: usize,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// A stored plan's name, or a plan file (imported first)
    pub plan: String,
    /// The network interface the machines boot on
    #[arg(long, value_name = "IF")]
    pub interface: String,
    /// This server's address on that interface [default: the interface's first IPv4 address]
    #[arg(long, value_name = "IP")]
    pub address: Option<std::net::Ipv4Addr>,
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    #[arg(long, default_value_t = 69)]
    pub tftp_port: u16,
    /// proxy: next to your router's DHCP; full: also hand out addresses (isolated switch); off
    #[arg(long, default_value_t = DhcpMode::Proxy, value_parser = dhcp_mode())]
    pub dhcp: DhcpMode,
    /// With --dhcp full: the addresses to hand out, START-END [default: the top quarter of the subnet]
    #[arg(long, value_name = "START-END")]
    pub dhcp_range: Option<String>,
    /// The image mirror: <channel>/<board>/<version>/<file>, as `flatcar-install -b` expects
    #[arg(long, value_name = "DIR")]
    pub mirror: Option<PathBuf>,
    /// The admin API (machines and live events), loopback only
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    pub admin: std::net::SocketAddr,
    /// Where undionly.kpxe / ipxe.efi / snponly.efi are [default: /usr/lib/ipxe, assets/ipxe]
    #[arg(long, value_name = "DIR")]
    pub ipxe_dir: Option<PathBuf>,
    /// Exit (status 0) once every planned machine reached this stage, such as `installed`;
    /// exit 1 if one fails
    #[arg(long, value_name = "STAGE", value_parser = stage())]
    pub exit_after: Option<Stage>,
    /// How long an armed machine may go without network-booting before its timeline says how
    /// to choose network boot at power-on
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub no_boot_after: u64,
    /// For programs (the desktop app runs the boot server this way): one JSON message per line
    /// on stdout (docs/boot-server.md), `arm NODE` lines read from stdin; stops when stdin closes
    #[arg(long)]
    pub json: bool,
}

/// `--dhcp`: the one DHCP-mode type, with its names as possible values.
fn dhcp_mode() -> impl TypedValueParser<Value = DhcpMode> {
    clap::builder::PossibleValuesParser::new(DhcpMode::ALL.map(DhcpMode::as_str))
        .try_map(|s: String| s.parse::<DhcpMode>())
}

/// `--exit-after`: a stage by its name.
fn stage() -> impl TypedValueParser<Value = Stage> {
    clap::builder::PossibleValuesParser::new(Stage::ALL.map(Stage::as_str))
        .try_map(|s: String| Stage::parse(&s).ok_or_else(|| format!("`{s}` is not a stage")))
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Check a plan file; exit 0 if it has no errors (warnings allowed), 1 if it has
    Validate {
        /// The plan file (`-` for standard input)
        file: PathBuf,
        /// Print {"findings":[{"severity","path","message"}]}
        #[arg(long)]
        json: bool,
        /// Also ask the LAN: a static address another host already answers for is a warning on
        /// its node (only addresses on this machine's links can be checked)
        #[arg(long)]
        lan: bool,
    },
    /// Add a plan from a file, or save it as a new revision of the plan of that name; prints the name
    Import {
        /// The plan file (`-` for standard input)
        file: PathBuf,
        /// Store the plan even if it has validation errors, to fix them later (unknown fields still refuse)
        #[arg(long)]
        allow_errors: bool,
    },
    /// List the stored plans
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print a stored plan as a plan file
    Show {
        name: String,
        /// Show this revision instead of the newest
        #[arg(long, short)]
        revision: Option<i64>,
        /// Print the plan with its findings as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a stored plan to a plan file
    Export {
        name: String,
        /// Where to write (`-` for standard output)
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Export this revision instead of the newest
        #[arg(long, short)]
        revision: Option<i64>,
    },
    /// Delete a stored plan with its history and secrets
    Rm { name: String },
    /// List a plan's revisions, newest first
    History {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier revision the newest again (the history keeps everything)
    Revert { name: String, revision: i64 },
    /// Rename a plan, keeping its history and secrets
    Rename { name: String, new_name: String },
    /// Copy a plan under a new name (the copy gets its own secrets)
    Copy { name: String, new_name: String },
}
