//! The import's counts and the first few errors, and how they print: a few aligned lines for
//! people, or one JSON object with `--json`. It counts; it decides nothing.

use serde::Serialize;
use std::collections::BTreeMap;

/// Errors kept word for word in the summary; later ones are only counted.
pub const MAX_KEPT_ERRORS: usize = 10;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Keys read from Redis: by the scan and again when notified.
    pub keys_scanned: u64,
    /// Rows written at the observed time.
    pub rows_copied: u64,
    /// Rows Nacre already held with the same value and expiry.
    pub rows_unchanged: u64,
    /// Rows not written because Nacre has moved on since the value was imported.
    pub rows_skipped_newer: u64,
    /// Rows deleted (tombstoned at the observed time) because their key or field is gone.
    pub rows_deleted: u64,
    /// Keys gone between being listed and being read, or notified and absent.
    pub keys_gone: u64,
    /// Keys not imported because of their type, by Redis's type name.
    pub keys_skipped_by_type: BTreeMap<String, u64>,
    /// Keys whose read or write failed.
    pub keys_failed: u64,
    /// The first [`MAX_KEPT_ERRORS`] failures, each naming its key.
    pub errors: Vec<String>,
    /// Rounds of catch-up after the scan (re-copying notified keys), `--follow` included.
    pub catch_up_rounds: u64,
    /// Set when changes made during the copy may have been missed (no keyspace notifications).
    pub changes_may_be_missed: bool,
    /// Set when Redis still changed after the last catch-up round: changes notified since were
    /// not copied (a re-run, or `--follow`, copies them).
    pub still_changing: bool,
}

impl Summary {
    /// Counts a failed key and keeps its error if there is room.
    pub fn fail(&mut self, key: &[u8], error: impl std::fmt::Display) {
        self.keys_failed += 1;
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(format!("{}: {error}", String::from_utf8_lossy(key)));
        }
    }

    /// Counts a key skipped for its type.
    pub fn skip_type(&mut self, type_name: &str) {
        *self.keys_skipped_by_type.entry(type_name.to_owned()).or_default() += 1;
    }

    /// Keys skipped for their type, all types together.
    pub fn keys_skipped_by_type_total(&self) -> u64 {
        self.keys_skipped_by_type.values().sum()
    }

    /// The summary for people: one `name: value` line each, aligned.
    pub fn to_text(&self) -> String {
        let by_type = if self.keys_skipped_by_type.is_empty() {
            "0".to_owned()
        } else {
            let parts: Vec<String> = self.keys_skipped_by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
            format!("{} ({})", self.keys_skipped_by_type_total(), parts.join(", "))
        };
        let lines = [
            ("keys scanned", self.keys_scanned.to_string()),
            ("rows copied", self.rows_copied.to_string()),
            ("rows unchanged", self.rows_unchanged.to_string()),
            ("rows skipped, newer in Nacre", self.rows_skipped_newer.to_string()),
            ("rows deleted", self.rows_deleted.to_string()),
            ("keys gone", self.keys_gone.to_string()),
            ("keys skipped by type", by_type),
            ("keys failed", self.keys_failed.to_string()),
            ("catch-up rounds", self.catch_up_rounds.to_string()),
        ];
        let width = lines.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (name, value) in lines {
            text.push_str(&format!("{name:<width$}  {value}\n"));
        }
        if self.changes_may_be_missed {
            text.push_str("warning: keyspace notifications were unavailable; changes during the copy may be missed\n");
        }
        if self.still_changing {
            text.push_str("warning: Redis was still changing after the last catch-up round; re-run or use --follow\n");
        }
        for error in &self.errors {
            text.push_str(&format!("error: {error}\n"));
        }
        if self.keys_failed > self.errors.len() as u64 {
            text.push_str(&format!("... and {} more failed keys\n", self.keys_failed - self.errors.len() as u64));
        }
        text
    }

    /// The summary as one JSON object and a newline; the fields are this struct's.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string(self).expect("a summary of numbers, strings and maps serializes");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_first_few_errors_and_count_all() {
        let mut summary = Summary::default();
        for i in 0..MAX_KEPT_ERRORS + 3 {
            summary.fail(format!("k{i}").as_bytes(), "boom");
        }
        assert_eq!(summary.keys_failed, (MAX_KEPT_ERRORS + 3) as u64);
        assert_eq!(summary.errors.len(), MAX_KEPT_ERRORS);
        assert_eq!(summary.errors[0], "k0: boom");
        assert!(summary.to_text().contains("... and 3 more failed keys"), "{}", summary.to_text());
    }

    #[test]
    fn text_names_every_count_and_the_skipped_types() {
        let mut summary = Summary { keys_scanned: 7, rows_copied: 5, rows_skipped_newer: 2, ..Summary::default() };
        summary.skip_type("list");
        summary.skip_type("zset");
        summary.skip_type("list");
        let text = summary.to_text();
        for line in
            ["keys scanned                  7", "rows copied                   5", "rows skipped, newer in Nacre  2"]
        {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(text.contains("keys skipped by type          3 (list 2, zset 1)"), "{text}");
        assert!(!text.contains("warning"), "{text}");
        summary.still_changing = true;
        assert!(summary.to_text().contains("warning: Redis was still changing"), "{}", summary.to_text());
    }

    #[test]
    fn json_is_one_object_with_every_field() {
        let mut summary =
            Summary { rows_unchanged: 4, catch_up_rounds: 2, changes_may_be_missed: true, ..Summary::default() };
        summary.skip_type("set");
        summary.fail(b"bad", "nope");
        let text = summary.to_json();
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["rows_unchanged"], 4);
        assert_eq!(value["catch_up_rounds"], 2);
        assert_eq!(value["changes_may_be_missed"], true);
        assert_eq!(value["still_changing"], false);
        assert_eq!(value["keys_skipped_by_type"]["set"], 1);
        assert_eq!(value["keys_failed"], 1);
        assert_eq!(value["errors"][0], "bad: nope");
    }
}
