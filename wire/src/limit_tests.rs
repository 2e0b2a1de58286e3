//! Tests of the limits every decode runs under: the frame cap (checked on the prefix alone),
//! the verifier's depth limit, and the apparent-size budget that stops a small buffer whose
//! offsets share one large object from decoding into a huge one, while the largest honest
//! frames of every shape still pass. Here rather than in `tests/` because building a malicious
//! buffer needs the generated builders.

use crate::frame::{APPARENT_SIZE_FACTOR, FrameLimits};
use crate::generated as fb;
use crate::types::{
    BatchOp, Key, KeyHistory, Origin, OriginKind, Payload, SourceInfo, SourceSpec, SourceTopic, Stat, Ts, VersionEntry,
    VersionId, WriteBatch,
};
use crate::{
    MessageError, Reply, Request, WireError, decode_request, decode_request_with, decode_response, decode_response_with,
};
use crate::{encode_request, encode_response};
use flatbuffers::{FlatBufferBuilder, InvalidFlatbuffer};

fn version(seq: u64) -> VersionId {
    VersionId { ts: Ts(seq), origin: Origin { kind: OriginKind::Stream, source_id: 1, seq } }
}

#[test]
fn the_frame_cap_is_enforced_on_the_prefix_alone() {
    // Four bytes announcing 4 GiB: refused as too large, not as truncated, so a reader that
    // checks the prefix first never allocates for it.
    assert!(matches!(decode_request(&u32::MAX.to_le_bytes()), Err(WireError::FrameTooLarge { .. })));
    let frame = encode_request(1, &Request::Put(crate::Put::new("t", Key::new("k", ""), vec![7; 1000])));
    let tight = FrameLimits { max_frame_bytes: frame.len() - 5, ..FrameLimits::default() };
    assert!(matches!(decode_request_with(&frame, &tight), Err(WireError::FrameTooLarge { .. })));
    let exact = FrameLimits { max_frame_bytes: frame.len() - 4, ..FrameLimits::default() };
    assert!(decode_request_with(&frame, &exact).is_ok());
}

#[test]
fn the_depth_limit_rejects_nesting_beyond_it() {
    // Response → VersionsReply → VersionEntry: three tables deep.
    let history = KeyHistory {
        versions: vec![VersionEntry { version: version(1), payload: Payload::Tombstone }],
        watermark: None,
    };
    let frame = encode_response(3, &Reply::Versions(history));
    let shallow = FrameLimits { max_depth: 2, ..FrameLimits::default() };
    assert!(matches!(
        decode_response_with(&frame, &shallow),
        Err(WireError::Verify(InvalidFlatbuffer::DepthLimitReached))
    ));
    let enough = FrameLimits { max_depth: 3, ..FrameLimits::default() };
    assert!(decode_response_with(&frame, &enough).is_ok());
    // The schema's deepest path, Response → ListSourcesReply → SourceInfo → SourceTopic: four.
    let topics = vec![SourceTopic { topic: "orders".into(), stream_id: 1 }];
    let frame = encode_response(3, &Reply::Sources(vec![source_info(topics, Vec::new())]));
    assert!(matches!(
        decode_response_with(&frame, &enough),
        Err(WireError::Verify(InvalidFlatbuffer::DepthLimitReached))
    ));
    let deepest = FrameLimits { max_depth: 4, ..FrameLimits::default() };
    assert!(decode_response_with(&frame, &deepest).is_ok());
}

/// A multi-get reply whose `copies` results all point at one row holding `value_bytes`.
fn shared_row_frame(copies: usize, value_bytes: usize) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let value = fbb.create_vector(&vec![0xabu8; value_bytes]);
    let v = fb::VersionId::new(1, &fb::Origin::new(fb::OriginKind::Direct, 0, 0));
    let row = fb::Row::create(&mut fbb, &fb::RowArgs { value: Some(value), version: Some(&v), expires_at_ms: None });
    let result = fb::GetReply::create(&mut fbb, &fb::GetReplyArgs { row: Some(row) });
    let results = fbb.create_vector(&vec![result; copies]);
    let body = fb::MultiGetReply::create(&mut fbb, &fb::MultiGetReplyArgs { results: Some(results) });
    let root = fb::Response::create(
        &mut fbb,
        &fb::ResponseArgs {
            request_id: 1,
            body_type: fb::ResponseBody::MultiGetReply,
            body: Some(body.as_union_value()),
        },
    );
    fbb.finish_size_prefixed(root, None);
    fbb.finished_data().to_vec()
}

#[test]
fn a_buffer_sharing_one_large_row_is_refused_before_it_is_copied() {
    // 68 KiB on the wire that would decode into 1,000 copies of a 64 KiB value (64 MiB).
    let frame = shared_row_frame(1000, 64 << 10);
    assert!(frame.len() < 70 << 10);
    assert!(matches!(decode_response(&frame), Err(WireError::Verify(InvalidFlatbuffer::ApparentSizeTooLarge))));
    // The same shape with one reference is an ordinary reply.
    let (_, reply) = decode_response(&shared_row_frame(1, 64 << 10)).expect("one reference is honest");
    assert!(matches!(reply, Reply::MultiGet(rows) if rows.len() == 1));
}

