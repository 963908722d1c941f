//! Tables: natscli's rounded boxes with a centred title and a footer row (the service commands), and the
//! plain space-padded table the JetStream commands print.
//!
//! ```text
//! ╭──────────────────────────────────╮
//! │      demo Service Statistics     │
//! ├────────┬──────────┬──────────────┤
//! │ ID     │ Endpoint │ Requests     │
//! ├────────┼──────────┼──────────────┤
//! │ ABC    │ echo     │ 50           │
//! │        │ flaky    │ 50           │
//! ├────────┼──────────┼──────────────┤
//! │        │          │ 100          │
//! ╰────────┴──────────┴──────────────╯
//! ```

use tabled::builder::Builder;
use tabled::settings::object::Rows;
use tabled::settings::style::HorizontalLine;
use tabled::settings::themes::BorderCorrection;
use tabled::settings::{Alignment, Panel, Style};

/// A table with a title, a header row, body rows and an optional footer row, drawn with rounded corners.
pub(crate) struct Boxed {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    footer: Option<Vec<String>>,
}

impl Boxed {
    /// An empty table under `title`, with these column names.
    pub(crate) fn new(title: impl Into<String>, header: &[&str]) -> Self {
        let header = header.iter().map(|h| (*h).to_owned()).collect();
        Self { title: title.into(), header, rows: vec![], footer: None }
    }

    /// Adds a body row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Sets the footer row, drawn below a line of its own.
    pub(crate) fn footer(&mut self, cells: Vec<String>) {
        self.footer = Some(cells);
    }

    /// The table as lines of text, without a trailing newline.
    pub(crate) fn render(&self) -> String {
        let mut builder = Builder::default();
        builder.push_record(self.header.iter().cloned());
        for row in &self.rows {
            builder.push_record(row.iter().cloned());
        }
        if let Some(footer) = &self.footer {
            builder.push_record(footer.iter().cloned());
        }
        let mut table = builder.build();
        table.with(Panel::header(self.title.as_str()));
        // Lines under the title, under the column names, and above the footer (rows counted with the title).
        let line = HorizontalLine::full('─', '┼', '├', '┤');
        let style = Style::rounded().remove_horizontals();
        match self.footer {
            Some(_) => table.with(style.horizontals([(1, line), (2, line), (table.count_rows() - 1, line)])),
            None => table.with(style.horizontals([(1, line), (2, line)])),
        };
        // Where the title's spanned cell meets the columns below it, a ┬ rather than a ┼.
        table.with(BorderCorrection::span());
        table.modify(Rows::first(), Alignment::center());
        table.to_string()
    }
}

/// The plain table: columns padded with spaces, a line of dashes under the names, trailing spaces trimmed.
pub(crate) fn print_plain(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_columns_and_footer_in_rounded_boxes() {
        let mut t = Boxed::new("demo Service Statistics", &["ID", "Endpoint", "Requests"]);
        t.row(vec!["ABC".into(), "echo".into(), "50".into()]);
        t.row(vec!["".into(), "flaky".into(), "50".into()]);
        t.footer(vec!["".into(), "".into(), "100".into()]);
        let expected = "\
╭───────────────────────────╮
│  demo Service Statistics  │
├─────┬──────────┬──────────┤
│ ID  │ Endpoint │ Requests │
├─────┼──────────┼──────────┤
│ ABC │ echo     │ 50       │
│     │ flaky    │ 50       │
├─────┼──────────┼──────────┤
│     │          │ 100      │
╰─────┴──────────┴──────────╯";
        assert_eq!(t.render(), expected);
    }

    #[test]
    fn no_footer_no_footer_line() {
        let mut t = Boxed::new("All Services", &["Name", "ID"]);
        t.row(vec!["calc".into(), "X1".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        assert_eq!(lines[0].chars().next(), Some('╭'));
        assert_eq!(lines[1].trim_matches(|c| c == '│' || c == ' '), "All Services");
        // The title is wider than the columns: they share the extra width.
        assert_eq!(lines[5], "│ calc   │ X1  │");
        assert!(lines[6].starts_with('╰') && lines[6].contains('┴'), "{text}");
    }
}
