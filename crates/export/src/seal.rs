//! Files only their owners can read: encrypted to `age` recipients (`age1...`), ASCII-armored,
//! and opened again with an `age` identity file. Git exports use it for files that hold
//! secrets, and secret backups for the whole of a plan's secrets.

use std::io::{Read, Write};
use std::path::Path;

use crate::{Error, Result};

/// Parses `age1...` recipients; none is an error.
pub fn recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    if list.is_empty() {
        return Err(Error::BadRecipient("(none given)".into()));
    }
    list.iter()
        .map(|r| r.trim().parse::<age::x25519::Recipient>().map_err(|_| Error::BadRecipient(r.clone())))
        .collect()
}

/// `plaintext` encrypted to `recipients`, armored. `what` names it in errors.
pub fn seal(recipients: &[age::x25519::Recipient], plaintext: &[u8], what: &str) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::Encrypt { path: what.into(), message: e.to_string() };
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient)).map_err(|e| err(&e))?;
    let mut out = Vec::new();
    let armored =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).map_err(|e| err(&e))?;
    let mut writer = encryptor.wrap_output(armored).map_err(|e| err(&e))?;
    writer.write_all(plaintext).map_err(|e| err(&e))?;
    writer.finish().and_then(|a| a.finish()).map_err(|e| err(&e))?;
    Ok(out)
}

/// Opens what [`seal`] made, with the identities in the `age` identity file `identity`.
pub fn open(sealed: &[u8], identity: &Path) -> Result<Vec<u8>> {
    let err = |message: String| Error::Decrypt { path: identity.to_owned(), message };
    let identities = age::IdentityFile::from_file(identity.to_string_lossy().into_owned())
        .map_err(|e| err(format!("cannot read the identity file: {e}")))?
        .into_identities()
        .map_err(|e| err(format!("cannot read the identity file: {e}")))?;
    let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(sealed))
        .map_err(|e| err(format!("not an age-encrypted file: {e}")))?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| err(format!("none of its identities opens it: {e}")))?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(|e| err(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn sealed_bytes_open_with_the_identity_and_not_without() {
        let dir = tempfile::tempdir().expect("tmp");
        let identity = age::x25519::Identity::generate();
        let key_file = dir.path().join("key.txt");
        std::fs::write(&key_file, format!("{}\n", identity.to_string().expose_secret())).expect("write");
        let to = recipients(&[identity.to_public().to_string()]).expect("recipient");
        let sealed = seal(&to, b"the keys to the cluster", "secrets").expect("seals");
        assert!(String::from_utf8_lossy(&sealed).starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert_eq!(open(&sealed, &key_file).expect("opens"), b"the keys to the cluster");
        let other = dir.path().join("other.txt");
        std::fs::write(&other, format!("{}\n", age::x25519::Identity::generate().to_string().expose_secret()))
            .expect("w");
        assert!(open(&sealed, &other).is_err());
        assert!(recipients(&[]).is_err());
        assert!(recipients(&["age1notakey".into()]).is_err());
    }
}
