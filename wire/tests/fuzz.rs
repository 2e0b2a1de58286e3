//! The decoders never panic: on arbitrary bytes, on arbitrary bytes behind a correct length
//! prefix (so the flatbuffers verifier, not the frame check, does the rejecting), and on valid
//! frames with bytes flipped, overwritten, inserted or cut. Whatever a mutated frame decodes
//! to must itself round-trip. Thousands of cases; well under CI's 10-second budget.

#[path = "support/strategy.rs"]
mod strategy;

use nacre_wire::frame::frame;
use nacre_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// Decodes `bytes` both ways; whatever decodes must re-encode to something that decodes equal.
/// The decodes with a get (or a get's reply) read in place must agree with the owned decodes:
/// the same frames accepted, to the same requests and replies.
fn decode_both_ways(bytes: &[u8]) -> Result<(), TestCaseError> {
    let owned = decode_request(bytes);
    match (decode_request_in_place(bytes, &FrameLimits::default()), &owned) {
        (Ok((id, InPlace::Get(g))), Ok(owned)) => prop_assert_eq!(&(id, Request::Get(g.to_owned())), owned),
        (Ok((id, InPlace::Other(r))), Ok(owned)) => {
            prop_assert!(!matches!(r, Request::Get(_)), "a get decoded as another request");
            prop_assert_eq!(&(id, r), owned);
        }
        (Err(_), Err(_)) => {}
        (in_place, owned) => prop_assert!(false, "in place {:?}, owned {:?}", in_place, owned),
    }
    if let Ok((id, request)) = owned {
        let again = decode_request(&encode_request(id, &request)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, (id, request));
    }
    let owned = decode_response(bytes);
    match (decode_response_in_place(bytes, &FrameLimits::default()), &owned) {
        (Ok((id, ReplyInPlace::Get(row))), Ok(owned)) => {
            prop_assert_eq!(&(id, Reply::Get(row.map(|r| r.to_owned()))), owned);
        }
        (Ok((id, ReplyInPlace::Other(r))), Ok(owned)) => {
            prop_assert!(!matches!(r, Reply::Get(_)), "a get reply decoded as another reply");
            prop_assert_eq!(&(id, r), owned);
        }
        (Err(_), Err(_)) => {}
        (in_place, owned) => prop_assert!(false, "in place {:?}, owned {:?}", in_place, owned),
    }
    if let Ok((id, reply)) = owned {
        let again = decode_response(&encode_response(id, &reply)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, (id, reply));
    }
    Ok(())
}

/// One way to damage a frame.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        1 => any::<usize>().prop_map(|at| Mutation::Remove { at }),
        1 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
    ]
}

/// Applies `m` to the flatbuffer part of `frame` (the prefix stays consistent with the body, so
/// the verifier sees the damage) or, for `Truncate`, to the frame as a whole.
fn mutate(frame: &mut Vec<u8>, m: &Mutation) {
    if frame.len() < 4 {
        return; // truncated into its prefix already
    }
    let mut body = frame.split_off(4);
    let fix_prefix = |frame: &mut Vec<u8>, body: &[u8]| {
        frame.clear();
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    };
    match *m {
        Mutation::Flip { at, bit } if !body.is_empty() => {
            let at = at % body.len();
            body[at] ^= 1 << bit;
        }
        Mutation::Set { at, byte } if !body.is_empty() => {
            let at = at % body.len();
            body[at] = byte;
        }
        Mutation::Insert { at, byte } => body.insert(at % (body.len() + 1), byte),
        Mutation::Remove { at } if !body.is_empty() => {
            body.remove(at % body.len());
        }
        Mutation::Truncate { len } => {
            frame.extend_from_slice(&body);
            frame.truncate(len % (frame.len() + 1));
            return;
        }
        _ => {}
    }
    fix_prefix(frame, &body);
    frame.extend_from_slice(&body);
}

proptest! {
    #![proptest_config(nacre_testkit::proptest_config(module_path!(), 5_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_both_ways(&bytes)?;
    }

    #[test]
    fn arbitrary_flatbuffers_behind_a_valid_prefix_never_panic(body in vec(any::<u8>(), 0..512)) {
        decode_both_ways(&frame(&body))?;
    }
}

proptest! {
    #![proptest_config(nacre_testkit::proptest_config(module_path!(), 10_000))]

    #[test]
    fn mutated_requests_never_panic(
        id in any::<u64>(),
        request in strategy::request(),
        mutations in vec(mutation(), 1..6),
    ) {
        let mut bytes = encode_request(id, &request);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        decode_both_ways(&bytes)?;
    }

    #[test]
    fn mutated_replies_never_panic(
        id in any::<u64>(),
        reply in strategy::reply(),
        mutations in vec(mutation(), 1..6),
    ) {
        let mut bytes = encode_response(id, &reply);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        decode_both_ways(&bytes)?;
    }
}

/// Every strict prefix of a valid frame is refused as truncated, never misread.
#[test]
fn every_truncation_is_refused() {
    let request = Request::Put(Put::new("table", Key::new("pk", "sk"), b"value".to_vec()));
    let bytes = encode_request(9, &request);
    for len in 0..bytes.len() {
        match decode_request(&bytes[..len]) {
            Err(WireError::Truncated { .. }) => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
    assert!(decode_request(&bytes).is_ok());
}

/// The shrunk cases proptest once found (kept in `fuzz.proptest-regressions`), replayed by
/// name on every run: a frame truncated inside its body and then flipped at its first byte.
fn truncated_then_flipped(mut bytes: Vec<u8>, len: u64) -> Vec<u8> {
    let len = usize::try_from(len % (u64::from(u32::MAX))).expect("fits");
    for m in [Mutation::Truncate { len }, Mutation::Flip { at: 0, bit: 0 }] {
        mutate(&mut bytes, &m);
    }
    bytes
}

#[test]
fn regression_a_truncated_flipped_table_dropped_reply_is_refused_without_a_panic() {
    let bytes = truncated_then_flipped(encode_response(1, &Reply::TableDropped), 7_583_106_099_036_218_975);
    decode_both_ways(&bytes).expect("whatever decodes re-encodes");
    assert!(decode_response(&bytes).is_err(), "a damaged reply frame is refused");
}

#[test]
fn regression_a_truncated_flipped_versions_request_is_refused_without_a_panic() {
    let request = Request::Versions(Versions { table: "\u{10000}".into(), key: Key::new(vec![0u8; 9], vec![0u8; 21]) });
    let bytes = truncated_then_flipped(encode_request(1, &request), 15_500_593_583_820_618_711);
    decode_both_ways(&bytes).expect("whatever decodes re-encodes");
    assert!(decode_request(&bytes).is_err(), "a damaged request frame is refused");
}
