//! Raw parse: any bytes through the stateless parser and the resumable decoder; they must agree.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nats_proto::{parse_server_op, Limits, ServerDecoder, ServerOp, ServerOpRef, Status};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_control_line: 256, max_info_line: 1024, max_payload: 4096 };
    let stateless = parse_server_op(data, &limits);
    let mut decoder = ServerDecoder::new(limits);
    let mut buf = BytesMut::from(data);
    let decoded = decoder.decode(&mut buf);
    match (stateless, decoded) {
        (Ok(Status::Complete((op, used))), Ok(Some(owned))) => {
            assert_eq!(data.len() - buf.len() - decoder.held(), used);
            if let (ServerOpRef::Msg(a), ServerOp::Msg(b)) = (op, &owned) {
                assert_eq!(a.subject, b.subject().as_bytes());
                assert_eq!(a.payload, b.payload());
                assert_eq!(a.sid, b.sid());
            }
        }
        (Ok(Status::Partial), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        // INFO: the borrowed form does not decode the JSON.
        (Ok(Status::Complete((ServerOpRef::Info(_), _))), Err(e)) => assert!(e.is_frame_local()),
        (a, b) => panic!("stateless {a:?} vs decoder {b:?}"),
    }
});
