//! Names and versions: labels, DNS names, Flatcar and K3s release numbers.

pub(super) fn check_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("missing".into());
    }
    if name.len() > 63 {
        return Err(format!("`{name}` is longer than 63 characters"));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("`{name}` has capital letters; write `{}`", name.to_ascii_lowercase()));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("`{name}` may only use a-z, 0-9 and `-`"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!("`{name}` must start and end with a letter or digit"));
    }
    Ok(())
}

pub(super) fn check_dns_name(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in name.split('.') {
        check_label(&label.to_ascii_lowercase())?;
    }
    Ok(())
}

pub(super) fn is_flatcar_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| is_number(p))
}

/// `v1.32.2+k3s1`, optionally with a pre-release such as `v1.33.0-rc1+k3s1`.
pub(super) fn is_k3s_version(v: &str) -> bool {
    crate::K3sVersion::parse(v).is_some()
}

pub(super) fn is_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
}
