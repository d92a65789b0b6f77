//! Caps on what all clients together, and each client address, may hold at once: TFTP
//! transfers and HTTP connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
    refused: u64,
}

/// Hands out at most `total` permits at once, at most `per_address` to one address.
pub(crate) struct Limiter {
    counts: Arc<Mutex<Counts>>,
    total: usize,
    per_address: usize,
}

/// One place under a [`Limiter`], given back when dropped.
pub(crate) struct Permit {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limiter {
    pub(crate) fn new(total: usize, per_address: usize) -> Self {
        Limiter { counts: Arc::default(), total, per_address }
    }

    /// A permit for `ip`; when there are too many, how many were refused so far (for logging
    /// now and then) and how many are held in all.
    pub(crate) fn acquire(&self, ip: IpAddr) -> Result<Permit, (u64, usize)> {
        let mut c = lock(&self.counts);
        let mine = c.by_address.get(&ip).copied().unwrap_or(0);
        if c.total >= self.total || mine >= self.per_address {
            c.refused += 1;
            return Err((c.refused, c.total));
        }
        c.total += 1;
        *c.by_address.entry(ip).or_default() += 1;
        Ok(Permit { counts: self.counts.clone(), ip })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total -= 1;
        if let Some(n) = c.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_capped_in_all_and_per_address_and_given_back() {
        let limiter = Limiter::new(3, 2);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let first = limiter.acquire(a).expect("one");
        let _second = limiter.acquire(a).expect("two");
        assert_eq!(limiter.acquire(a).err(), Some((1, 2)), "a third for one address");
        let _other = limiter.acquire(b).expect("another address");
        assert_eq!(limiter.acquire(b).err(), Some((2, 3)), "four in all");
        drop(first);
        assert!(limiter.acquire(a).is_ok(), "given back");
    }
}
