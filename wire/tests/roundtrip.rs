//! `decode(encode(x)) == x` for every request and reply variant, each its own property, plus
//! pinned frames so a change to the encoding is noticed.

#[path = "support/strategy.rs"]
mod strategy;

use nacre_wire::*;
use proptest::prelude::*;
use strategy as s;

fn request_round_trips(id: u64, request: &Request) -> Result<(), TestCaseError> {
    let frame = encode_request(id, request);
    prop_assert_eq!(u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize, frame.len() - 4);
    let (got_id, got) = decode_request(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(got_id, id);
    prop_assert_eq!(&got, request);
    // The reused encoder appends exactly the same frame after what the buffer holds.
    let mut out = b"earlier".to_vec();
    REQUEST_ENCODER.with_borrow_mut(|e| e.encode_into(id, request, &mut out));
    prop_assert_eq!(&out[..7], b"earlier");
    prop_assert_eq!(&out[7..], &frame[..]);
    // A get or put borrowed from the caller's buffers encodes to the same frame.
    let mut borrowed = Vec::new();
    match request {
        Request::Get(g) => REQUEST_ENCODER.with_borrow_mut(|e| e.encode_get_into(id, &g.as_ref(), &mut borrowed)),
        Request::Put(p) => REQUEST_ENCODER.with_borrow_mut(|e| e.encode_put_into(id, &p.as_ref(), &mut borrowed)),
        _ => borrowed.clone_from(&frame),
    }
    prop_assert_eq!(&borrowed, &frame);
    Ok(())
}

thread_local! {
    /// One encoder for every case of a test, so each case encodes with a builder an earlier
    /// (other) reply has used.
    static ENCODER: std::cell::RefCell<ResponseEncoder> = std::cell::RefCell::default();
    /// The same for requests.
    static REQUEST_ENCODER: std::cell::RefCell<RequestEncoder> = std::cell::RefCell::default();
}

fn reply_round_trips(id: u64, reply: &Reply) -> Result<(), TestCaseError> {
    let frame = encode_response(id, reply);
    let (got_id, got) = decode_response(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(got_id, id);
    prop_assert_eq!(&got, reply);
    // The reused encoder appends exactly the same frame after what the buffer holds.
    let mut out = b"earlier".to_vec();
    ENCODER.with_borrow_mut(|e| e.encode_into(id, reply, &mut out));
    prop_assert_eq!(&out[..7], b"earlier");
    prop_assert_eq!(&out[7..], &frame[..]);
    // Read in place, a get's row borrows the frame and is the row decoded.
    let (in_place_id, in_place) =
        decode_response_in_place(&frame, &FrameLimits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(in_place_id, id);
    match (in_place, reply) {
        (ReplyInPlace::Get(row), Reply::Get(expected)) => prop_assert_eq!(row.map(|r| r.to_owned()), expected.clone()),
        (ReplyInPlace::Other(other), _) => {
            prop_assert!(!matches!(other, Reply::Get(_)), "a get reply decoded as another reply");
            prop_assert_eq!(&other, reply);
        }
        (ReplyInPlace::Get(row), other) => prop_assert!(false, "{other:?} read in place as a get: {row:?}"),
    }
    Ok(())
}

macro_rules! round_trip {
    ($($name:ident: $strategy:expr => $check:ident;)*) => {
        proptest! {
            #![proptest_config(nacre_testkit::proptest_config(module_path!(), 96))]
            $(
                #[test]
                fn $name(id in any::<u64>(), x in $strategy) {
                    $check(id, &x)?;
                }
            )*
        }
    };
}

round_trip! {
    request_handshake: s::handshake() => request_round_trips;
    request_topology: Just(Request::Topology) => request_round_trips;
    request_create_table: s::create_table() => request_round_trips;
    request_alter_table: s::alter_table() => request_round_trips;
    request_drop_table: s::drop_table() => request_round_trips;
    request_list_tables: Just(Request::ListTables) => request_round_trips;
    request_put: s::put() => request_round_trips;
    request_delete: s::delete() => request_round_trips;
    request_write_batch: s::write_batch() => request_round_trips;
    request_get: s::get() => request_round_trips;
    request_multi_get: s::multi_get() => request_round_trips;
    request_scan: s::scan() => request_round_trips;
    request_versions: s::versions() => request_round_trips;
    request_explain: s::explain() => request_round_trips;
    request_stats: Just(Request::Stats) => request_round_trips;
    request_add_source: s::add_source() => request_round_trips;
    request_list_sources: Just(Request::ListSources) => request_round_trips;
    request_remove_source: s::remove_source() => request_round_trips;
    request_bulk: s::bulk_request() => request_round_trips;
    reply_bulk_loads: proptest::collection::vec(s::bulk_load_info(), 0..4).prop_map(Reply::BulkLoads) => reply_round_trips;
    reply_error: s::error_reply() => reply_round_trips;
    reply_handshake: s::handshake_ok() => reply_round_trips;
    reply_topology: s::topology().prop_map(Reply::Topology) => reply_round_trips;
    reply_table: s::table_info().prop_map(Reply::Table) => reply_round_trips;
    reply_table_dropped: Just(Reply::TableDropped) => reply_round_trips;
    reply_tables: proptest::collection::vec(s::table_info(), 0..6).prop_map(Reply::Tables) => reply_round_trips;
    reply_written: s::version_id().prop_map(Reply::Written) => reply_round_trips;
    reply_batch_written: proptest::collection::vec(s::version_id(), 0..8).prop_map(Reply::BatchWritten) => reply_round_trips;
    reply_get: proptest::option::of(s::row()).prop_map(Reply::Get) => reply_round_trips;
    reply_multi_get: proptest::collection::vec(proptest::option::of(s::row()), 0..8).prop_map(Reply::MultiGet) => reply_round_trips;
    reply_scan: s::scan_page() => reply_round_trips;
    reply_versions: s::key_history() => reply_round_trips;
    reply_explain: s::explanation() => reply_round_trips;
    reply_stats: proptest::collection::vec(s::stat(), 0..8).prop_map(Reply::Stats) => reply_round_trips;
    reply_source: s::source_info().prop_map(Reply::Source) => reply_round_trips;
    reply_sources: proptest::collection::vec(s::source_info(), 0..4).prop_map(Reply::Sources) => reply_round_trips;
    reply_source_removed: Just(Reply::SourceRemoved) => reply_round_trips;
}

/// A frame read by the wrong decoder is refused rather than misread, at least for this common
/// case (nothing in the format guarantees it in general: peers must not cross the streams).
#[test]
fn a_put_request_does_not_decode_as_a_response() {
    let put = encode_request(7, &Request::Put(Put::new("t", Key::new("pk", "sk"), b"v".to_vec())));
    // Union tag 7 is `Put` in requests and `WriteReply` in responses, whose required `version`
    // field a Put does not have.
    assert!(decode_response(&put).is_err());
}

/// The exact bytes of one small request: a change here is a wire-format change, which needs a
/// deliberate decision (see FORMAT.md, "Schema evolution").
#[test]
fn pinned_get_frame() {
    let frame = encode_request(1, &Request::Get(Get::new("t", Key::new("k", ""))));
    assert_eq!(decode_request(&frame).expect("valid").1, Request::Get(Get::new("t", Key::new("k", ""))));
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // length prefix: 76 bytes of flatbuffer follow
        0x4c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x18, 0x00, 0x0c, 0x00,
        0x07, 0x00, 0x08, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x18, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0c, 0x00,
        0x04, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x6b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x74, 0x00, 0x00, 0x00,
    ];
    assert_eq!(frame, expected);
}
