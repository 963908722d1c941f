//! natscli's "columns" report: a heading, then `Label: value` rows whose colons line up across the whole
//! report, in sections with titles, some indented.
//!
//! ```text
//! Service Information
//!
//!             Service: calc (ID1)
//!         Description: arithmetic
//!
//! Endpoints:
//!
//!                Name: sum
//!             Subject: math.sum
//! ```
//!
//! The spacing rules are natscli's: a section title gets a blank line before it (unless it follows another
//! title or a blank line) and one after it; a blank line right after a title is not doubled; a row with an
//! empty label continues the value above it.

use std::fmt::Write as _;

enum Item {
    Row { label: String, value: String },
    Title(String),
    Indent(usize),
    Line(String),
}

/// A report being put together; [`Columns::render`] lays it out.
pub(crate) struct Columns {
    heading: String,
    items: Vec<Item>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Row,
    Title,
    Line { empty: bool },
}

impl Columns {
    /// A report under `heading`.
    pub(crate) fn new(heading: impl Into<String>) -> Self {
        Self { heading: heading.into(), items: vec![] }
    }

    /// A `label: value` row.
    pub(crate) fn row(&mut self, label: &str, value: impl Into<String>) {
        self.items.push(Item::Row { label: label.trim_end_matches(':').to_owned(), value: value.into() });
    }

    /// A row only when `value` is not empty.
    pub(crate) fn row_if_not_empty(&mut self, label: &str, value: &str) {
        if !value.is_empty() {
            self.row(label, value);
        }
    }

    /// Rows of `key: value` under one label, keys sorted, the later ones continuing the first.
    pub(crate) fn map_rows<'a>(&mut self, label: &str, pairs: impl IntoIterator<Item = (&'a String, &'a String)>) {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        pairs.sort();
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            self.row(if i == 0 { label } else { "" }, format!("{k}: {v}"));
        }
    }

    /// A section title; a colon is added unless it ends with one.
    pub(crate) fn title(&mut self, title: impl Into<String>) {
        self.items.push(Item::Title(title.into()));
    }

    /// Indents what follows by `width` spaces (0: no indent).
    pub(crate) fn indent(&mut self, width: usize) {
        self.items.push(Item::Indent(width));
    }

    /// A line of its own, outside the columns (an empty one is a blank line).
    pub(crate) fn line(&mut self, text: impl Into<String>) {
        self.items.push(Item::Line(text.into()));
    }

    /// The report as text, every line ending in a newline, no trailing spaces.
    pub(crate) fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let longest = self.items.iter().map(|i| if let Item::Row { label, .. } = i { width(label) } else { 0 }).max();
        let longest = longest.unwrap_or(0);
        let mut out = String::new();
        let mut push = |line: String| {
            let _ = writeln!(out, "{}", line.trim_end());
        };
        if !self.heading.is_empty() {
            push(self.heading.clone());
            push(String::new());
        }
        let (mut indent, mut last) = (String::new(), Last::Nothing);
        for item in &self.items {
            match item {
                Item::Indent(n) => indent = " ".repeat(*n),
                Item::Title(title) => {
                    let after_content = matches!(last, Last::Row | Last::Line { empty: false });
                    if after_content {
                        push(String::new());
                    }
                    let colon = if title.ends_with(':') { "" } else { ":" };
                    push(format!("{indent}{title}{colon}"));
                    push(String::new());
                    last = Last::Title;
                }
                Item::Row { label, value } => {
                    let pad = " ".repeat(longest - width(label) + 2);
                    if label.is_empty() {
                        push(format!("{indent}{pad}  {value}"));
                    } else {
                        push(format!("{indent}{pad}{label}: {value}"));
                    }
                    last = Last::Row;
                }
                Item::Line(text) => {
                    if text.is_empty() && last == Last::Title {
                        continue;
                    }
                    push(format!("{indent}{text}"));
                    last = Last::Line { empty: text.is_empty() };
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn colons_line_up_and_sections_are_spaced() {
        let mut c = Columns::new("Service Information");
        c.row("Service", "calc (ID1)");
        let metadata = BTreeMap::from([("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())]);
        c.map_rows("Metadata", &metadata);
        c.title("Endpoints:");
        c.indent(2);
        c.line("");
        c.row("Name", "sum");
        c.line("");
        c.row("Name", "avg");
        c.indent(0);
        c.title("Statistics for 2 Endpoint(s)");
        c.indent(2);
        c.title("sum Endpoint Statistics");
        c.row("Processing Time", "1ms (average 10µs)");
        c.row_if_not_empty("Last Error", "");
        c.title("avg Endpoint Statistics");
        c.row("Started:", "x");
        let expected = "\
Service Information

          Service: calc (ID1)
         Metadata: a: 1
                   b: 2

Endpoints:

               Name: sum

               Name: avg

Statistics for 2 Endpoint(s):

  sum Endpoint Statistics:

    Processing Time: 1ms (average 10µs)

  avg Endpoint Statistics:

            Started: x
";
        assert_eq!(c.render(), expected);
    }
}
