//! `flatlab mirror fetch|list|verify|prune`: Flatcar images and K3s for offline installs.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::args::MirrorCommand;
use crate::output::progress_line;

pub fn run(cmd: MirrorCommand) -> anyhow::Result<ExitCode> {
    use flatlab_api::mirror::{MirrorRequest, default_mirror_dir, fetch};
    let dir = |d: Option<PathBuf>| d.map(Ok).unwrap_or_else(default_mirror_dir);
    match cmd {
        MirrorCommand::Fetch { channel, arch, version, base_url, key, dir: d, k3s, k3s_base_url, k3s_airgap } => {
            let request = MirrorRequest {
                channel,
                arch,
                version,
                base_url,
                key,
                dir: dir(d)?,
                k3s,
                k3s_base_url,
                k3s_airgap,
                cancel: None,
            };
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let mut last_file = String::new();
            let mut progress = |p: flatlab_api::mirror::Progress| {
                let (file, line) = progress_line(&p);
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else if file != last_file {
                    eprintln!("downloading {file}");
                }
                last_file = file;
            };
            let done = fetch(&request, &mut progress);
            if tty {
                eprintln!();
            }
            let done = done?;
            eprintln!(
                "Flatcar {} verified and mirrored in {} ({} files){}",
                done.version,
                request.dir.display(),
                done.files.len(),
                done.k3s.map(|k| format!("; K3s at {}", k.display())).unwrap_or_default()
            );
            println!("{}", done.version);
        }
        MirrorCommand::List { dir: d } => {
            let releases = flatlab_api::mirror::list(&dir(d)?)?;
            if releases.is_empty() {
                eprintln!("the mirror is empty: `flatlab mirror fetch` adds the current stable release");
            }
            for r in releases {
                println!(
                    "{}/{}/{}  {:.0} MiB  {}",
                    r.channel,
                    r.board,
                    r.version,
                    r.bytes as f64 / 1048576.0,
                    if r.complete {
                        "complete".to_owned()
                    } else {
                        format!("incomplete ({} of 3 files)", r.files.len())
                    }
                );
            }
        }
        MirrorCommand::Verify { dir: d, key } => {
            let report = flatlab_api::mirror::verify(&dir(d)?, key.as_deref())?;
            let mut bad = 0;
            for (file, problem) in &report {
                match problem {
                    None => println!("ok      {}", file.display()),
                    Some(e) => {
                        bad += 1;
                        println!("FAILED  {}: {e}", file.display());
                    }
                }
            }
            eprintln!("{} checked, {bad} failed", report.len());
            if bad > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        MirrorCommand::Prune { keep, dir: d } => {
            for removed in flatlab_api::mirror::prune(&dir(d)?, keep)? {
                eprintln!("removed {}", removed.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
