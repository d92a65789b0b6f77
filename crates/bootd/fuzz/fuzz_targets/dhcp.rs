//! Any bytes on port 67/4011: decoding must never panic, and whatever decodes can be answered
//! and the answer encoded.
#![no_main]

use std::net::Ipv4Addr;

use flatlab_bootd::dhcp::{BootFiles, decode, encode, reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode(data) {
        let files = BootFiles {
            bios: Some("undionly.kpxe".into()),
            uefi_x64: Some("ipxe.efi".into()),
            uefi_arm64: None,
            http_base: "http://10.0.0.2:8080".into(),
        };
        let answer = reply(&req, dhcproto_kind(data), Ipv4Addr::new(10, 0, 0, 2), &files, None);
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
