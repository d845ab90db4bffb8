//! The audit report as a document: headings, paragraphs, lists and tables in plain text or
//! Markdown, and numbers that carry the counter they came from (a footnote with its Prometheus
//! expression, or a link into Prometheus).

use std::fmt::Write as _;

use serde_json::Value;

pub struct Doc {
    md: bool,
    pub out: String,
    /// The expressions footnotes point to.
    notes: Vec<String>,
    prometheus: Option<String>,
}

impl Doc {
    pub fn new(md: bool, prometheus: Option<&str>) -> Doc {
        Doc {
            md,
            out: String::new(),
            notes: Vec::new(),
            prometheus: prometheus.map(|p| p.trim_end_matches('/').to_string()),
        }
    }

    pub fn heading(&mut self, level: usize, text: &str) {
        if self.md {
            let _ = writeln!(self.out, "{} {text}\n", "#".repeat(level));
        } else {
            let rule = if level == 1 { '=' } else { '-' };
            let _ = writeln!(
                self.out,
                "{text}\n{}\n",
                rule.to_string().repeat(text.chars().count())
            );
        }
    }

    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}\n");
    }

    pub fn bold(&self, text: &str) -> String {
        if self.md {
            format!("**{text}**")
        } else {
            text.to_string()
        }
    }

    pub fn list(&mut self, title: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(self.out, "{title}:\n");
        for i in items {
            let _ = writeln!(self.out, "- {i}");
        }
        self.out.push('\n');
    }

    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        if rows.is_empty() {
            return;
        }
        if self.md {
            let _ = writeln!(self.out, "| {} |", header.join(" | "));
            let _ = writeln!(self.out, "|{}", "---|".repeat(header.len()));
            for r in rows {
                let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
                let _ = writeln!(self.out, "| {} |", cells.join(" | "));
            }
        } else {
            let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for r in rows {
                for (i, c) in r.iter().enumerate().take(widths.len()) {
                    widths[i] = widths[i].max(c.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                padded.join("  ").trim_end().to_string()
            };
            let _ = writeln!(self.out, "{}", line(header.to_vec()));
            for r in rows {
                let _ = writeln!(self.out, "{}", line(r.iter().map(String::as_str).collect()));
            }
        }
        self.out.push('\n');
    }

    /// `{value, promql}` as a number linked to its counter.
    pub fn number(&mut self, n: &Value) -> String {
        let shown = count(n["value"].as_f64().unwrap_or(0.0));
        let Some(promql) = n["promql"].as_str() else {
            return shown;
        };
        if let Some(base) = &self.prometheus {
            let url = format!("{base}/graph?g0.expr={}&g0.tab=1", escape(promql));
            return if self.md {
                format!("[{shown}]({url})")
            } else {
                format!("{shown} <{url}>")
            };
        }
        let id = match self.notes.iter().position(|p| p == promql) {
            Some(i) => i + 1,
            None => {
                self.notes.push(promql.to_string());
                self.notes.len()
            }
        };
        if self.md {
            format!("{shown}[^{id}]")
        } else {
            format!("{shown} [{id}]")
        }
    }

    /// The counters the numbers came from.
    pub fn notes(&mut self) {
        if self.notes.is_empty() {
            return;
        }
        let notes = std::mem::take(&mut self.notes);
        if self.md {
            for (i, p) in notes.iter().enumerate() {
                let _ = writeln!(self.out, "[^{}]: `{p}`", i + 1);
            }
        } else {
            self.heading(
                2,
                "Where each number comes from (Prometheus expressions over the proxies' counters)",
            );
            for (i, p) in notes.iter().enumerate() {
                let _ = writeln!(self.out, "[{}] {p}", i + 1);
            }
        }
        self.out.push('\n');
    }
}

/// A count with thousands separators (`12,345`).
pub fn count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn duration(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Percent-encodes an expression for a URL's query.
pub fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
