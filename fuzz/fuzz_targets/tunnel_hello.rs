//! Fuzzes what a host's tunnel reads from anyone who connects to port 4108: a TLS ClientHello
//! (rustls's parser) whose server name must name a workload (`a-b-c-d.hbone.weft`) or its
//! proxy's admin port (`a-b-c-d.admin.weft`). The first
//! byte of the input says in what pieces the rest arrives (1 to 64 bytes), as TCP may split
//! it anywhere.
//!
//! Checks, whatever the bytes: nothing panics; a hello that names a workload names one whose
//! server name reads back as the same address; nothing more is taken after an answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_identity::hbone::{
    admin_server_name, parse_server_name, parse_target, server_name, HelloReader, Port,
};

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let mut reader = HelloReader::default();
    for piece in rest.chunks(step) {
        match reader.feed(piece) {
            Ok(None) => continue,
            Ok(Some(target)) => {
                let name = match target.port {
                    Port::Inbound => server_name(target.ip),
                    Port::Admin => admin_server_name(target.ip),
                };
                assert_eq!(parse_target(&name), Some(target));
                assert!(reader.feed(b"x").is_err());
                return;
            }
            Err(_) => return,
        }
    }
    // Also the name parser alone, on the input as text.
    if let Ok(text) = std::str::from_utf8(rest) {
        if let Some(ip) = parse_server_name(text) {
            assert_eq!(server_name(ip), text);
        }
        if let Some(target) = parse_target(text) {
            let name = match target.port {
                Port::Inbound => server_name(target.ip),
                Port::Admin => admin_server_name(target.ip),
            };
            assert_eq!(name, text);
        }
    }
});
