//! Secrets Flatlab generates for a plan. They live in the store, never in the plan file.

use rand::Rng;
use rand::distr::Alphanumeric;

/// The store's name for a plan's K3s cluster token.
pub const K3S_TOKEN: &str = "k3s-token";

/// A K3s token: 48 random letters and digits.
///
/// K3s reads a token beginning with `K10` as a full token with a CA hash, and one shaped like
/// `abcdef.0123456789abcdef` as a bootstrap token, so neither shape is ever produced.
pub fn generate_k3s_token(rng: &mut impl Rng) -> String {
    loop {
        let token: String = (0..48).map(|_| char::from(rng.sample(Alphanumeric))).collect();
        if !token.starts_with("K10") {
            return token;
        }
    }
}

/// A boot token (in a node's Ignition and report URLs): 32 random letters and digits.
pub fn generate_boot_token(rng: &mut impl Rng) -> String {
    (0..32).map(|_| char::from(rng.sample(Alphanumeric))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn tokens_are_long_alphanumeric_and_deterministic_for_a_seed() {
        let a = generate_k3s_token(&mut StdRng::seed_from_u64(7));
        let b = generate_k3s_token(&mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        let c = generate_k3s_token(&mut StdRng::seed_from_u64(8));
        assert_ne!(a, c);
    }

    #[test]
    fn never_starts_with_k10() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..2000 {
            assert!(!generate_k3s_token(&mut rng).starts_with("K10"));
        }
    }
}
