//! A fixed clock at the real time of the test's start (certificates are checked against the
//! real clock by openssl and rustls), and the seeded randomness the tests share.

#![allow(dead_code)] // Each test crate uses a part.

use rand::SeedableRng;
use rand::rngs::StdRng;

pub struct Now(pub i64);

impl flatlab_api::Clock for Now {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

pub fn rng() -> StdRng {
    StdRng::seed_from_u64(14)
}
