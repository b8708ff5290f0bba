//! Tables for people, JSON for scripts; colour only on a terminal.

use std::io::IsTerminal;

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    color: bool,
}

impl Output {
    pub(crate) fn new(json: bool, no_color: bool) -> Output {
        let color = !json
            && !no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal();
        Output { json, color }
    }

    /// Bold header text on a terminal.
    pub(crate) fn bold(&self, s: &str) -> String {
        if self.color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Red text on a terminal (problems).
    pub(crate) fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }

    /// Cyan text on a terminal (where a record is: topic, partition, offset).
    pub(crate) fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }

    /// Yellow text on a terminal (keys, error classes).
    pub(crate) fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }

    /// Dim text on a terminal (headers, timestamps).
    pub(crate) fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Prints `value` as one compact JSON line (JSON-lines output).
    pub(crate) fn json_line(&self, value: &serde_json::Value) {
        println!("{value}");
    }

    /// Prints `value` as pretty JSON.
    pub(crate) fn json(&self, value: &serde_json::Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }

    /// Prints rows as a left-aligned table under `headers`.
    pub(crate) fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let head = line(headers.iter().map(|h| (*h).to_owned()).collect());
        println!("{}", self.bold(&head));
        for row in rows {
            println!("{}", line(row.clone()));
        }
    }
}
