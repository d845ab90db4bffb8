//! `-o table|json` for every command that reads state, and the table printer they share.
//!
//! JSON output is one document with stable, camelCase field names (the README lists them);
//! tables are for people and may change.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document, for scripts.
    Json,
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Columns padded to their widest cell; the last column is not padded.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    /// Rows, not counting the header.
    pub fn len(&self) -> usize {
        self.rows.len() - 1
    }

    pub fn print(&self) {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            println!("{}", line.trim_end());
        }
    }
}

/// A Unix time as an age relative to now: `42s ago`, `3m ago`, `in 23h`.
pub fn age(unix: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if unix == 0 {
        return "-".into();
    }
    let (secs, future) = if unix > now {
        (unix - now, true)
    } else {
        (now - unix, false)
    };
    let span = match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// `spiffe://td/ns/shop/sa/frontend` as `shop/sa/frontend`: in a table the trust domain is
/// the mesh's own and only takes room.
pub fn short_principal(p: &str) -> String {
    match p
        .strip_prefix("spiffe://")
        .and_then(|r| r.split_once("/ns/"))
    {
        Some((_, rest)) => rest.to_string(),
        None => p.to_string(),
    }
}
