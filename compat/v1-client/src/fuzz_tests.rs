//! The reply decoder (and the flatc-generated accessors under it) against arbitrary and mutated
//! frames: it returns a value or a typed error, and never panics. The seed is printed; replay
//! with `SEED=<n> cargo test -p nacre-v1-client --lib fuzz`.

use crate::generated as fb;
use crate::reply::decode;
use flatbuffers::FlatBufferBuilder;

/// Frames tried per kind of input.
const CASES: usize = 20_000;

fn seed() -> u64 {
    nacre_testkit::seed("nacre-v1-client fuzz")
}

fn finish(
    mut fbb: FlatBufferBuilder<'_>,
    request_id: u64,
    body_type: fb::ResponseBody,
    body: flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
) -> Vec<u8> {
    let root = fb::Response::create(&mut fbb, &fb::ResponseArgs { request_id, body_type, body: Some(body) });
    fbb.finish_size_prefixed(root, None);
    fbb.finished_data().to_vec()
}

fn version() -> fb::VersionId {
    fb::VersionId::new(5 << 16, &fb::Origin::new(fb::OriginKind::Direct, 1, 2))
}

/// Honest frames of the reply kinds with the most structure, to mutate.
fn honest_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();

    let mut fbb = FlatBufferBuilder::new();
    let rows: Vec<_> = (0..4u8)
        .map(|i| {
            let sort_key = Some(fbb.create_vector(&[i; 3]));
            let value = Some(fbb.create_vector(&[i; 7]));
            let args = fb::ScanRowArgs { sort_key, value, version: Some(&version()), expires_at_ms: Some(9) };
            fb::ScanRow::create(&mut fbb, &args)
        })
        .collect();
    let rows = Some(fbb.create_vector(&rows));
    let cursor = Some(fbb.create_vector(b"cursor"));
    let body = fb::ScanReply::create(&mut fbb, &fb::ScanReplyArgs { rows, cursor }).as_union_value();
    frames.push(finish(fbb, 3, fb::ResponseBody::ScanReply, body));

    let mut fbb = FlatBufferBuilder::new();
    let results: Vec<_> = (0..3u8)
        .map(|i| {
            let value = Some(fbb.create_vector(&[i; 5]));
            let row = (i != 1).then(|| {
                fb::Row::create(&mut fbb, &fb::RowArgs { value, version: Some(&version()), expires_at_ms: None })
            });
            fb::GetReply::create(&mut fbb, &fb::GetReplyArgs { row })
        })
        .collect();
    let results = Some(fbb.create_vector(&results));
    let body = fb::MultiGetReply::create(&mut fbb, &fb::MultiGetReplyArgs { results }).as_union_value();
    frames.push(finish(fbb, 4, fb::ResponseBody::MultiGetReply, body));

    let mut fbb = FlatBufferBuilder::new();
    let tie_rule = Some(fbb.create_vector(&[fb::OriginKind::Bulk, fb::OriginKind::Stream, fb::OriginKind::Direct]));
    let settings = fb::TableSettings::create(
        &mut fbb,
        &fb::TableSettingsArgs { max_versions: 4, version_retention_ms: Some(1), default_ttl_ms: Some(2), tie_rule },
    );
    let name = Some(fbb.create_string("table"));
    let info = fb::TableInfo::create(&mut fbb, &fb::TableInfoArgs { name, settings: Some(settings) });
    let tables = Some(fbb.create_vector(&[info]));
    let body = fb::ListTablesReply::create(&mut fbb, &fb::ListTablesReplyArgs { tables }).as_union_value();
    frames.push(finish(fbb, 5, fb::ResponseBody::ListTablesReply, body));

    let mut fbb = FlatBufferBuilder::new();
    let owner_ports = Some(fbb.create_vector(&[7001u16, 7002, 7001]));
    let topology =
        fb::Topology::create(&mut fbb, &fb::TopologyArgs { partition_count: 3, shard_count: 2, owner_ports });
    let server_name = Some(fbb.create_string("nacred"));
    let args = fb::HandshakeOkArgs { protocol_version: 1, server_name, server_version: None, topology: Some(topology) };
    let body = fb::HandshakeOk::create(&mut fbb, &args).as_union_value();
    frames.push(finish(fbb, 1, fb::ResponseBody::HandshakeOk, body));

    frames
}

#[test]
fn honest_frames_decode() {
    for frame in honest_frames() {
        decode(&frame).unwrap_or_else(|e| panic!("an honest frame was refused: {e}"));
    }
}

#[test]
fn arbitrary_and_mutated_frames_never_panic() {
    let mut rng = fastrand::Rng::with_seed(seed());
    let honest = honest_frames();
    for _ in 0..CASES {
        let len = rng.usize(0..256);
        let mut frame: Vec<u8> = u32::try_from(len).expect("small").to_le_bytes().to_vec();
        frame.extend((0..len).map(|_| rng.u8(..)));
        let _ = decode(&frame);

        let mut mutated = honest[rng.usize(..honest.len())].clone();
        for _ in 0..rng.usize(1..8) {
            let at = rng.usize(4..mutated.len());
            mutated[at] = rng.u8(..);
        }
        let _ = decode(&mutated);
    }
}
