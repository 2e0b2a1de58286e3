//! Drives the compaction planner (`nacre_storage::compaction::plan`, the same function nacred
//! runs) over a synthetic workload in simulated time, and prints write, read and space
//! amplification as it goes: for tuning the policy without disks or hours.
//!
//! The workload: `--partitions` partitions of `--keys` keys each; writes arrive at `--rate`
//! versions per simulated second, a Zipf-like share per partition (`--skew`: partition i gets a
//! weight of 1/(i+1)^skew), uniformly over its keys; a `--ttl-percent` share of them expire after
//! `--ttl`; every `--bulk-every` a bulk load writes one version of every key of every partition.
//! A partition's memtable flushes at `--memtable-versions`; one compaction runs at a time, at
//! `--compaction-rate` bytes per simulated second, the highest-priority task first (as a shard's
//! queue does). Runs are modelled key by key (each key's version timestamps), so a merge keeps
//! exactly what the GC contract keeps (`max_versions`, expiry), without tombstone grace.
//!
//! Write amplification is (flushed + compacted bytes) / flushed bytes; read amplification is the
//! mean, weighted by each partition's heat, of the runs a point read may visit (the planner's
//! own debt estimate); space amplification is versions on disk over versions the contract
//! keeps.

use clap::Parser;
use nacre_storage::compaction::{Heat, Policy, Run, Snapshot, Task, plan};
use nacre_storage::segment::info::SegmentKind;
use nacre_storage::{Key, SegmentId, TableId, Ts};
use std::collections::BTreeMap;

#[derive(Parser, Debug)]
#[command(about = "The compaction planner over a synthetic workload, in simulated time")]
struct Args {
    /// Partitions.
    #[arg(long, default_value_t = 16)]
    partitions: usize,
    /// Keys per partition.
    #[arg(long, default_value_t = 2_000)]
    keys: u32,
    /// Versions written per simulated second, all partitions.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Heat skew: partition i's share of writes is proportional to 1/(i+1)^skew (0 is uniform).
    #[arg(long, default_value_t = 1.2)]
    skew: f64,
    /// Bytes per version on disk.
    #[arg(long, default_value_t = 160)]
    version_bytes: u64,
    /// Versions a memtable holds before it flushes.
    #[arg(long, default_value_t = 20_000)]
    memtable_versions: u64,
    /// Versions of a key the contract keeps.
    #[arg(long, default_value_t = 3)]
    max_versions: usize,
    /// Percent of writes that carry a TTL.
    #[arg(long, default_value_t = 10)]
    ttl_percent: u64,
    /// Their TTL, simulated seconds.
    #[arg(long, default_value_t = 120)]
    ttl: u64,
    /// A bulk load of every key every this many simulated seconds (0: none).
    #[arg(long, default_value_t = 600)]
    bulk_every: u64,
    /// Compaction bytes (read + written) per simulated second.
    #[arg(long, default_value_t = 64 << 20)]
    compaction_rate: u64,
    /// Simulated seconds to run.
    #[arg(long, default_value_t = 1_800)]
    seconds: u64,
    /// Print a line every this many simulated seconds.
    #[arg(long, default_value_t = 120)]
    report_every: u64,
    /// The policy's hot_ops_per_sec (nacred's `compaction.hot_ops_per_sec`).
    #[arg(long, default_value_t = 1_000.0)]
    hot_ops_per_sec: f64,
    /// cold_max_runs.
    #[arg(long, default_value_t = 12)]
    cold_max_runs: usize,
    /// cold_size_ratio_percent.
    #[arg(long, default_value_t = 400)]
    cold_size_ratio_percent: u32,
    /// Random seed for the writes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// One run: each key's version timestamps (ms), newest last, and whether a bulk load wrote it.
#[derive(Debug, Clone)]
struct SimRun {
    id: u64,
    kind: SegmentKind,
    keys: BTreeMap<u32, Vec<(u64, Option<u64>)>>,
}

impl SimRun {
    fn versions(&self) -> u64 {
        self.keys.values().map(|v| v.len() as u64).sum()
    }

