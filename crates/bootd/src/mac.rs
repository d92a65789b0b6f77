//! MAC addresses, as the boot server sees them on the wire. (The plan's own type is the model's
//! `MacAddr`; `api` converts between the two in one place.)

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address. Displays as lowercase, colon-separated: `52:54:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `52-54-00-00-00-01`, the form iPXE's `${net0/mac:hexhyp}` produces.
    pub fn hyphenated(&self) -> String {
        self.to_string().replace(':', "-")
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (six hexadecimal octets separated by `:` or `-`)")]
pub struct ParseMacError;

impl FromStr for Mac {
    type Err = ParseMacError;

    /// `52:54:00:12:34:56` or `52-54-00-12-34-56`, in any case.
    fn from_str(s: &str) -> Result<Self, ParseMacError> {
        let sep = if s.contains(':') { ':' } else { '-' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for slot in &mut out {
            let p = parts.next().ok_or(ParseMacError)?;
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseMacError);
            }
            *slot = u8::from_str_radix(p, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(Mac(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_in_both_forms_and_print_one_way() {
        let mac = Mac([0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
        assert_eq!("52:54:00:ab:cd:ef".parse::<Mac>(), Ok(mac));
        assert_eq!("52-54-00-AB-CD-EF".parse::<Mac>(), Ok(mac));
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(mac.hyphenated(), "52-54-00-ab-cd-ef");
        for bad in ["52:54:00:ab:cd", "52:54:00:ab:cd:ef:00", "52:54:00:ab:cd:+f", "", "5254.00ab.cdef"] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }
}
