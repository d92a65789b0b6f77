//! Building Ignition configs with the `ignition-config` types, and writing them out.
//!
//! Configs are built with the spec 3.3.0 types; 3.4.0 only adds fields, so a 3.4.0 config is the
//! same document with another version string. Output is pretty JSON without `null` members, so
//! that the files read well and diff cleanly.

use flatlab_model::ValidatedPlan;
use ignition_config::v3_3 as ign;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::{Error, Result};

/// The Ignition spec version a config declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnitionSpec {
    /// Read by every supported Flatcar, and checked by Debian's `ignition-validate`.
    V3_3,
    /// For Flatcar releases from 2024 on (Stable reads up to 3.5).
    V3_4,
}

impl IgnitionSpec {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnitionSpec::V3_3 => "3.3.0",
            IgnitionSpec::V3_4 => "3.4.0",
        }
    }

    pub(crate) fn for_plan(plan: &ValidatedPlan) -> Result<Self> {
        if plan.plan().os.version.trim() == "current" {
            return Err(Error::UnpinnedVersion);
        }
        match plan.plan().os.ignition_version.as_deref() {
            None | Some("3.3.0") => Ok(IgnitionSpec::V3_3),
            Some("3.4.0") => Ok(IgnitionSpec::V3_4),
            Some(other) => Err(Error::UnsupportedSpec { found: other.to_owned() }),
        }
    }
}

/// Collects files, units and users, then writes the config.
#[derive(Default)]
pub(crate) struct ConfigBuilder {
    files: Vec<ign::File>,
    directories: Vec<ign::Directory>,
    units: Vec<ign::Unit>,
    ssh_keys: Vec<String>,
}

/// File modes, in the decimal Ignition wants.
pub(crate) const MODE_0644: i64 = 0o644;
pub(crate) const MODE_0600: i64 = 0o600;
pub(crate) const MODE_0755: i64 = 0o755;
pub(crate) const MODE_0700: i64 = 0o700;

impl ConfigBuilder {
    /// A file with inline contents.
    pub fn file(&mut self, path: &str, mode: i64, contents: &str) -> &mut Self {
        let mut f = ign::File::new(path.to_owned());
        f.mode = Some(mode);
        f.overwrite = Some(true);
        f.contents = Some(ign::Resource { source: Some(data_url(contents)), ..resource() });
        self.files.push(f);
        self
    }