    fn summary(&self, version_bytes: u64) -> Run {
        let key = |k: u32| Key::new(TableId(1), k.to_be_bytes().to_vec(), Vec::new());
        let stamps = self.keys.values().flatten().map(|(ts, _)| *ts);
        Run {
            id: SegmentId(self.id),
            kind: self.kind,
            size_bytes: self.versions() * version_bytes,
            entry_count: self.versions(),
            key_count: self.keys.len() as u64,
            tombstone_count: 0,
            min_ts: Ts::from_millis(stamps.clone().min().unwrap_or(0)),
            max_ts: Ts::from_millis(stamps.max().unwrap_or(0)),
            min_key: key(*self.keys.keys().next().unwrap_or(&0)),
            max_key: key(*self.keys.keys().next_back().unwrap_or(&0)),
        }
    }
}

#[derive(Debug)]
struct Partition {
    memtable: SimRun,
    runs: Vec<SimRun>,
    heat: Heat,
}

#[derive(Debug, Default)]
struct Totals {
    flushed: u64,
    compacted: u64,
    compactions: u64,
}

struct Sim {
    args: Args,
    policy: Policy,
    partitions: Vec<Partition>,
    next_id: u64,
    totals: Totals,
    rng: fastrand::Rng,
}

impl Sim {
    fn new(args: Args) -> Sim {
        let policy = Policy {
            hot_ops_per_sec: args.hot_ops_per_sec,
            cold_max_runs: args.cold_max_runs,
            cold_size_ratio: f64::from(args.cold_size_ratio_percent) / 100.0,
            ..Policy::default()
        };
        let empty = |id| SimRun { id, kind: SegmentKind::Flush, keys: BTreeMap::new() };
        let partitions = (0..args.partitions)
            .map(|_| Partition { memtable: empty(0), runs: Vec::new(), heat: Heat::new(60_000) })
            .collect();
        let rng = fastrand::Rng::with_seed(args.seed);
        Sim { args, policy, partitions, next_id: 1, totals: Totals::default(), rng }
    }

