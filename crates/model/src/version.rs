//! K3s release versions (`v1.32.2+k3s1`, `v1.33.0-rc1+k3s1`) and their order.

use std::cmp::Ordering;
use std::fmt;

/// A K3s release: a Kubernetes version and K3s's build number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K3sVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// A pre-release such as `rc1`; a release without one is newer than any with one.
    pub pre: Option<String>,
    /// The `N` of `+k3sN`.
    pub build: u32,
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

impl K3sVersion {
    /// Reads `v1.32.2+k3s1`; None for anything else.
    pub fn parse(v: &str) -> Option<Self> {
        let rest = v.strip_prefix('v')?;
        let (semver, build) = rest.split_once('+')?;
        let build = number(build.strip_prefix("k3s")?)?;
        let (core, pre) = match semver.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (semver, None),
        };
        if let Some(pre) = pre
            && (pre.is_empty() || !pre.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        {
            return None;
        }
        let mut parts = core.split('.');
        let (major, minor, patch) = (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
        if parts.next().is_some() {
            return None;
        }
        Some(K3sVersion { major, minor, patch, pre: pre.map(str::to_owned), build })
    }
}

impl Ord for K3sVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
            .then(self.build.cmp(&other.build))
    }
}

impl PartialOrd for K3sVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for K3sVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        write!(f, "+k3s{}", self.build)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> K3sVersion {
        K3sVersion::parse(s).expect(s)
    }

    #[test]
    fn versions_read_back_and_order_as_releases_do() {
        for s in ["v1.32.2+k3s1", "v1.33.0-rc1+k3s1", "v1.31.12+k3s2"] {
            assert_eq!(v(s).to_string(), s);
        }
        assert!(v("v1.32.2+k3s1") < v("v1.32.2+k3s2"));
        assert!(v("v1.32.2+k3s2") < v("v1.32.10+k3s1"));
        assert!(v("v1.33.0-rc1+k3s1") < v("v1.33.0+k3s1"));
        assert!(v("v1.32.9+k3s1") < v("v1.33.0-rc1+k3s1"));
        for bad in ["1.32.2+k3s1", "v1.32+k3s1", "v1.32.2", "v1.32.2+k3s", "v1.32.2-+k3s1", "v1.32.2.1+k3s1"] {
            assert_eq!(K3sVersion::parse(bad), None, "{bad}");
        }
    }
}
