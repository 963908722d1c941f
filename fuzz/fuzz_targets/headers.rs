//! Header block parsing: never a panic; a valid block reads back the same through the owned form.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nats_proto::HeaderBlock;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = HeaderBlock::parse(Bytes::copy_from_slice(data)) {
        let _ = (block.status(), block.description());
        let owned = block.view().to_headers();
        let pairs = block.iter().count();
        assert_eq!(owned.len(), pairs);
        let again = owned.to_block();
        assert_eq!(again.status(), block.status());
        assert_eq!(again.iter().count(), pairs);
    }
});
