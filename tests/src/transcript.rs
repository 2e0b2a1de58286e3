//! The scripted RESP session (`tests/resp/session.redis`) and the transcript it produces: the
//! script's commands, each followed by the reply `redis-cli --no-raw` printed for it, with
//! the replies whose content may change from run to run (TTLs counting down, INFO, COMMAND,
//! SCAN cursors, HELLO's ids) replaced by a statement of the shape they were checked to have.
//!
//! The script is redis-cli syntax plus comments (`#`) and checks (`#@ ...`, applying to the
//! next command); the header of `session.redis` documents them. redis-cli gets the commands
//! one a line, each followed by an `ECHO` of a numbered marker, so every reply can be told
//! apart from the next however many lines it prints.

use similar::TextDiff;

/// How the reply to one command is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Exactly as printed.
    Exact,
    /// An integer in `lo..=hi`.
    Range(i64, i64),
    /// INFO's text: a bulk string with `# Server` and `redis_version:`.
    Info,
    /// A non-empty array.
    Array,
    /// An integer.
    Integer,
    /// An array or a map, possibly empty.
    Docs,
    /// SCAN's reply: a cursor and an array of keys.
    Scan,
    /// HELLO's reply, naming this protocol version.
    Hello(u8),
    /// A documented difference from Redis, by name: exact for nacred, not compared for Redis.
    Differs(String),
}

/// One command of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its line in the script, from 1.
    pub line: usize,
    /// The command, as redis-cli reads it.
    pub command: String,
    /// How its reply is checked.
    pub check: Check,
}

/// Where a transcript says a reply was not compared, for [`mask_differences`].
const DIFFERS_TAG: &str = "   [differs from Redis: ";

/// Parses a script; `differences` are the names `#@ differs` may use.
///
/// # Errors
///
/// A message naming the line, for an unknown check, a check without a command after it, or a
/// difference not in `differences`.
pub fn parse_script(text: &str, differences: &[&str]) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut pending: Option<(usize, Check)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if let Some(check) = trimmed.strip_prefix("#@") {
            if pending.is_some() {
                return Err(format!("line {line}: two checks for one command"));
            }
            pending = Some((line, parse_check(check.trim(), differences).map_err(|e| format!("line {line}: {e}"))?));
        } else if !trimmed.is_empty() && !trimmed.starts_with('#') {
            let check = pending.take().map_or(Check::Exact, |(_, c)| c);
            steps.push(Step { line, command: trimmed.to_owned(), check });
        }
    }
    match pending {
        Some((line, _)) => Err(format!("line {line}: a check without a command after it")),
        None => Ok(steps),
    }
}

fn parse_check(text: &str, differences: &[&str]) -> Result<Check, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let number = |s: &str| s.parse::<i64>().map_err(|_| format!("{s:?} is not a number"));
    match words.as_slice() {
        ["ttl", lo, hi] => Ok(Check::Range(number(lo)?, number(hi)?)),
        ["info"] => Ok(Check::Info),
        ["array"] => Ok(Check::Array),
        ["integer"] => Ok(Check::Integer),
        ["docs"] => Ok(Check::Docs),
        ["scan"] => Ok(Check::Scan),
        ["hello", "2"] => Ok(Check::Hello(2)),
        ["hello", "3"] => Ok(Check::Hello(3)),
        ["differs", name] if differences.contains(name) => Ok(Check::Differs((*name).to_owned())),
        ["differs", name] => Err(format!("{name:?} is not a documented difference ({differences:?})")),
        _ => Err(format!("unknown check {text:?}")),
    }
}

fn marker(index: usize) -> String {
    format!("~~~ end of reply {index} ~~~")
}

/// What redis-cli reads: every command, each followed by an ECHO of its marker.
pub fn cli_input(steps: &[Step]) -> String {
    let mut input = String::new();
    for (i, step) in steps.iter().enumerate() {
        input.push_str(&step.command);
        input.push('\n');
        input.push_str(&format!("ECHO \"{}\"\n", marker(i)));
    }
    input
}

