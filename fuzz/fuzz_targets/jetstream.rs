//! JetStream's reply readers on arbitrary bytes: API replies, publish acks, ack subjects, direct-get headers and
//! status messages. Never a panic; what parses is consistent.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nats_jetstream::ack::AckMetadata;
use nats_jetstream::error::{decode_message_reply, decode_pub_ack, decode_reply};
use nats_jetstream::model::{AccountInfo, ConsumerInfo, DirectGetMessage, StreamInfo};
use nats_jetstream::status::classify;
use nats_proto::HeaderBlock;

fuzz_target!(|data: &[u8]| {
    let _ = decode_reply::<StreamInfo>(data);
    let _ = decode_reply::<ConsumerInfo>(data);
    let _ = decode_reply::<AccountInfo>(data);
    if let Ok(ack) = decode_pub_ack(data) {
        assert!(!ack.stream.is_empty(), "an ack names its stream");
    }
    if let Ok(meta) = AckMetadata::parse_bytes(data) {
        assert!(!meta.stream.is_empty() && !meta.consumer.is_empty());
    }
    // The first half as a header block, the rest as the payload.
    let (head, body) = data.split_at(data.len() / 2);
    if let Ok(block) = HeaderBlock::parse(Bytes::copy_from_slice(head)) {
        let _ = classify(block.status(), block.description(), Some(block.view()), body.len());
        let _ = decode_message_reply::<StreamInfo>(Some(block.view()), body);
        if let Ok(m) = DirectGetMessage::from_reply(Some(block.view()), Bytes::copy_from_slice(body)) {
            assert!(!m.stream.is_empty() && !m.subject.is_empty());
        }
    }
});
