//! `Engine::explain` on the simulated disk: versions gathered from the memtable and segments
//! with their locations, a three-way tie on equal `ts` across direct, stream and bulk origins,
//! and agreement with `get` through a flush and a reopen.

#[path = "support/harness.rs"]
mod harness;

use harness::{Store, TABLE, entry, run_sim, small_options};
use nacre_storage::engine::{Location, NotFoundReason, RuleStep, Standing, Verdict};
use nacre_storage::{Durability, Key, ManualClock, OriginKind, Payload, ReadAt};

fn value(v: &str) -> Payload {
    Payload::Value { value: v.as_bytes().to_vec(), expires_at_ms: None }
}

#[test]
fn a_three_way_tie_is_explained_with_where_each_version_lives() {
    run_sim(11, |disk, root| async move {
        let store = Store::create(disk, &root, ManualClock::new(harness::START_MS), small_options()).await;
        let key = Key::new(TABLE, b"k".as_slice(), b"".as_slice());
        let explain = || store.engine.explain(key.as_ref(), ReadAt::Latest);

        let none = explain().await.expect("explain");
        assert_eq!(none.verdict, Verdict::NotFound(NotFoundReason::NoVersions));

        // Bulk and stream at ts 50, flushed to a segment; then a direct write at ts 50 in the
        // memtable.
        let bulk = entry("k", "", 50, OriginKind::Bulk, value("bulk"));
        let stream = entry("k", "", 50, OriginKind::Stream, value("stream"));
        store.engine.write(vec![bulk, stream], Durability::Sync).await.expect("write");
        let flushed = store.engine.flush().await.expect("flush");
        let segment = flushed.first().expect("one segment").id;
        store
            .engine
            .write(vec![entry("k", "", 50, OriginKind::Direct, value("direct"))], Durability::Sync)
            .await
            .expect("write");

        let e = explain().await.expect("explain");
        assert_eq!(e.verdict, Verdict::Visible(0));
        assert_eq!(e.deciding_step, Some(RuleStep::TieRule));
        let seen: Vec<(OriginKind, Location, Standing)> =
            e.candidates.iter().map(|c| (c.version.id.origin.kind, c.location, c.standing)).collect();
        assert_eq!(
            seen,
            [
                (OriginKind::Direct, Location::ActiveMemtable, Standing::Winner),
                (OriginKind::Stream, Location::Segment(segment), Standing::Superseded),
                (OriginKind::Bulk, Location::Segment(segment), Standing::Superseded),
            ]
        );
        assert_eq!(store.get("k", "").await.as_deref(), Some("direct"));

        // A newer tombstone, then a reopen: the same story from the segments alone.
        store
            .engine
            .write(vec![entry("k", "", 60, OriginKind::Stream, Payload::Tombstone)], Durability::Sync)
            .await
            .expect("delete");
        store.engine.flush().await.expect("flush");
        let store = store.reopen().await;
        let e = store.engine.explain(key.as_ref(), ReadAt::Latest).await.expect("explain");
        assert_eq!(e.verdict, Verdict::NotFound(NotFoundReason::Tombstone));
        assert_eq!(e.deciding_step, Some(RuleStep::Ts));
        assert_eq!(e.candidates.len(), 4);
        assert!(e.candidates.iter().all(|c| matches!(c.location, Location::Segment(_))), "{e:?}");
        assert_eq!(store.get("k", "").await, None);
    });
}
