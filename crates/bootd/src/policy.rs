//! The boot server's decisions, behind a trait, the way pixiecore's `Booter` keeps policy out of
//! its DHCP, TFTP and HTTP code: which boot file a firmware gets, what each iPXE script says,
//! which download moves a machine to which stage, and where state is kept. The protocol code
//! asks; `api` answers (it knows plans and the store).

use std::future::Future;
use std::pin::Pin;

use crate::dhcp::Firmware;
use crate::mac::Mac;
use crate::stage::{MachineRecord, Stage, StrangerRecord};

/// A save in progress. An error is a message for the log.
pub type SaveFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What DHCP tells a network-booting client to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootFile {
    /// A file name for the client's TFTP (from the boot server's allow-list).
    Tftp(String),
    /// A URL: for iPXE, and for UEFI HTTP boot.
    Url(String),
}

/// A network-booting client, as its DHCP request describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootClient {
    pub mac: Mac,
    pub firmware: Option<Firmware>,
    /// Option 93 as sent.
    pub arch: Option<u16>,
    /// The client is iPXE (user class `iPXE`): it wants a script URL, not iPXE again.
    pub ipxe: bool,
    /// The MAC is one of the plan's machines.
    pub planned: bool,
}

/// A machine asking for its iPXE script, with what the boot server knows of it.
#[derive(Debug, Clone, Copy)]
pub struct ScriptRequest<'a> {
    pub mac: Mac,
    /// Its node when it is planned.
    pub node: Option<&'a str>,
    pub stage: Option<Stage>,
    /// The node's rendered install script, when it is planned.
    pub install_script: Option<&'a str>,
    /// The machine's inspection script, while it is to be inspected.
    pub inspect_script: Option<&'a str>,
    /// How many times the machine has asked in a row (`?round=N` of a waiting machine's script).
    pub round: u32,
}

/// The answer to a machine's script request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// The machine starts (or starts over) its install: its address is bound to its install
    /// token, and it moves to `ipxe`.
    Install(String),
    /// The machine is inspected: the live system that reports its hardware. Its address is
    /// bound to the inspection's token.
    Inspect(String),
    /// Anything else (boot from disk, wait, not in the plan): served as it is, nothing changes.
    Other(String),
}

/// The policy of a boot server. Every method but the saves is called with no lock held and
/// must answer at once (no IO).
pub trait Booter: Send + Sync + 'static {
    /// What a network-booting client should load; None sends no boot information. `http_base`
    /// is where this server's HTTP listens, such as `http://10.0.0.2:8080`.
    fn boot_file(&self, client: &BootClient, http_base: &str) -> Option<BootFile>;

    /// The first-stage script every iPXE gets (`/boot.ipxe`).
    fn first_stage(&self, http_base: &str) -> String;

    /// A machine's own script (`/v1/boot/<mac>.ipxe?round=N`).
    fn script(&self, request: &ScriptRequest<'_>, http_base: &str) -> Script;

    /// The stage a download of mirror file `file` moves its machine to, if any.
    fn download_stage(&self, file: &str) -> Option<Stage>;

    /// Makes a planned machine's new state durable. The boot server waits for it before it sends
    /// the answer that depends on that state.
    fn save(&self, record: MachineRecord) -> SaveFuture;

    /// Keeps a machine that is not in the plan (best effort; nothing waits for it).
    fn save_stranger(&self, record: StrangerRecord) -> SaveFuture;

    /// Keeps the hardware inventory machine `mac` (the plan's node `node`, or "" for a machine
    /// the plan does not have, being inspected) posted: the bytes as
    /// they came, at most [`crate::MAX_INVENTORY_BYTES`]. An error is told to the machine
    /// (its inventory was not understood) and logged.
    fn save_inventory(&self, mac: Mac, node: &str, body: Vec<u8>) -> SaveFuture;
}