    /// A file with inline contents, gzip-compressed in the config (for large files such as
    /// Kubernetes manifests). Compressed at level 9 with no timestamp, so the same contents
    /// always give the same config.
    pub fn compressed_file(&mut self, path: &str, mode: i64, contents: &str) -> &mut Self {
        use base64::Engine;
        use std::io::Write;
        let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
        gz.write_all(contents.as_bytes()).expect("writing to memory cannot fail");
        let bytes = gz.finish().expect("writing to memory cannot fail");
        let mut f = ign::File::new(path.to_owned());
        f.mode = Some(mode);
        f.overwrite = Some(true);
        f.contents = Some(ign::Resource {
            source: Some(format!("data:;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))),
            compression: Some("gzip".into()),
            ..resource()
        });
        self.files.push(f);
        self
    }

    /// A file Ignition downloads, verified by its SHA-256.
    pub fn remote_file(&mut self, path: &str, mode: i64, url: &str, sha256: &str) -> &mut Self {
        let mut f = ign::File::new(path.to_owned());
        f.mode = Some(mode);
        f.overwrite = Some(true);
        f.contents = Some(ign::Resource {
            source: Some(url.to_owned()),
            verification: Some(ign::Verification { hash: Some(format!("sha256-{}", sha256.to_ascii_lowercase())) }),
            ..resource()
        });
        self.files.push(f);
        self
    }

    pub fn directory(&mut self, path: &str, mode: i64) -> &mut Self {
        let mut d = ign::Directory::new(path.to_owned());
        d.mode = Some(mode);
        self.directories.push(d);
        self
    }

    /// A systemd unit, enabled (started at boot) or not.
    pub fn unit(&mut self, name: &str, enabled: bool, contents: &str) -> &mut Self {
        let mut u = ign::Unit::new(name.to_owned());
        u.enabled = Some(enabled);
        u.contents = Some(contents.to_owned());
        self.units.push(u);
        self
    }

    /// A unit masked (linked to /dev/null): it never starts.
    pub fn masked_unit(&mut self, name: &str) -> &mut Self {
        let mut u = ign::Unit::new(name.to_owned());
        u.mask = Some(true);
        self.units.push(u);
        self
    }

    pub fn ssh_keys(&mut self, keys: &[String]) -> &mut Self {
        self.ssh_keys = keys.iter().map(|k| k.trim().to_owned()).collect();
        self
    }

    pub fn build(self, spec: IgnitionSpec) -> String {
        let mut config = ign::Config::default();
        if !self.ssh_keys.is_empty() {
            let mut core = ign::User::new("core".to_owned());
            core.ssh_authorized_keys = Some(self.ssh_keys);
            config.passwd = Some(ign::Passwd { users: Some(vec![core]), ..Default::default() });
        }
        config.storage = Some(ign::Storage {
            directories: (!self.directories.is_empty()).then_some(self.directories),
            files: (!self.files.is_empty()).then_some(self.files),
            ..Default::default()
        });
        if !self.units.is_empty() {
            config.systemd = Some(ign::Systemd { units: Some(self.units) });
        }
        let mut value = serde_json::to_value(&config).expect("Ignition types always serialize");
        strip_nulls(&mut value);
        value["ignition"]["version"] = serde_json::Value::String(spec.as_str().to_owned());
        let mut out = serde_json::to_string_pretty(&value).expect("JSON values always serialize");
        out.push('\n');
        out
    }
}

fn resource() -> ign::Resource {
    ign::Resource { compression: None, http_headers: None, source: None, verification: None }
}

fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded in a data URL.
const DATA_URL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// An RFC 2397 data URL with everything but unreserved characters percent-encoded.
pub(crate) fn data_url(contents: &str) -> String {
    format!("data:,{}", utf8_percent_encode(contents, DATA_URL))
}

/// Decodes a `data:,` URL made by this crate (and plain percent-encoded ones); for tests and
/// previews. None when it is not such a URL or its contents are not UTF-8.
pub fn data_url_decode(url: &str) -> Option<String> {
    let encoded = url.strip_prefix("data:,")?;
    percent_decode_str(encoded).decode_utf8().ok().map(|s| s.into_owned())
}

/// The text of an inline Ignition file: a `data:` URL as this crate writes them, plain or
/// (with `compression` `gzip`) base64 of gzip. None for a remote file or contents that are not
/// UTF-8; for tests and previews.
pub fn inline_contents(source: &str, compression: Option<&str>) -> Option<String> {
    use base64::Engine;
    use std::io::Read;
    match compression {
        None | Some("") => data_url_decode(source),
        Some("gzip") => {
            let b64 = source.strip_prefix("data:;base64,")?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            let mut text = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text).ok()?;
            Some(text)
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_round_trip() {
        let text = "#!/bin/bash\nset -euo pipefail\necho \"héllo 100%\" > /tmp/x\n";
        let url = data_url(text);
        assert!(url.starts_with("data:,%23%21%2Fbin%2Fbash%0A"));
        assert!(!url.contains(' ') && !url.contains('\n'));
        assert_eq!(data_url_decode(&url).as_deref(), Some(text));
    }

    #[test]
    fn compressed_files_read_back_and_are_the_same_every_time() {
        let text = "apiVersion: v1\nkind: Namespace\n".repeat(200);
        let config = |t: &str| {
            let mut b = ConfigBuilder::default();
            b.compressed_file("/var/lib/rancher/k3s/server/manifests/x.yaml", MODE_0644, t);
            b.build(IgnitionSpec::V3_3)
        };
        let json = config(&text);
        assert_eq!(json, config(&text), "deterministic");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        let contents = &v["storage"]["files"][0]["contents"];
        assert_eq!(contents["compression"], "gzip");
        let source = contents["source"].as_str().expect("source");
        assert!(source.len() < text.len() / 4, "compressed: {} of {}", source.len(), text.len());
        assert_eq!(inline_contents(source, Some("gzip")).as_deref(), Some(text.as_str()));
    }

    #[test]
    fn configs_have_no_nulls_and_declare_the_spec() {
        let mut b = ConfigBuilder::default();
        b.file("/etc/hostname", MODE_0644, "cp1\n").unit("x.service", true, "[Unit]\n");
        let json = b.build(IgnitionSpec::V3_4);
        assert!(!json.contains("null"), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["ignition"]["version"], "3.4.0");
        assert_eq!(v["storage"]["files"][0]["mode"], 420);
    }
}
