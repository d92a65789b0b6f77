//! MAC addresses.

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address. Displays as lowercase, colon-separated: `52:54:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Multicast (and broadcast) addresses have the low bit of the first octet set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// `52-54-00-00-00-01`, the form iPXE's `${net0/mac:hexhyp}` produces.
    pub fn hyphenated(&self) -> String {
        self.to_string().replace(':', "-")
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected six hexadecimal octets separated by `:` or `-`, such as 52:54:00:12:34:56")]
pub struct ParseMacError;

impl FromStr for MacAddr {
    type Err = ParseMacError;

    /// Accepts `52:54:00:12:34:56` and `52-54-00-12-34-56`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let sep = if s.contains(':') { ':' } else { '-' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for slot in &mut out {
            let part = parts.next().ok_or(ParseMacError)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseMacError);
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_separators_and_normalises_case() {
        let a: MacAddr = "52:54:00:AB:cd:01".parse().expect("colon form");
        let b: MacAddr = "52-54-00-ab-CD-01".parse().expect("hyphen form");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "52:54:00:ab:cd:01");
        assert_eq!(a.hyphenated(), "52-54-00-ab-cd-01");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "52:54:00:00:00",
            "52:54:00:00:00:01:02",
            "52:54:00:00:00:0g",
            "5254.0000.0001",
            "52:54:00-00:00:01",
            "520:54:00:00:00:1",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn multicast_bit() {
        assert!("01:00:5e:00:00:01".parse::<MacAddr>().expect("mac").is_multicast());
        assert!("ff:ff:ff:ff:ff:ff".parse::<MacAddr>().expect("mac").is_multicast());
        assert!(!"52:54:00:00:00:01".parse::<MacAddr>().expect("mac").is_multicast());
    }
}
