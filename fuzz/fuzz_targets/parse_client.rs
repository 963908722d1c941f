//! Client ops (what a test server parses): never a panic, and a decoded op re-encodes to something that decodes
//! to the same op.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nats_proto::{ClientDecoder, Limits, WriteBuffer};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_control_line: 512, max_info_line: 2048, max_payload: 4096 };
    let mut decoder = ClientDecoder::new(limits);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(op)) = decoder.decode(&mut buf) {
        let mut out = WriteBuffer::new();
        op.encode(&mut out);
        let mut again = BytesMut::from(&out.take_bytes()[..]);
        let back = ClientDecoder::new(limits).decode(&mut again);
        assert_eq!(back, Ok(Some(op)));
    }
});
