//! How command results are printed: the [`Render`] trait every result implements, the one
//! function that chooses between its two forms, and the text-table helpers.

use std::fmt::Write as _;

/// A command's result. Without `--json` it prints as text for a person (usually a table); with
/// `--json` as one JSON document for a script. Both forms are part of the CLI's contract, so a
/// result type owns them side by side.
pub trait Render {
    /// The text printed without `--json`, ending in a newline.
    fn human(&self) -> String;
    /// The document printed with `--json`.
    fn json(&self) -> serde_json::Value;
    /// What the operator should look at twice although the command succeeded, each printed on
    /// stderr as a `warning:` line whatever the output form.
    fn warnings(&self) -> &[String] {
        &[]
    }
}

/// A result with warnings: printed as `result` is, and with `--json` its document (an object)
/// also carries them as `"warnings": [...]`, empty when there are none.
pub struct Warned<T> {
    pub result: T,
    pub warnings: Vec<String>,
}

impl<T: Render> Render for Warned<T> {
    fn human(&self) -> String {
        self.result.human()
    }

    fn json(&self) -> serde_json::Value {
        let mut doc = self.result.json();
        if let Some(object) = doc.as_object_mut() {
            object.insert("warnings".to_owned(), serde_json::json!(self.warnings));
        }
        doc
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// What to print for `result`: the one place where `--json` is decided.
pub fn output(result: &dyn Render, json: bool) -> String {
    if json {
        format!("{}\n", result.json())
    } else {
        result.human()
    }
}

/// A Unix timestamp as `YYYY-MM-DD HH:MM:SS` (UTC), or nothing for a moment that has not come.
pub fn time(unix: Option<i64>) -> String {
    unix.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A plain left-aligned text table, or the headers and `(none)` when there are no rows.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &mut headers.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pads_each_column_to_its_widest_cell_and_trims_line_ends() {
        let rows = vec![
            vec!["a".to_owned(), "long cell".to_owned(), String::new()],
            vec!["wider".to_owned(), "x".to_owned(), String::new()],
        ];
        assert_eq!(
            table(&["ID", "NAME", "NOTE"], &rows),
            "ID     NAME       NOTE\na      long cell\nwider  x\n"
        );
        assert_eq!(table(&["ID"], &[]), "ID\n(none)\n");
    }

    #[test]
    fn times_are_utc_and_absent_ones_are_blank() {
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(time(None), "");
    }
}
