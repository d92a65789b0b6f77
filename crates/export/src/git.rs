//! Export to a Git repository through the system `git`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, File, Result, io};

/// What to do with files that carry secrets.
#[derive(Debug, Clone, Default)]
pub enum SecretPolicy {
    /// Leave them out; a line in the folder's SECRETS.md says how to get them.
    #[default]
    Omit,
    /// Write them as `<file>.age`, encrypted to these `age1...` recipients.
    Encrypt(Vec<String>),
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct GitExport {
    pub repo: PathBuf,
    /// The folder in the repository (the plan's name).
    pub folder: String,
    pub branch: Option<String>,
    pub push: Option<String>,
    pub secrets: SecretPolicy,
    /// First line of the commit message; the changed files are listed below it.
    pub summary: String,
    /// How to get the left-out files, for SECRETS.md: `flatlab render lab -o DIR`.
    pub how_to_render: String,
}

/// What the export did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct GitOutcome {
    /// None when nothing changed (no commit was made).
    pub commit: Option<String>,
    pub pushed: bool,
    pub changed: Vec<String>,
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out =
        Command::new("git").arg("-C").arg(repo).args(args).env("GIT_TERMINAL_PROMPT", "0").output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NoGit
            } else {
                Error::Io { path: repo.into(), source: e }
            }
        })?;
    if !out.status.success() {
        return Err(Error::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("failed").to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes the files into `<repo>/<folder>/`, commits if anything changed, and pushes if asked.
pub fn export_git(files: &[File], export: &GitExport) -> Result<GitOutcome> {
    let repo = &export.repo;
    std::fs::create_dir_all(repo).map_err(io(repo))?;
    if !repo.join(".git").exists() {
        let branch = export.branch.as_deref().unwrap_or("main");
        git(repo, &["init", "-q", "-b", branch])?;
    } else if let Some(branch) = &export.branch {
        let current = git(repo, &["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_default();
        if current != *branch {
            let exists = git(repo, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).is_ok();
            if exists {
                git(repo, &["checkout", "-q", branch])?;
            } else {
                git(repo, &["checkout", "-q", "-b", branch])?;
            }
        }
    }

    let folder = repo.join(&export.folder);
    // The folder holds exactly this bundle: files of nodes no longer in the plan go.
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
    }
    let recipients = match &export.secrets {
        SecretPolicy::Omit => None,
        SecretPolicy::Encrypt(list) => Some(crate::seal::recipients(list)?),
    };
    let mut omitted = Vec::new();
    for f in files {
        let (rel, bytes) = match (f.secret, &recipients) {
            (false, _) => (f.path.clone(), f.contents.clone()),
            (true, None) => {
                omitted.push(f.path.clone());
                continue;
            }
            (true, Some(rs)) => (format!("{}.age", f.path), crate::seal::seal(rs, &f.contents, &f.path)?),
        };
        let target = folder.join(&rel);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(&target, bytes).map_err(io(&target))?;
    }
    // Keep clear-text secrets out even if someone renders into this folder by hand.
    let mut ignore = String::from(
        "# Written by Flatlab: files that hold the K3s token or the cluster's CA keys stay out of Git.\nconfig.ign\n",
    );
    ignore.push_str("nodes/*/config.ign\n");
    std::fs::write(folder.join(".gitignore"), ignore).map_err(io(&folder))?;
    let note = match &export.secrets {
        SecretPolicy::Omit if !omitted.is_empty() => format!(
            "# Left out of this repository\n\nThese files hold the cluster's K3s token (the first server's also the keys of its certificate authorities) and are not committed:\n\n{}\n\nGet them with `{}`, or export with `--encrypt-to` to commit them encrypted with age.\n",
            omitted.iter().map(|p| format!("- `{p}`")).collect::<Vec<_>>().join("\n"),
            export.how_to_render
        ),
        SecretPolicy::Encrypt(r) => format!(
            "# Encrypted files\n\nFiles ending in `.age` hold the cluster's K3s token (the first server's `config.ign.age` and `secrets-backup.json.age` also the keys of its certificate authorities), encrypted to:\n\n{}\n\nDecrypt with `age -d -i KEY FILE.age > FILE`; restore the keys into Flatlab with `flatlab secrets import secrets-backup.json.age --identity KEY`.\n",
            r.iter().map(|p| format!("- `{p}`")).collect::<Vec<_>>().join("\n")
        ),
        SecretPolicy::Omit => String::new(),
    };
    if !note.is_empty() {
        std::fs::write(folder.join("SECRETS.md"), note).map_err(io(&folder))?;
    }

    git(repo, &["add", "-A", "--", &export.folder])?;
    let changed: Vec<String> =
        git(repo, &["diff", "--cached", "--name-status", "--", &export.folder])?.lines().map(str::to_owned).collect();
    if changed.is_empty() {
        return Ok(GitOutcome { commit: None, pushed: false, changed });
    }
    let mut message = format!("{}\n\n", export.summary);
    for c in &changed {
        message.push_str(&format!("{c}\n"));
    }
    let mut args = vec![];
    // A machine without a Git identity still gets a commit, under Flatlab's name.
    let has_identity = git(repo, &["config", "user.email"]).is_ok_and(|e| !e.is_empty());
    if !has_identity {
        args.extend(["-c", "user.name=Flatlab", "-c", "user.email=flatlab@localhost"]);
    }
    args.extend(["commit", "-q", "-F", "-"]);
    commit_with_stdin(repo, &args, &message)?;
    let commit = git(repo, &["rev-parse", "HEAD"])?;
    let pushed = match &export.push {
        Some(remote) => {
            let branch = git(repo, &["rev-parse", "--abbrev-ref", "HEAD"])?;
            git(repo, &["push", "-q", remote, &branch])?;
            true
        }
        None => false,
    };
    Ok(GitOutcome { commit: Some(commit), pushed, changed })
}

fn commit_with_stdin(repo: &Path, args: &[&str], message: &str) -> Result<()> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io { path: repo.into(), source: e })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(message.as_bytes()).map_err(|e| Error::Io { path: repo.into(), source: e })?;
    }
    let out = child.wait_with_output().map_err(|e| Error::Io { path: repo.into(), source: e })?;
    if !out.status.success() {
        return Err(Error::Git {
            args: "commit".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}
