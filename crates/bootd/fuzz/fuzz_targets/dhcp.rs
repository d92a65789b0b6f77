//! Any bytes on port 67/4011: decoding must never panic, and whatever decodes can be answered
//! and the answer encoded.
#![no_main]

use std::net::Ipv4Addr;

use flatlab_bootd::BootFile;
use flatlab_bootd::dhcp::{decode, encode, reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode(data) {
        let file = if req.ipxe {
            BootFile::Url("http://10.0.0.2:8080/boot.ipxe".into())
        } else {
            BootFile::Tftp("undionly.kpxe".into())
        };
        let answer = reply(&req, dhcproto_kind(data), Ipv4Addr::new(10, 0, 0, 2), Some(&file), None);
        let _ = encode(&answer);
    }
});

fn dhcproto_kind(data: &[u8]) -> flatlab_bootd::dhcp::MessageType {
    if data.first().is_some_and(|b| b % 2 == 0) {
        flatlab_bootd::dhcp::MessageType::Offer
    } else {
        flatlab_bootd::dhcp::MessageType::Ack
    }
}
