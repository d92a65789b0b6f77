//! SSH keys for the nodes: public keys only, each once.

use std::collections::HashSet;

use super::Validator;

impl Validator<'_> {
    pub(super) fn ssh_keys(&mut self) {
        let keys = &self.plan.ssh_authorized_keys;
        if keys.is_empty() {
            self.warning(
                "ssh_authorized_keys",
                "no SSH key: you will not be able to log in to the nodes if something goes wrong; add your public key (~/.ssh/id_ed25519.pub)",
            );
        }
        let mut seen = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            let path = format!("ssh_authorized_keys[{i}]");
            let key = key.trim();
            // Never echo what looks like a private key back into logs or the UI.
            if key.contains("PRIVATE KEY") {
                self.error(
                    path,
                    "this is a private key: remove it now and keep it secret; paste the public key from the matching .pub file instead",
                );
                continue;
            }
            match ssh_key::PublicKey::from_openssh(key) {
                Ok(parsed) => {
                    let blob = parsed.key_data().clone();
                    if !seen.insert(blob) {
                        self.warning(path, "the same key is listed twice; remove one");
                    }
                }
                Err(e) => self.error(
                    path,
                    format!("not an OpenSSH public key ({e}); paste one whole line of a .pub file, such as `ssh-ed25519 AAAA… me@laptop`"),
                ),
            }
        }
    }
}
