//! The comparison report: each section's rows, a peer's figures beside Nacre's with the
//! ratio's median and spread over interleaved rounds, as Markdown and JSON. Pure: it formats
//! what the sections measured and never judges it.

use serde::Serialize;
use std::fmt::Write as _;

/// One figure compared: the peer's and Nacre's, one value per round.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is measured ("GET -P 16 throughput").
    pub measure: String,
    /// The unit of both figures ("op/s", "us").
    pub unit: String,
    /// The peer ("redis-server").
    pub peer: String,
    /// The peer's figure, per round.
    pub peer_values: Vec<f64>,
    /// Which Nacre ("nacred native", "nacred RESP").
    pub nacre: String,
    /// Nacre's figure, per round.
    pub nacre_values: Vec<f64>,
    /// True when more is better (throughput); false for latencies and costs.
    pub higher_is_better: bool,
}

impl Row {
    /// Nacre over the peer, per round (rounds pair up in order).
    pub fn ratios(&self) -> Vec<f64> {
        self.peer_values.iter().zip(&self.nacre_values).map(|(p, n)| n / p).collect()
    }

    /// The median ratio; NaN with no rounds.
    pub fn median_ratio(&self) -> f64 {
        median(&self.ratios())
    }

    /// The smallest and largest ratio.
    pub fn ratio_spread(&self) -> (f64, f64) {
        let ratios = self.ratios();
        (ratios.iter().copied().fold(f64::INFINITY, f64::min), ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    }
}

/// The median of `values` (the mean of the middle two for an even count); NaN if empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// One section's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Its number in the comparison table.
    pub number: u32,
    /// Its name on the command line.
    pub name: String,
    /// Its title.
    pub title: String,
    /// How it was measured, in a sentence or two.
    pub method: String,
    /// Its rows.
    pub rows: Vec<Row>,
    /// Figures with no peer (allocations per operation, say), one line each.
    pub notes: Vec<String>,
    /// Why it did not run, if it did not.
    pub skipped: Option<String>,
}

impl Section {
    /// Section `number`, with no rows or notes yet.
    pub fn new(number: u32, name: &str, title: &str, method: String) -> Section {
        Section {
            number,
            name: name.to_owned(),
            title: title.to_owned(),
            method,
            rows: Vec::new(),
            notes: Vec::new(),
            skipped: None,
        }
    }

    /// The section, skipped for `why` (a missing peer, with the package to install).
    #[must_use]
    pub fn skip(mut self, why: String) -> Section {
        self.skipped = Some(why);
        self
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine, in a line.
    pub machine: String,
    /// When it ran (UTC, RFC 3339).
    pub when: String,
    /// `quick` or `full`, with the number of rounds.
    pub mode: String,
    /// Every section asked for, in order.
    pub sections: Vec<Section>,
}

/// A figure with three significant digits or so, no exponent.
fn figure(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The Markdown report.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# nacre-bench compare\n");
    let _ = writeln!(out, "- machine: {}", report.machine);
    let _ = writeln!(out, "- run: {}, {}", report.when, report.mode);
    let _ = writeln!(
        out,
        "- each ratio is Nacre over the peer, per round, rounds interleaved (peer, then Nacre); \
         the table gives the median and, with more than one round, the spread\n"
    );
    for section in &report.sections {
        let _ = writeln!(out, "## {}. {}\n", section.number, section.title);
        if let Some(why) = &section.skipped {
            let _ = writeln!(out, "Skipped: {why}\n");
            continue;
        }
        let _ = writeln!(out, "{}\n", section.method);
        if !section.rows.is_empty() {
            let _ = writeln!(
                out,
                "| measure | unit | peer | peer figure | Nacre | Nacre figure | ratio | spread | better |"
            );
            let _ = writeln!(out, "| --- | --- | --- | ---: | --- | ---: | ---: | --- | --- |");
            for row in &section.rows {
                let (low, high) = row.ratio_spread();
                let spread = if row.ratios().len() > 1 { format!("{:.2}-{:.2}x", low, high) } else { String::new() };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {:.2}x | {} | {} |",
                    row.measure,
                    row.unit,
                    row.peer,
                    figure(median(&row.peer_values)),
                    row.nacre,
                    figure(median(&row.nacre_values)),
                    row.median_ratio(),
                    spread,
                    if row.higher_is_better { "higher" } else { "lower" }
                );
            }
            let _ = writeln!(out);
        }
        for note in &section.notes {
            let _ = writeln!(out, "- {note}");
        }
        if !section.notes.is_empty() {
            let _ = writeln!(out);
        }
    }
    out
}