/// The honest frame decodes, and its apparent size stays under half the budget: the budget
/// ([`APPARENT_SIZE_FACTOR`] times the length) has room over the worst honest shape.
fn assert_honest_frame_passes(frame: &[u8], what: &str) {
    let limits = FrameLimits::default();
    let body_len = frame.len() - 4;
    let mut options = limits.verifier_options(body_len);
    options.max_apparent_size = body_len * APPARENT_SIZE_FACTOR / 2;
    let verified = flatbuffers::size_prefixed_root_with_opts::<fb::Response>(&options, frame).is_ok()
        || flatbuffers::size_prefixed_root_with_opts::<fb::Request>(&options, frame).is_ok();
    assert!(verified, "{what}: apparent size over {}x its length", APPARENT_SIZE_FACTOR / 2);
    assert!(decode_response(frame).is_ok() || decode_request(frame).is_ok(), "{what}: refused");
}

#[test]
fn honest_frames_of_every_shape_pass_the_default_limits() {
    let n = 20_000;
    // The smallest tables there are: an empty GetReply per key (about 2.25x).
    assert_honest_frame_passes(&encode_response(1, &Reply::MultiGet(vec![None; n])), "not-founds");
    let tombstones = (0..n as u64).map(|i| VersionEntry { version: version(i), payload: Payload::Tombstone });
    let history = KeyHistory { versions: tombstones.collect(), watermark: None };
    assert_honest_frame_passes(&encode_response(1, &Reply::Versions(history)), "tombstones");
    let stats = (0..n).map(|_| Stat { name: String::new(), shard: None, partition: None, value: 1 });
    assert_honest_frame_passes(&encode_response(1, &Reply::Stats(stats.collect())), "stats");
    let ops = (0..n as u32).map(|i| BatchOp::Delete { key: Key::new(i.to_le_bytes(), []), ts: None });
    let batch = Request::WriteBatch(WriteBatch::new("t", ops.collect()));
    assert_honest_frame_passes(&encode_request(1, &batch), "deletes");
    // The deepest path: Response → ListSourcesReply → SourceInfo → SourceTopic.
    let topics = (0..n as u32).map(|stream_id| SourceTopic { topic: String::new(), stream_id });
    let source = source_info(topics.collect(), Vec::new());
    assert_honest_frame_passes(&encode_response(1, &Reply::Sources(vec![source])), "source topics");
    let settings = (0..n).map(|_| (String::new(), String::new())).collect();
    let spec = SourceSpec { settings, ..SourceSpec::default() };
    assert_honest_frame_passes(&encode_request(1, &Request::AddSource(spec)), "source settings");
}

fn source_info(topics: Vec<SourceTopic>, settings: Vec<(String, String)>) -> SourceInfo {
    SourceInfo {
        name: "s".into(),
        table: "t".into(),
        topics,
        brokers: "b".into(),
        dead_letter_topic: None,
        settings,
        retired: false,
    }
}

#[test]
fn a_frame_near_the_cap_passes() {
    // 7.5 MiB of a single value: the verifier's budgets scale with the frame.
    let put = Request::Put(crate::Put::new("t", Key::new("k", ""), vec![1; (15 << 20) / 2]));
    let frame = encode_request(1, &put);
    assert!(frame.len() - 4 <= FrameLimits::default().max_frame_bytes);
    assert_eq!(decode_request(&frame).expect("under the cap").1, put);
}

#[test]
fn collections_over_the_item_limit_are_refused_before_they_are_copied() {
    let limits = FrameLimits { max_items: 10, ..FrameLimits::default() };
    let at_limit = encode_response(1, &Reply::MultiGet(vec![None; 10]));
    assert!(decode_response_with(&at_limit, &limits).is_ok());
    let over = encode_response(1, &Reply::MultiGet(vec![None; 11]));
    assert!(matches!(
        decode_response_with(&over, &limits),
        Err(WireError::Message {
            request_id: 1,
            problem: MessageError::TooManyItems { field: "MultiGetReply.results", len: 11, max: 10 }
        })
    ));
    let topics = (0..11).map(|stream_id| SourceTopic { topic: "t".into(), stream_id }).collect();
    let sources = encode_response(2, &Reply::Sources(vec![source_info(topics, Vec::new())]));
    assert!(matches!(
        decode_response_with(&sources, &limits),
        Err(WireError::Message { problem: MessageError::TooManyItems { field: "SourceInfo.topics", len: 11, .. }, .. })
    ));
    let settings = vec![(String::new(), String::new()); 11];
    let source = encode_response(2, &Reply::Source(source_info(Vec::new(), settings.clone())));
    assert!(matches!(
        decode_response_with(&source, &limits),
        Err(WireError::Message { problem: MessageError::TooManyItems { field: "SourceInfo.settings", .. }, .. })
    ));
    let spec = SourceSpec { topics: vec![String::new(); 11], ..SourceSpec::default() };
    assert!(matches!(
        decode_request_with(&encode_request(3, &Request::AddSource(spec)), &limits),
        Err(WireError::Message { problem: MessageError::TooManyItems { field: "AddSource.topics", .. }, .. })
    ));
    let spec = SourceSpec { settings, ..SourceSpec::default() };
    assert!(matches!(
        decode_request_with(&encode_request(3, &Request::AddSource(spec)), &limits),
        Err(WireError::Message { problem: MessageError::TooManyItems { field: "AddSource.settings", .. }, .. })
    ));
    let keys = (0..11u8).map(|i| Key::new([i], [])).collect();
    let request = encode_request(1, &Request::MultiGet(crate::MultiGet::new("t", keys)));
    assert!(matches!(
        decode_request_with(&request, &limits),
        Err(WireError::Message { problem: MessageError::TooManyItems { len: 11, .. }, .. })
    ));
}
