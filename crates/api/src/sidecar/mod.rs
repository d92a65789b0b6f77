//! The boot server as the desktop app's sidecar: `flatlab serve --json`, a separate process, so
//! that only it needs the privilege for ports 67 and 69.
//!
//! The line protocol (docs/boot-server.md, "For programs"): the sidecar writes one
//! [`SidecarLine`] of JSON per stdout line, each with the id of its run and a sequence number;
//! it reads [`Request`]s (`arm NODE`) on stdin and stops when stdin closes, so it never
//! outlives the app. [`serve`] is the sidecar's side; [`Supervisor`] is the app's.

mod serve;
mod supervisor;

use flatlab_bootd::{Event, MachineStatus};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ErrorBody;

pub use serve::serve;
pub use supervisor::{BootStatus, BootStopped, StartOptions, Supervisor, SupervisorEvent, sidecar_program};

/// What the sidecar tells the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[ts(export)]
pub enum SidecarMessage {
    /// Listening; the first line.
    Ready { plan: String, interface: String, http: String, tftp: Option<String>, admin: String, warnings: Vec<String> },
    /// Every machine the server knows, right after `ready` (and again after an `arm`).
    Machines { machines: Vec<MachineStatus> },
    /// Something happened to a machine.
    Event { event: Event },
    /// A node was armed for reinstall on request.
    Armed { node: String },
    /// A request or the server failed; when the server itself failed, it exits after this line.
    Error { error: ErrorBody },
}

/// One line of the sidecar's output: a message with where it stands in its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SidecarLine {
    /// This run of the sidecar (random, new at every start): lines of a restarted sidecar are
    /// never taken for old ones.
    pub run: String,
    /// Counts the run's lines from 1, so that a reader drops a line it has seen.
    #[ts(type = "number")]
    pub seq: u64,
    #[serde(flatten)]
    #[ts(flatten)]
    pub message: SidecarMessage,
}

impl SidecarLine {
    /// The line as JSON (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"run":"{}","seq":{},"type":"error","error":{{"code":"internal","message":"cannot encode a message: {e}"}}}}"#,
                self.run, self.seq
            )
        })
    }
}

/// What the app asks the sidecar, one per stdin line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `arm NODE`: arm a node for reinstall, at once; `arm-new-cluster NODE`: the plan's first
    /// server, to start a new cluster (the user gave up the old one's data).
    Arm { node: String, new_cluster: bool },
}

impl Request {
    /// Reads a request line; the error says what the sidecar understands.
    pub fn parse(line: &str) -> Result<Request, String> {
        let line = line.trim();
        match line.split_once(' ') {
            Some((verb @ ("arm" | "arm-new-cluster"), node))
                if !node.trim().is_empty() && !node.contains(char::is_control) =>
            {
                Ok(Request::Arm { node: node.trim().to_owned(), new_cluster: verb == "arm-new-cluster" })
            }
            _ => Err(format!(
                "unknown request `{}`; the sidecar understands `arm NODE` and `arm-new-cluster NODE`",
                line.escape_debug()
            )),
        }
    }

    /// The request as the line the sidecar reads (with its newline).
    pub fn to_line(&self) -> String {
        match self {
            Request::Arm { node, new_cluster: false } => format!("arm {node}\n"),
            Request::Arm { node, new_cluster: true } => format!("arm-new-cluster {node}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_their_run_and_number_and_read_back() {
        let line = SidecarLine { run: "r1".into(), seq: 7, message: SidecarMessage::Armed { node: "cp1".into() } };
        let json = line.to_json();
        assert_eq!(json, r#"{"run":"r1","seq":7,"type":"armed","node":"cp1"}"#);
        assert_eq!(serde_json::from_str::<SidecarLine>(&json).expect("reads"), line);
        let error: SidecarLine = serde_json::from_str(
            r#"{"run":"r2","seq":1,"type":"error","error":{"code":"already_running","message":"m"}}"#,
        )
        .expect("reads");
        assert!(
            matches!(error.message, SidecarMessage::Error { error } if error.code == crate::ErrorCode::AlreadyRunning)
        );
    }

    #[test]
    fn requests_parse_and_print() {
        assert_eq!(Request::parse("arm cp1\n"), Ok(Request::Arm { node: "cp1".into(), new_cluster: false }));
        assert_eq!(Request::Arm { node: "cp1".into(), new_cluster: false }.to_line(), "arm cp1\n");
        let new = Request::Arm { node: "cp1".into(), new_cluster: true };
        assert_eq!(new.to_line(), "arm-new-cluster cp1\n");
        assert_eq!(Request::parse(&new.to_line()), Ok(new));
        for bad in ["", "arm", "arm ", "disarm cp1", "arm cp1\u{7}", "reboot"] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
    }
}