/// The JSON report: the same rows, with every round's figures and ratios.
pub fn json(report: &Report) -> serde_json::Value {
    let mut value = serde_json::to_value(report).expect("a report serialises");
    for (section, rows) in
        value["sections"].as_array_mut().into_iter().flatten().zip(report.sections.iter().map(|s| &s.rows))
    {
        for (row_value, row) in section["rows"].as_array_mut().into_iter().flatten().zip(rows) {
            row_value["ratios"] = serde_json::json!(row.ratios());
            row_value["median_ratio"] = serde_json::json!(row.median_ratio());
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> Report {
        let row = Row {
            measure: "GET -P 16 throughput".to_owned(),
            unit: "op/s".to_owned(),
            peer: "redis-server".to_owned(),
            peer_values: vec![100_000.0, 200_000.0, 100_000.0],
            nacre: "nacred native".to_owned(),
            nacre_values: vec![150_000.0, 100_000.0, 80_000.0],
            higher_is_better: true,
        };
        Report {
            machine: "2 cores".to_owned(),
            when: "2026-12-07T00:00:00Z".to_owned(),
            mode: "full, 3 rounds".to_owned(),
            sections: vec![
                Section {
                    number: 1,
                    name: "serving".to_owned(),
                    title: "Serving".to_owned(),
                    method: "loadgen against both.".to_owned(),
                    rows: vec![row],
                    notes: vec!["nacred allocations per GET: 4.3".to_owned()],
                    skipped: None,
                },
                Section {
                    number: 8,
                    name: "loopback".to_owned(),
                    title: "Loopback".to_owned(),
                    method: String::new(),
                    rows: Vec::new(),
                    notes: Vec::new(),
                    skipped: Some("iperf3 not found (Debian: apt-get install iperf3)".to_owned()),
                },
            ],
        }
    }

    #[test]
    fn ratios_pair_rounds_and_take_the_median() {
        let row = &fixed().sections[0].rows[0];
        assert_eq!(row.ratios(), [1.5, 0.5, 0.8]);
        assert_eq!(row.median_ratio(), 0.8);
        assert_eq!(row.ratio_spread(), (0.5, 1.5));
        assert_eq!(median(&[1.0, 4.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn markdown_shows_each_row_with_medians_and_each_skip_with_its_reason() {
        let text = markdown(&fixed());
        assert!(
            text.contains("| GET -P 16 throughput | op/s | redis-server | 100000 | nacred native | 100000 | 0.80x | 0.50-1.50x | higher |"),
            "{text}"
        );
        assert!(
            text.contains("## 8. Loopback\n\nSkipped: iperf3 not found (Debian: apt-get install iperf3)"),
            "{text}"
        );
        assert!(text.contains("- nacred allocations per GET: 4.3"), "{text}");
    }

    #[test]
    fn json_carries_every_round_and_the_median() {
        let value = json(&fixed());
        let row = &value["sections"][0]["rows"][0];
        assert_eq!(row["ratios"], serde_json::json!([1.5, 0.5, 0.8]));
        assert_eq!(row["median_ratio"], 0.8);
        assert_eq!(row["peer_values"][1], 200_000.0);
        assert_eq!(value["sections"][1]["skipped"], "iperf3 not found (Debian: apt-get install iperf3)");
    }
}
