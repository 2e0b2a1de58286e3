//! Section 2: latency at fixed open-loop rates, 25%, 50% and 75% of redis-server's maximum
//! GET rate with the same sessions, each latency counted from its request's due time: nacred's
//! RESP and native doors against redis-server, all driven by nacre-loadgen.

use crate::compare::context::Context;
use crate::compare::loadgen::Measured;
use crate::compare::report::{Section, median};
use crate::compare::targets::{Servers, Target, row};
use anyhow::Result;

/// Fractions of Redis's maximum rate, percent.
const LOADS: [u64; 3] = [25, 50, 75];
/// Sessions of the closed-loop run that finds Redis's maximum (one request each, as
/// redis-benchmark's default 50 clients).
const SESSIONS: &str = "50";
/// Sessions of the open-loop runs, each with up to 64 requests waiting: fewer senders wake
/// less often, so the client's own lateness stays small (it is reported beside each run).
const OPEN_SESSIONS: &str = "8";
/// Percentiles compared.
const PERCENTILES: [&str; 3] = ["p50", "p99", "p99.9"];

/// Runs the section.
///
/// # Errors
///
/// If a server or a run fails.
pub fn run(ctx: &Context) -> Result<Section> {
    let servers = Servers::start(ctx, ctx.records(), 100)?;
    let closed = ["--workload", "get", "--connections", SESSIONS, "--pipeline", "1"];
    let maxima: Vec<f64> =
        (0..ctx.rounds).map(|_| servers.measure(ctx, Target::Redis, &closed).map(|m| m.rate)).collect::<Result<_>>()?;
    let redis_max = median(&maxima);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for load in LOADS {
        let rate = ((redis_max * load as f64 / 100.0) as u64).max(1).to_string();
        let open = ["--workload", "get", "--connections", OPEN_SESSIONS, "--pipeline", "64", "--rate", &rate];
        let rounds = servers.rounds(ctx, &open)?;
        let lateness = |m: &Measured| m.run["send_lateness_us"]["p99"].as_f64().unwrap_or(f64::NAN);
        notes.push(format!(
            "at {load}%, the client sent p99 {:.0} us after due against redis-server, {:.0} us against nacred RESP, \
             {:.0} us against nacred native (medians of the rounds; part of every latency)",
            median(&rounds.iter().map(|r| lateness(&r.redis)).collect::<Vec<_>>()),
            median(&rounds.iter().map(|r| lateness(&r.nacre[0])).collect::<Vec<_>>()),
            median(&rounds.iter().map(|r| lateness(&r.nacre[1])).collect::<Vec<_>>()),
        ));
        if let Some(last) = rounds.last() {
            let curve = |label: &str, m: &Measured| -> (String, Vec<(f64, f64)>) {
                let points = m.run["operations"]["read"]["curve"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
                    .collect();
                (label.to_owned(), points)
            };
            let curves = [
                curve(Target::Redis.label(), &last.redis),
                curve(Target::NacreResp.label(), &last.nacre[0]),
                curve(Target::NacreNative.label(), &last.nacre[1]),
            ];
            let stem = format!("latency-{load}pct");
            let title = format!("GET latency, open loop at {rate} op/s ({load}% of redis-server's maximum)");
            match nacre_loadgen::plot::write(&ctx.out.join(&stem), &title, &curves) {
                Ok(()) => notes.push(format!("![{title}, last round]({stem}.png) ([SVG]({stem}.svg))")),
                Err(why) => notes.push(format!("no plot: {why}")),
            }
        }
        for door in 0..Target::NACRE.len() {
            for percentile in PERCENTILES {
                let measure = format!("GET {percentile} at {load}% ({rate} op/s)");
                rows.push(row(&rounds, door, measure, "us", false, |m| m.latency_us(percentile)));
            }
        }
    }
    Ok(Section {
        number: 2,
        name: "latency".to_owned(),
        title: "GET latency at fixed rates against redis-server".to_owned(),
        method: format!(
            "redis-server's maximum GET rate with nacre-loadgen, closed loop, {SESSIONS} sessions of one request \
             each: {redis_max:.0} op/s (median of the rounds). Then open loop at 25, 50 and 75% of it, \
             {OPEN_SESSIONS} sessions of up to 64 waiting requests, {} s a run, each latency counted from when its \
             request was due, so the client's lateness in sending is part of it (noted below). The native door \
             gets 1 / shards the sessions with shards times the requests each (a session holds a connection per \
             shard): the same connections. Goal (issue 13): p99 at 50% no worse than Redis's.",
            ctx.seconds()
        ),
        rows,
        notes,
        skipped: None,
    })
}
