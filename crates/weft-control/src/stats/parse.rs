//! Reading a proxy's `/metrics` (Prometheus text format) for the golden metrics `weft stat`
//! needs: `weft_requests_total` and `weft_request_duration_seconds_bucket`. Other families and
//! comments are skipped; a malformed line is skipped, never a reason to fail the whole scrape.

use std::collections::BTreeMap;

pub const REQUESTS: &str = "weft_requests_total";
pub const BUCKETS: &str = "weft_request_duration_seconds_bucket";

/// One sample line: its metric name, labels and value.
#[derive(Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The lines of `text` that belong to the families `weft stat` reads.
pub fn golden(text: &str) -> Vec<Line> {
    text.lines()
        .filter(|l| l.starts_with(REQUESTS) || l.starts_with(BUCKETS))
        .filter_map(line)
        .collect()
}

/// Parses `name{k="v",...} value [timestamp]`; `None` when malformed.
pub fn line(text: &str) -> Option<Line> {
    let (name, rest) = match text.find('{') {
        Some(i) => (&text[..i], &text[i..]),
        None => {
            let (name, value) = text.split_once(' ')?;
            return Some(Line {
                name: name.to_string(),
                labels: BTreeMap::new(),
                value: number(value)?,
            });
        }
    };
    let (labels, after) = labels(rest)?;
    Some(Line {
        name: name.to_string(),
        labels,
        value: number(after)?,
    })
}

fn number(text: &str) -> Option<f64> {
    let v = text.split_whitespace().next()?;
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => v.parse().ok(),
    }
}

/// `{k="v",...}` at the start of `text`: the labels and what follows the `}`.
fn labels(text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut out = BTreeMap::new();
    let bytes = text.as_bytes();
    let mut i = 1; // past '{'
    loop {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i] == b' ') {
            i += 1;
        }
        if *bytes.get(i)? == b'}' {
            return Some((out, &text[i + 1..]));
        }
        let eq = i + text[i..].find('=')?;
        let key = text[i..eq].trim().to_string();
        if bytes.get(eq + 1) != Some(&b'"') {
            return None;
        }
        let mut value = String::new();
        let mut j = eq + 2;
        loop {
            match *bytes.get(j)? {
                b'\\' => {
                    // The escaped character may be any UTF-8 character, not only a byte.
                    let escaped = text.get(j + 1..)?.chars().next()?;
                    value.push(if escaped == 'n' { '\n' } else { escaped });
                    j += 1 + escaped.len_utf8();
                }
                b'"' => break,
                _ => {
                    // Copy one UTF-8 character whole.
                    let ch = text[j..].chars().next()?;
                    value.push(ch);
                    j += ch.len_utf8();
                }
            }
        }
        out.insert(key, value);
        i = j + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_with_escapes_and_skips_what_it_cannot_read() {
        let text = "# HELP weft_requests_total x\n\
            weft_requests_total{direction=\"outbound\",route=\"a\\\"b\",destination_service=\"shop/r\"} 12\n\
            weft_request_duration_seconds_bucket{direction=\"inbound\",le=\"+Inf\"} 3\n\
            weft_requests_total{broken 1\n\
            weft_other_total 5\n";
        let lines = golden(text);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].labels["route"], "a\"b");
        assert_eq!(lines[0].labels["destination_service"], "shop/r");
        assert_eq!(lines[0].value, 12.0);
        assert_eq!(lines[1].labels["le"], "+Inf");
        assert_eq!(lines[1].value, 3.0);
        assert_eq!(line("x_total 7").map(|l| l.value), Some(7.0));
        assert!(line("x{a=b} 1").is_none());
        // An escape before a multi-byte character, and one at the very end.
        assert_eq!(
            line("x{a=\"\\é\"} 1").map(|l| l.labels["a"].clone()),
            Some("é".into())
        );
        assert!(line("x{a=\"\\").is_none());
        assert!(line("x{a=\"b\"} nan-ish").is_none());
    }
}
