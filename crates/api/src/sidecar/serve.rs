//! The sidecar's side of the line protocol: runs the boot server and speaks on stdout.

use std::future::Future;
use std::io::Write;

use rand::Rng;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::broadcast::error::RecvError;

use super::{Request, SidecarLine, SidecarMessage};
use crate::{ApiError, ErrorBody, Flatlab, ServeOptions};

/// Numbers the lines of one run.
struct Lines<W: Write> {
    run: String,
    seq: u64,
    out: W,
}

impl<W: Write> Lines<W> {
    fn say(&mut self, message: SidecarMessage) {
        self.seq += 1;
        let line = SidecarLine { run: self.run.clone(), seq: self.seq, message };
        // A closed output means the app is gone; the end of the input stops the loop.
        let _ = writeln!(self.out, "{}", line.to_json());
        let _ = self.out.flush();
    }
}

/// Runs the boot server for `plan` as a sidecar: one [`SidecarLine`] per line on `output`,
/// [`Request`]s read from `input`, until `input` ends or `stop` completes. A boot server that
/// cannot start is told as an `error` line, and returned as the error.
pub async fn serve<R, W>(
    app: &Flatlab,
    plan: &str,
    options: ServeOptions,
    input: R,
    output: W,
    stop: impl Future<Output = ()>,
    rng: &mut impl Rng,
) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: Write,
{
    let run: String = (0..16).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect();
    let mut lines = Lines { run, seq: 0, out: output };
    let interface = options.interface.clone().unwrap_or_default();
    let session = match app.start_boot_server(plan, options, rng).await {
        Ok(s) => s,
        Err(e) => {
            lines.say(SidecarMessage::Error { error: ErrorBody::from(&e) });
            return Err(e);
        }
    };
    let registry = session.server().registry().clone();
    lines.say(SidecarMessage::Ready {
        plan: plan.to_owned(),
        interface,
        http: session.server().http_addr().to_string(),
        tftp: session.server().tftp_addr().map(|a| a.to_string()),
        admin: session.server().admin_addr().to_string(),
        warnings: session.warnings.clone(),
    });
    let mut events = registry.subscribe();
    lines.say(SidecarMessage::Machines { machines: registry.machines() });
    let mut input = input.lines();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            event = events.recv() => match event {
                Ok(event) => lines.say(SidecarMessage::Event { event }),
                // Fell behind: send the whole picture again.
                Err(RecvError::Lagged(_)) => lines.say(SidecarMessage::Machines { machines: registry.machines() }),
                Err(RecvError::Closed) => break,
            },
            line = input.next_line() => {
                let Ok(Some(line)) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match Request::parse(&line) {
                    Ok(Request::Arm { node, new_cluster }) => match app.arm_machine(plan, &node, new_cluster, Some(&session), rng).await {
                        Ok(_) => {
                            lines.say(SidecarMessage::Armed { node });
                            lines.say(SidecarMessage::Machines { machines: registry.machines() });
                        }
                        Err(e) => lines.say(SidecarMessage::Error { error: ErrorBody::from(&e) }),
                    },
                    Err(why) => lines.say(SidecarMessage::Error { error: ErrorBody::from(&anyhow::Error::from(ApiError::BadRequest(why))) }),
                }
            }
        }
    }
    session.stop().await;
    Ok(())
}
