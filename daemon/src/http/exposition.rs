//! The daemon's statistics in the OpenMetrics text format, encoded by `prometheus-client`: each
//! statistic becomes a sample of its catalog metric ([`super::metric_catalog`]), labelled with
//! its shard, its partition and the labels in its name; a histogram's `_bucket`, `_count` and
//! `_sum` statistics become one histogram sample.

use super::metric_catalog::{self, Kind, MetricSpec, Scope, Unit};
use nacre_wire::{LabelledName, Stat};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

/// The `Content-Type` of what [`encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Help of a statistic missing from the catalog (the metrics test looks for it).
pub(crate) const UNCATALOGUED_HELP: &str = "A statistic missing from the metric catalog.";

/// What the HTTP side knows of the process without asking a shard.
#[derive(Debug, Clone, Copy)]
pub struct ProcessState {
    /// Shards configured.
    pub shards: usize,
    /// Shards that finished recovery and serve.
    pub serving: usize,
    /// True once the process was told to stop.
    pub stopping: bool,
}

impl ProcessState {
    /// Recovery is done, every shard serves, and the process is not stopping.
    pub fn ready(&self) -> bool {
        self.serving == self.shards && !self.stopping
    }
}

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// A sample's place in its family: by shard and partition number, then by its labels.
type SampleKey = (Option<u32>, Option<u32>, Labels);

/// A counter's or gauge's value: whole when its statistic is in the metric's unit, so it
/// prints as the integer it is.
#[derive(Debug, Clone, Copy)]
enum Value {
    Whole(u64),
    Scaled(f64),
}

impl Value {
    fn of(stat: u64, per_unit: f64) -> Value {
        if per_unit == 1.0 { Value::Whole(stat) } else { Value::Scaled(stat as f64 / per_unit) }
    }
}

#[derive(Debug)]
enum Sample {
    Counter(Value),
    Gauge(Value),
    Histogram { le: BTreeMap<u64, u64>, count: u64, sum: u64 },
}

#[derive(Debug)]
struct Family {
    name: String,
    help: &'static str,
    kind: Kind,
    unit: Unit,
    per_unit: f64,
    samples: BTreeMap<SampleKey, Sample>,
}

/// Every family of one scrape, encoded when the registry asks.
#[derive(Debug, Default)]
struct Families(BTreeMap<String, Family>);

