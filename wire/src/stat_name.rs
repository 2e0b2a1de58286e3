//! A statistic's name, which may carry labels Prometheus style:
//! `kafka_next_offset{source="events",topic="events",kafka_partition="3"}`. The daemon writes
//! names with [`labelled`]; readers (the CLI, the metrics endpoint, tests) split them with
//! [`LabelledName::parse`]. A statistic's shard and partition are fields of [`crate::Stat`],
//! never labels in its name.

use std::collections::BTreeMap;

/// A statistic's name split into its base and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledName {
    /// The name before `{`, or the whole name when it has no labels.
    pub base: String,
    /// The labels, by name.
    pub labels: BTreeMap<String, String>,
}

impl LabelledName {
    /// Splits `name`; `None` if its labels are malformed. Label values may escape `"` and `\`
    /// with a backslash.
    pub fn parse(name: &str) -> Option<LabelledName> {
        let Some((base, rest)) = name.split_once('{') else {
            return Some(LabelledName { base: name.to_owned(), labels: BTreeMap::new() });
        };
        let mut labels = BTreeMap::new();
        let mut rest = rest.strip_suffix('}')?;
        while !rest.is_empty() {
            let (label, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => value.push(chars.next()?.1),
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.insert(label.to_owned(), value);
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Some(LabelledName { base: base.to_owned(), labels })
    }

    /// True if its base is `base` and it carries every label of `labels` with that value.
    pub fn matches(&self, base: &str, labels: &[(&str, &str)]) -> bool {
        self.base == base && labels.iter().all(|(k, v)| self.labels.get(*k).is_some_and(|have| have == v))
    }
}

/// `base` with `labels` in braces (values escaped), or `base` alone when there are none: the
/// one way the daemon writes a labelled statistic's name.
pub fn labelled(base: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return base.to_owned();
    }
    let mut name = String::with_capacity(base.len() + 16 * labels.len());
    name.push_str(base);
    for (i, (key, value)) in labels.iter().enumerate() {
        name.push(if i == 0 { '{' } else { ',' });
        name.push_str(key);
        name.push_str("=\"");
        for c in value.chars() {
            if c == '"' || c == '\\' {
                name.push('\\');
            }
            name.push(c);
        }
        name.push('"');
    }
    name.push('}');
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_base_and_labels() {
        let name = LabelledName::parse(r#"kafka_lag{source="a \"b\"",topic="t",kafka_partition="3"}"#).expect("valid");
        assert_eq!(name.base, "kafka_lag");
        let labels: Vec<(&str, &str)> = name.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(labels, [("kafka_partition", "3"), ("source", "a \"b\""), ("topic", "t")]);
        assert!(name.matches("kafka_lag", &[("topic", "t")]));
        assert!(!name.matches("kafka_lag", &[("topic", "u")]));
        assert!(!name.matches("kafka_next_offset", &[]));
        assert_eq!(LabelledName::parse("memtable_bytes").expect("valid").labels.len(), 0);
        assert_eq!(LabelledName::parse(r#"x{a="1""#), None);
        assert_eq!(LabelledName::parse(r#"x{a=1}"#), None);
    }

    #[test]
    fn labelled_names_parse_back_to_their_labels() {
        assert_eq!(labelled("connections", &[]), "connections");
        let name = labelled("kafka_lag", &[("source", r#"odd "name" \ here"#), ("topic", "t")]);
        let parsed = LabelledName::parse(&name).expect("what labelled writes parses");
        assert!(parsed.matches("kafka_lag", &[("source", r#"odd "name" \ here"#), ("topic", "t")]), "{name}");
        assert_eq!(parsed.labels.len(), 2);
    }
}
