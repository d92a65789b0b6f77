//! OpenPGP verification of detached signatures, against the subkey that made them as of the
//! time they were made (Flatcar's signing subkeys rotate, expire and get revoked).

use std::io::Read;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::{KeyDetails, Timestamp};

use crate::error::{Error, Result};

/// The keys signatures are checked against.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Who made a good signature, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The primary key's fingerprint, upper-case hex.
    pub primary: String,
    /// The (sub)key that made the signature, upper-case hex.
    pub signer: String,
    /// Seconds since the epoch.
    pub created: Option<u64>,
}

impl Keyring {
    /// Reads one or more ASCII-armored public keys.
    pub fn from_armored(text: &str) -> Result<Keyring> {
        let (keys, _) = SignedPublicKey::from_armor_many(text.as_bytes()).map_err(|e| Error::Key(e.to_string()))?;
        let keys: Vec<SignedPublicKey> =
            keys.collect::<std::result::Result<_, _>>().map_err(|e| Error::Key(e.to_string()))?;
        if keys.is_empty() {
            return Err(Error::Key("no public key in the file".into()));
        }
        for k in &keys {
            k.verify_bindings().map_err(|e| Error::Key(format!("the key's self-signatures do not verify: {e}")))?;
        }
        Ok(Keyring { keys })
    }

    /// The primary keys' fingerprints, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| hex(k.primary_key.fingerprint().as_bytes())).collect()
    }

    /// Checks `signature` (binary or armored) over everything `data` yields.
    pub fn verify(&self, signature: &[u8], data: impl Read) -> Result<Verified> {
        let sig = if signature.starts_with(b"-----BEGIN") {
            DetachedSignature::from_armor_single(signature).map(|(s, _)| s)
        } else {
            DetachedSignature::from_bytes(signature)
        }
        .map_err(|e| Error::BadSignature(format!("not an OpenPGP signature: {e}")))?
        .signature;
        let created = sig.created().map(|t: Timestamp| u64::from(t.as_secs()));
        let issuers: Vec<Vec<u8>> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .chain(sig.issuer_key_id().iter().map(|id| id.as_ref().to_vec()))
            .collect();
        let matches = |fp: &[u8]| issuers.iter().any(|i| fp.ends_with(i));

        for key in &self.keys {
            let primary = hex(key.primary_key.fingerprint().as_bytes());
            if matches(key.primary_key.fingerprint().as_bytes()) {
                sig.verify(&key.primary_key, data).map_err(|e| Error::BadSignature(e.to_string()))?;
                return Ok(Verified { signer: primary.clone(), primary, created });
            }
            for sub in &key.public_subkeys {
                let fp = sub.key.fingerprint();
                if !matches(fp.as_bytes()) {
                    continue;
                }
                check_subkey_at(sub, created)?;
                sig.verify(&sub.key, data).map_err(|e| Error::BadSignature(e.to_string()))?;
                return Ok(Verified { primary, signer: hex(fp.as_bytes()), created });
            }
        }
        Err(Error::BadSignature("made by a key that is not in the keyring".into()))
    }
}

/// A subkey may sign at time `at` if a binding says so and no revocation or expiry came before.
fn check_subkey_at(sub: &pgp::composed::SignedPublicSubKey, at: Option<u64>) -> Result<()> {
    use pgp::packet::SignatureType;
    let at = at.ok_or_else(|| Error::BadSignature("the signature has no creation time".into()))?;
    let mut bound = false;
    for s in &sub.signatures {
        let created = s.created().map(|t| u64::from(t.as_secs())).unwrap_or(0);
        match s.typ() {
            Some(SignatureType::SubkeyRevocation) if created <= at => {
                return Err(Error::BadSignature("made by a subkey revoked before the signature was made".into()));
            }
            Some(SignatureType::SubkeyBinding) if created <= at => {
                if let Some(validity) = s.key_expiration_time() {
                    let key_created = u64::from(sub.key.created_at().as_secs());
                    if at > key_created + validity.as_secs() as u64 {
                        return Err(Error::BadSignature("made by a subkey after it expired".into()));
                    }
                }
                bound = true;
            }
            _ => {}
        }
    }
    if bound { Ok(()) } else { Err(Error::BadSignature("made by a subkey not bound to the key at that time".into())) }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
