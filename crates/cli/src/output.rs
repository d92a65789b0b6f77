//! How the CLI prints things people read: counts, sizes, paths to paste, download progress.

use flatlab_model::{Finding, Severity, count};

/// `2 errors, 1 warning`, or `no problems`.
pub fn tally(findings: &[Finding]) -> String {
    problems(count(findings, Severity::Error), count(findings, Severity::Warning))
}

pub fn problems(e: usize, w: usize) -> String {
    match (e, w) {
        (0, 0) => "no problems".into(),
        _ => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// `1 file`, `3 files`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// 1.5 GiB, 16 MiB: sizes of drives as people read them.
pub fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 { format!("{:.1} GiB", mib / 1024.0) } else { format!("{mib:.0} MiB") }
}

/// A path as it can be pasted into a shell.
pub fn shell_quote(s: &str) -> String {
    shlex::try_quote(s).map(|q| q.into_owned()).unwrap_or_else(|_| s.escape_default().to_string())
}

/// One line of download progress: `file: 12.5 of 300.0 MiB, 11.2 MiB/s, 0:25 left`.
pub fn progress_line(p: &flatlab_api::mirror::Progress) -> (String, String) {
    let file = p.url.rsplit('/').next().unwrap_or(&p.url).to_owned();
    let mib = |b: u64| b as f64 / 1048576.0;
    let line = match (p.total, p.eta) {
        (Some(t), Some(eta)) => format!(
            "{file}: {:.1} of {:.1} MiB, {:.1} MiB/s, {}:{:02} left",
            mib(p.done),
            mib(t),
            p.rate / 1048576.0,
            eta.as_secs() / 60,
            eta.as_secs() % 60
        ),
        _ => format!("{file}: {:.1} MiB, {:.1} MiB/s", mib(p.done), p.rate / 1048576.0),
    };
    (file, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_only_when_they_need_it() {
        assert_eq!(shell_quote("/dev/sdb1"), "/dev/sdb1");
        assert_eq!(shell_quote("/media/ada/MY STICK"), "'/media/ada/MY STICK'");
        assert_eq!(shell_quote("it's"), "\"it's\"");
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(problems(0, 0), "no problems");
        assert_eq!(problems(1, 2), "1 error, 2 warnings");
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }
}