/// Splits redis-cli's output into each step's reply lines. A step whose marker never came
/// (the connection closed, as after QUIT) gets what was printed before the end, or nothing.
pub fn split_replies(output: &str, step_count: usize) -> Vec<Vec<String>> {
    let mut replies = Vec::with_capacity(step_count);
    let mut current = Vec::new();
    for line in output.lines() {
        if replies.len() < step_count && line == format!("\"{}\"", marker(replies.len())) {
            replies.push(std::mem::take(&mut current));
        } else {
            current.push(line.to_owned());
        }
    }
    if replies.len() < step_count {
        replies.push(current);
    } else if let Some(last) = replies.last_mut().filter(|_| !current.is_empty()) {
        last.push("<printed after the last reply:>".to_owned());
        last.extend(current);
    }
    replies.resize(step_count, Vec::new());
    replies
}

/// The transcript: `> command` then its reply lines, normalised by its check.
pub fn transcript(steps: &[Step], replies: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (step, reply) in steps.iter().zip(replies) {
        out.push_str("> ");
        out.push_str(&step.command);
        if let Check::Differs(name) = &step.check {
            out.push_str(&format!("{DIFFERS_TAG}{name}]"));
        }
        out.push('\n');
        let lines = if reply.is_empty() { vec!["<no reply>".to_owned()] } else { normalise(&step.check, reply) };
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The reply as checked: its shape statement if it has the shape, else the lines as printed
/// (which then differ from the expected statement).
fn normalise(check: &Check, reply: &[String]) -> Vec<String> {
    let first = reply[0].trim_start();
    let one_integer = || if reply.len() == 1 { first.strip_prefix("(integer) ")?.parse::<i64>().ok() } else { None };
    let shape = match check {
        Check::Exact | Check::Differs(_) => None,
        Check::Range(lo, hi) => {
            one_integer().filter(|n| (lo..=hi).contains(&n)).map(|_| format!("(integer) {lo}..={hi}"))
        }
        Check::Integer => one_integer().map(|_| "<an integer>".to_owned()),
        Check::Info => {
            let text = reply.join("\n");
            (text.contains("# Server") && text.contains("redis_version:") && !first.starts_with("(error)"))
                .then(|| "<INFO text with \"# Server\" and \"redis_version:\">".to_owned())
        }
        Check::Array => first.starts_with("1) ").then(|| "<a non-empty array>".to_owned()),
        Check::Docs => (first.starts_with("1) ") || first.starts_with("1# ") || first == "(empty array)")
            .then(|| "<an array or a map>".to_owned()),
        Check::Scan => is_scan_reply(reply).then(|| "<a SCAN reply: a cursor and an array of keys>".to_owned()),
        Check::Hello(proto) => is_hello_reply(reply, *proto).then(|| format!("<a HELLO reply with proto {proto}>")),
    };
    shape.map_or_else(|| reply.to_vec(), |s| vec![s])
}

/// `1) "<digits>"`, then `2) (empty array)` or `2) 1) "key"` and more keys indented.
fn is_scan_reply(reply: &[String]) -> bool {
    let cursor = reply[0].strip_prefix("1) \"").and_then(|s| s.strip_suffix('"'));
    let Some(cursor) = cursor else { return false };
    let Some(keys) = reply.get(1).and_then(|l| l.strip_prefix("2) ")) else { return false };
    let quoted_element = |l: &str| l.trim_start().split_once(") \"").is_some_and(|(n, _)| n.parse::<u32>().is_ok());
    !cursor.is_empty()
        && cursor.bytes().all(|b| b.is_ascii_digit())
        && (keys == "(empty array)" && reply.len() == 2
            || quoted_element(keys) && reply[2..].iter().all(|l| quoted_element(l)))
}

/// RESP3: a map line `N# "proto" => (integer) P`; RESP2: a flat array with `"proto"` followed
/// by `(integer) P`.
fn is_hello_reply(reply: &[String], proto: u8) -> bool {
    let map_entry = format!("\"proto\" => (integer) {proto}");
    let value = format!("(integer) {proto}");
    let element = |l: &str| l.trim_start().split_once(") ").map(|(_, v)| v.to_owned());
    reply.iter().any(|l| l.trim_start().split_once("# ").is_some_and(|(_, rest)| rest == map_entry))
        || reply.windows(2).any(|w| {
            element(&w[0]).as_deref() == Some("\"proto\"") && element(&w[1]).as_deref() == Some(value.as_str())
        })
}

/// The transcript with the reply of every step marked `[differs from Redis: ...]` replaced by
/// one `<not compared>` line: what a Redis transcript is compared on.
pub fn mask_differences(transcript: &str) -> String {
    let mut out = String::new();
    let mut masking = false;
    for line in transcript.lines() {
        if line.starts_with("> ") {
            masking = line.contains(DIFFERS_TAG);
            out.push_str(line);
            out.push('\n');
            if masking {
                out.push_str("<not compared>\n");
            }
        } else if !masking {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The transcript's steps: each `> command` line with its reply lines.
pub fn blocks(transcript: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in transcript.lines() {
        match blocks.last_mut() {
            Some((_, reply)) if !line.starts_with("> ") => {
                reply.push_str(line);
                reply.push('\n');
            }
            _ => blocks.push((line.to_owned(), String::new())),
        }
    }
    blocks
}

/// A unified diff from `expected` to `actual`, for assertion messages.
pub fn unified_diff(expected: &str, actual: &str, expected_name: &str, actual_name: &str) -> String {
    TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(4)
        .header(expected_name, actual_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn checks_accept_their_shape_and_keep_anything_else_as_printed() {
        let scan = lines("1) \"0\"\n2) 1) \"a\"\n   2) \"b\"");
        assert_eq!(normalise(&Check::Scan, &scan).len(), 1);
        assert_eq!(normalise(&Check::Scan, &lines("1) \"17\"\n2) (empty array)")).len(), 1);
        assert_eq!(normalise(&Check::Scan, &lines("(error) ERR syntax error")).len(), 1);
        assert!(normalise(&Check::Scan, &lines("(error) ERR syntax error"))[0].starts_with("(error)"));
        assert_eq!(normalise(&Check::Range(5, 9), &lines("(integer) 7")), ["(integer) 5..=9"]);
        assert_eq!(normalise(&Check::Range(5, 9), &lines("(integer) 10")), ["(integer) 10"]);
        let hello3 = lines("1# \"server\" => \"redis\"\n2# \"proto\" => (integer) 3");
        assert_eq!(normalise(&Check::Hello(3), &hello3), ["<a HELLO reply with proto 3>"]);
        assert_eq!(normalise(&Check::Hello(2), &hello3), hello3);
        let hello2 = lines(" 5) \"proto\"\n 6) (integer) 2");
        assert_eq!(normalise(&Check::Hello(2), &hello2), ["<a HELLO reply with proto 2>"]);
        assert_eq!(normalise(&Check::Array, &lines("(empty array)")), ["(empty array)"]);
    }

    #[test]
    fn replies_split_on_markers_and_differences_are_masked() {
        let steps = parse_script("GET a\n#@ differs x\nSELECT 1\nQUIT\n", &["x"]).expect("parses");
        let output = format!("\"v\"\n\"{}\"\n(error) E\n\"{}\"\nOK\n", marker(0), marker(1));
        let replies = split_replies(&output, steps.len());
        let text = transcript(&steps, &replies);
        assert_eq!(text, "> GET a\n\"v\"\n> SELECT 1   [differs from Redis: x]\n(error) E\n> QUIT\nOK\n");
        assert_eq!(
            mask_differences(&text),
            "> GET a\n\"v\"\n> SELECT 1   [differs from Redis: x]\n<not compared>\n> QUIT\nOK\n"
        );
        assert!(parse_script("#@ differs y\nGET a\n", &["x"]).is_err());
        assert!(parse_script("GET a\n#@ info\n", &["x"]).is_err());
    }
}
