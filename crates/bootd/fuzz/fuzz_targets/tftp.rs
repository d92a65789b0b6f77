//! Any bytes on port 69: parsing must never panic, and no request may name a file that is not
//! on the allow-list.
#![no_main]

use flatlab_bootd::tftp::{AllowList, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_request(data) {
        let mut files = AllowList::new();
        files.insert("ipxe.efi", vec![1, 2, 3]);
        if let Some(bytes) = files.get(&req.filename) {
            assert!(req.filename == "ipxe.efi" || req.filename == "/ipxe.efi", "{:?}", req.filename);
            assert_eq!(&*bytes, &[1, 2, 3]);
        }
        if let Some(b) = req.blksize {
            assert!((8..=65464).contains(&b));
        }
    }
});