    fn snapshot(&self, p: usize) -> Snapshot {
        let mut runs: Vec<Run> = self.partitions[p].runs.iter().map(|r| r.summary(self.args.version_bytes)).collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.max_ts));
        Snapshot { runs, max_versions: self.args.max_versions as u32, ..Snapshot::default() }
    }

    fn write(&mut self, now_ms: u64, weights: &[f64]) {
        let pick = self.rng.f64() * weights.iter().sum::<f64>();
        let mut acc = 0.0;
        let p = weights.iter().position(|w| {
            acc += w;
            acc >= pick
        });
        let p = p.unwrap_or(weights.len() - 1);
        let key = self.rng.u32(0..self.args.keys);
        let expires = (self.rng.u64(0..100) < self.args.ttl_percent).then(|| now_ms + self.args.ttl * 1_000);
        let part = &mut self.partitions[p];
        part.memtable.keys.entry(key).or_default().push((now_ms, expires));
        part.heat.record_write(1, self.args.version_bytes, now_ms);
        if part.memtable.versions() >= self.args.memtable_versions {
            self.flush(p, SegmentKind::Flush);
        }
    }

    fn flush(&mut self, p: usize, kind: SegmentKind) {
        let id = self.next_id;
        self.next_id += 1;
        let part = &mut self.partitions[p];
        let mut run =
            std::mem::replace(&mut part.memtable, SimRun { id: 0, kind: SegmentKind::Flush, keys: BTreeMap::new() });
        if run.keys.is_empty() {
            return;
        }
        (run.id, run.kind) = (id, kind);
        self.totals.flushed += run.versions() * self.args.version_bytes;
        part.runs.push(run);
    }

    fn bulk_load(&mut self, now_ms: u64) {
        for p in 0..self.partitions.len() {
            let keys = (0..self.args.keys).map(|k| (k, vec![(now_ms, None)])).collect();
            let id = self.next_id;
            self.next_id += 1;
            // A load is linked, not written by a flush: it costs no write amplification.
            self.partitions[p].runs.push(SimRun { id, kind: SegmentKind::Bulk, keys });
        }
    }

    /// Runs `task` on partition `p`; returns the bytes it moved.
    fn compact(&mut self, p: usize, task: &Task, now_ms: u64) -> u64 {
        let max_versions = self.args.max_versions;
        let part = &mut self.partitions[p];
        let (inputs, rest): (Vec<SimRun>, Vec<SimRun>) =
            part.runs.drain(..).partition(|r| task.inputs.contains(&SegmentId(r.id)));
        part.runs = rest;
        let mut merged: BTreeMap<u32, Vec<(u64, Option<u64>)>> = BTreeMap::new();
        let mut bytes_in = 0;
        for run in &inputs {
            bytes_in += run.versions() * self.args.version_bytes;
            for (k, vs) in &run.keys {
                merged.entry(*k).or_default().extend(vs.iter().copied());
            }
        }
        for vs in merged.values_mut() {
            vs.sort_unstable();
            let keep_from = vs.len().saturating_sub(max_versions);
            vs.drain(..keep_from);
        }
        // An expired value alone on its key goes (a tombstone that nothing older needs).
        merged.retain(|_, vs| vs.last().is_some_and(|(_, expires)| expires.is_none_or(|at| at > now_ms)));
        let id = self.next_id;
        self.next_id += 1;
        let out = SimRun { id, kind: SegmentKind::Compaction, keys: merged };
        let bytes_out = out.versions() * self.args.version_bytes;
        if !out.keys.is_empty() {
            part.runs.push(out);
        }
        self.totals.compacted += bytes_out;
        self.totals.compactions += 1;
        bytes_in + bytes_out
    }

    fn report(&self, now_ms: u64) {
        let mut read_amp_weighted = 0.0;
        let mut heat_total = 0.0;
        let (mut on_disk, mut kept) = (0u64, 0u64);
        let mut runs = 0;
        for (p, part) in self.partitions.iter().enumerate() {
            let heat = part.heat.rates(now_ms).ops() + 1e-9;
            read_amp_weighted += heat * self.snapshot(p).debt().read_amplification as f64;
            heat_total += heat;
            runs += part.runs.len();
            let mut per_key: BTreeMap<u32, usize> = BTreeMap::new();
            for run in &part.runs {
                on_disk += run.versions();
                for (k, vs) in &run.keys {
                    *per_key.entry(*k).or_default() += vs.len();
                }
            }
            kept += per_key.values().map(|n| (*n).min(self.args.max_versions) as u64).sum::<u64>();
        }
        let write_amp = (self.totals.flushed + self.totals.compacted) as f64 / self.totals.flushed.max(1) as f64;
        println!(
            "{:>7} {:>10.2} {:>9.2} {:>10.2} {:>6} {:>12}",
            now_ms / 1_000,
            write_amp,
            read_amp_weighted / heat_total,
            on_disk as f64 / kept.max(1) as f64,
            runs,
            self.totals.compactions
        );
    }

    fn run(&mut self) {
        let weights: Vec<f64> =
            (0..self.args.partitions).map(|i| 1.0 / ((i + 1) as f64).powf(self.args.skew)).collect();
        let tick_ms = 100;
        let writes_per_tick = self.args.rate * tick_ms / 1_000;
        let mut busy_until_ms = 0;
        println!(
            "{:>7} {:>10} {:>9} {:>10} {:>6} {:>12}",
            "t(s)", "write-amp", "read-amp", "space-amp", "runs", "compactions"
        );
        for tick in 1..=self.args.seconds * 1_000 / tick_ms {
            let now_ms = tick * tick_ms;
            for _ in 0..writes_per_tick {
                self.write(now_ms, &weights);
            }
            if self.args.bulk_every > 0 && now_ms % (self.args.bulk_every * 1_000) == 0 {
                self.bulk_load(now_ms);
            }
            while busy_until_ms <= now_ms {
                let tasks = (0..self.partitions.len()).filter_map(|p| {
                    plan(&self.snapshot(p), self.partitions[p].heat.rates(now_ms), &self.policy).map(|t| (p, t))
                });
                let Some((p, task)) = tasks.max_by(|a, b| a.1.priority.total_cmp(&b.1.priority)) else { break };
                let moved = self.compact(p, &task, now_ms);
                busy_until_ms = now_ms + moved * 1_000 / self.args.compaction_rate.max(1);
            }
            if now_ms % (self.args.report_every * 1_000) == 0 {
                self.report(now_ms);
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    println!("{args:?}");
    Sim::new(args).run();
}