/// `stats` (every shard's) and `process`, in the OpenMetrics text format.
pub fn encode(stats: &[Stat], process: ProcessState) -> Result<String, std::fmt::Error> {
    let mut families = Families::default();
    families.process(process);
    for stat in stats {
        families.add(stat);
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(families));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

const PROCESS: [(&str, &str); 3] = [
    ("shards", "Shards configured."),
    ("shards_serving", "Shards that finished recovery and serve requests."),
    ("ready", "1 once recovery is done and every shard serves, until the process is told to stop."),
];

impl Families {
    fn process(&mut self, process: ProcessState) {
        let values = [process.shards as u64, process.serving as u64, u64::from(process.ready())];
        for ((metric, help), value) in PROCESS.into_iter().zip(values) {
            let family = self.family(&MetricSpec {
                stat: metric,
                scope: Scope::Shard,
                metric,
                kind: Kind::Gauge,
                unit: Unit::None,
                per_unit: 1.0,
                help,
            });
            family.samples.insert((None, None, Vec::new()), Sample::Gauge(Value::Whole(value)));
        }
    }

    fn family(&mut self, spec: &MetricSpec) -> &mut Family {
        self.0.entry(format!("nacre_{}", spec.metric)).or_insert_with_key(|name| Family {
            name: name.clone(),
            help: spec.help,
            kind: spec.kind,
            unit: spec.unit,
            per_unit: spec.per_unit,
            samples: BTreeMap::new(),
        })
    }

    fn add(&mut self, stat: &Stat) {
        let Some(name) = LabelledName::parse(&stat.name) else {
            tracing::warn!(name = stat.name, "a statistic's name does not parse; left out of /metrics");
            return;
        };
        let scope = if stat.partition.is_some() { Scope::Partition } else { Scope::Shard };
        let mut labels: Labels = Vec::new();
        if let Some(shard) = stat.shard {
            labels.push(("shard".into(), shard.to_string()));
        }
        if let Some(partition) = stat.partition {
            labels.push(("partition".into(), partition.to_string()));
        }
        // A histogram's parts: `<stat>_bucket{le}`, `<stat>_count`, `<stat>_sum`.
        for part in ["_bucket", "_count", "_sum"] {
            let Some(base) = name.base.strip_suffix(part) else { continue };
            let Some(spec) = metric_catalog::lookup(base, scope).filter(|s| s.kind == Kind::Histogram) else {
                continue;
            };
            let le = name.labels.get("le").and_then(|le| le.parse::<u64>().ok());
            labels.extend(name.labels.into_iter().filter(|(k, _)| k != "le"));
            let sample = self
                .family(spec)
                .samples
                .entry((stat.shard, stat.partition, labels))
                .or_insert_with(|| Sample::Histogram { le: BTreeMap::new(), count: 0, sum: 0 });
            if let Sample::Histogram { le: buckets, count, sum } = sample {
                match (part, le) {
                    ("_bucket", Some(le)) => *buckets.entry(le).or_default() += stat.value,
                    ("_count", _) => *count += stat.value,
                    ("_sum", _) => *sum += stat.value,
                    _ => tracing::warn!(name = stat.name, "a histogram bucket without a numeric le"),
                }
            }
            return;
        }
        labels.extend(name.labels);
        let Some(spec) = metric_catalog::lookup(&name.base, scope) else {
            let family = self.0.entry(format!("nacre_uncatalogued_{}", name.base)).or_insert_with_key(|n| Family {
                name: n.clone(),
                help: UNCATALOGUED_HELP,
                kind: Kind::Gauge,
                unit: Unit::None,
                per_unit: 1.0,
                samples: BTreeMap::new(),
            });
            family.samples.insert((stat.shard, stat.partition, labels), Sample::Gauge(Value::Whole(stat.value)));
            return;
        };
        let value = Value::of(stat.value, spec.per_unit);
        let sample = if spec.kind == Kind::Counter { Sample::Counter(value) } else { Sample::Gauge(value) };
        self.family(spec).samples.insert((stat.shard, stat.partition, labels), sample);
    }
}

const NO_EXEMPLAR: Option<&Exemplar<NoLabelSet, f64>> = None;

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in self.0.values() {
            let unit = match family.unit {
                Unit::None => None,
                Unit::Bytes => Some(prometheus_client::registry::Unit::Bytes),
                Unit::Seconds => Some(prometheus_client::registry::Unit::Seconds),
            };
            let metric_type = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(&family.name, family.help, unit.as_ref(), metric_type)?;
            for ((_, _, labels), sample) in &family.samples {
                let mut labelled = metric.encode_family(labels)?;
                match sample {
                    Sample::Counter(Value::Whole(v)) => labelled.encode_counter(v, NO_EXEMPLAR)?,
                    Sample::Counter(Value::Scaled(v)) => labelled.encode_counter(v, NO_EXEMPLAR)?,
                    Sample::Gauge(Value::Whole(v)) => labelled.encode_gauge(v)?,
                    Sample::Gauge(Value::Scaled(v)) => labelled.encode_gauge(v)?,
                    Sample::Histogram { le, count, sum } => {
                        // Per-bucket counts from cumulative ones, then what no finite bucket holds.
                        let mut buckets = Vec::with_capacity(le.len() + 1);
                        let mut below = 0;
                        for (&bound, &at_most) in le {
                            buckets.push((bound as f64 / family.per_unit, at_most.saturating_sub(below)));
                            below = below.max(at_most);
                        }
                        buckets.push((f64::INFINITY, count.saturating_sub(below)));
                        labelled.encode_histogram::<NoLabelSet>(
                            *sum as f64 / family.per_unit,
                            *count,
                            &buckets,
                            None,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(name: &str, shard: u32, partition: Option<u32>, value: u64) -> Stat {
        Stat { name: name.into(), shard: Some(shard), partition, value }
    }

    #[test]
    fn statistics_become_typed_labelled_metrics_in_base_units() {
        let stats = [
            stat("memtable_bytes", 0, None, 300),
            stat("memtable_bytes", 0, Some(2), 100),
            stat("compaction_micros_total", 1, Some(3), 2_500_000),
            stat(r#"requests_total{kind="put",outcome="ok"}"#, 1, None, 7),
            stat(r#"kafka_lag{source="s",topic="t",kafka_partition="0"}"#, 0, None, 0),
            stat(r#"request_duration_us_bucket{kind="get",le="100"}"#, 0, None, 3),
            stat(r#"request_duration_us_bucket{kind="get",le="1000"}"#, 0, None, 5),
            stat(r#"request_duration_us_count{kind="get"}"#, 0, None, 6),
            stat(r#"request_duration_us_sum{kind="get"}"#, 0, None, 4000),
            stat("brand_new_thing", 0, None, 1),
        ];
        let text = encode(&stats, ProcessState { shards: 2, serving: 2, stopping: false }).expect("encodes");
        for line in [
            "# TYPE nacre_shard_memtable_bytes gauge",
            "nacre_shard_memtable_bytes{shard=\"0\"} 300",
            "nacre_memtable_bytes{shard=\"0\",partition=\"2\"} 100",
            "# TYPE nacre_compaction_duration_seconds counter",
            "nacre_compaction_duration_seconds_total{shard=\"1\",partition=\"3\"} 2.5",
            "nacre_requests_total{shard=\"1\",kind=\"put\",outcome=\"ok\"} 7",
            "nacre_kafka_lag{shard=\"0\",kafka_partition=\"0\",source=\"s\",topic=\"t\"} 0",
            "# TYPE nacre_request_duration_seconds histogram",
            "nacre_request_duration_seconds_bucket{le=\"0.0001\",shard=\"0\",kind=\"get\"} 3",
            "nacre_request_duration_seconds_bucket{le=\"0.001\",shard=\"0\",kind=\"get\"} 5",
            "nacre_request_duration_seconds_bucket{le=\"+Inf\",shard=\"0\",kind=\"get\"} 6",
            "nacre_request_duration_seconds_count{shard=\"0\",kind=\"get\"} 6",
            "nacre_request_duration_seconds_sum{shard=\"0\",kind=\"get\"} 0.004",
            "nacre_ready 1",
            "nacre_shards_serving 2",
            "# HELP nacre_uncatalogued_brand_new_thing A statistic missing from the metric catalog.",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn not_ready_while_a_shard_recovers_or_the_process_stops() {
        assert!(!ProcessState { shards: 2, serving: 1, stopping: false }.ready());
        assert!(!ProcessState { shards: 2, serving: 2, stopping: true }.ready());
        let text = encode(&[], ProcessState { shards: 2, serving: 1, stopping: false }).expect("encodes");
        assert!(text.lines().any(|l| l == "nacre_ready 0"), "{text}");
    }
}
