//! The `--match FILE` mapping: a CSV of `target_initializer,source_initializer` rows read
//! with the `csv` crate. Names may be quoted (and then hold commas or quotes); fields are
//! trimmed; blank lines and lines starting with `#` are skipped; a first line that reads
//! exactly `target_initializer,source_initializer` is a header. Malformed rows are user
//! errors naming their line.

use std::path::Path;

use anyhow::Result;

use crate::error::bad_file;

/// The header a mapping file may start with.
pub const HEADER: [&str; 2] = ["target_initializer", "source_initializer"];

/// One mapping row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    /// 1-based line of the file the row starts on.
    pub line: u64,
    /// Target initializer name.
    pub target: String,
    /// Source initializer name.
    pub source: String,
}

/// Parse a mapping file's text; `path` names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<MappingRow>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line =
                e.position().map(|p| format!("line {}: ", record_line(text, p.byte() as usize))).unwrap_or_default();
            bad_file(path, format!("{line}not a readable CSV row ({e})"))
        })?;
        let line = record.position().map_or(0, |p| record_line(text, p.byte() as usize));
        if record.iter().all(str::is_empty) {
            continue;
        }
        if line == 1 && record.iter().eq(HEADER) {
            continue;
        }
        let expected = "expected 'target_initializer,source_initializer' (quote a name that holds a comma)";
        if record.len() != 2 {
            return Err(bad_file(path, format!("line {line}: {} fields, {expected}", record.len())));
        }
        let (target, source) = (&record[0], &record[1]);
        for (side, name) in [("target", target), ("source", source)] {
            if name.is_empty() {
                return Err(bad_file(path, format!("line {line}: the {side} name is empty; {expected}")));
            }
        }
        out.push(MappingRow { line, target: target.to_string(), source: source.to_string() });
    }
    Ok(out)
}

/// The 1-based line a record starts on, from the byte where the reader began looking for
/// it: the reader's own line count misses `\r\n` and the lines it skips, so skip what it
/// skips (line breaks, `#` comment lines) and count line breaks (`\n`, `\r\n`, `\r`).
fn record_line(text: &str, from: usize) -> u64 {
    let bytes = text.as_bytes();
    let mut pos = from.min(bytes.len());
    while pos < bytes.len() {
        match bytes[pos] {
            b'\r' | b'\n' => pos += 1,
            b'#' => pos = bytes[pos..].iter().position(|&b| b == b'\n' || b == b'\r').map_or(bytes.len(), |i| pos + i),
            _ => break,
        }
    }
    let head = &bytes[..pos];
    let breaks =
        head.iter().enumerate().filter(|&(i, &b)| b == b'\n' || (b == b'\r' && head.get(i + 1) != Some(&b'\n')));
    1 + breaks.count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<(u64, String, String)> {
        parse(text, Path::new("map.csv")).unwrap().into_iter().map(|r| (r.line, r.target, r.source)).collect()
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text, Path::new("map.csv")).unwrap_err())
    }

    fn row(line: u64, t: &str, s: &str) -> (u64, String, String) {
        (line, t.to_string(), s.to_string())
    }

    #[test]
    fn header_or_none() {
        let with = "target_initializer,source_initializer\na.w,b.w\n";
        assert_eq!(rows(with), vec![row(2, "a.w", "b.w")]);
        assert_eq!(rows("a.w,b.w\r\nc.w , d.w\n"), vec![row(1, "a.w", "b.w"), row(2, "c.w", "d.w")]);
        // The header is a header on the first line only.
        let later = "a.w,b.w\ntarget_initializer,source_initializer\n";
        assert_eq!(rows(later)[1], row(2, "target_initializer", "source_initializer"));
    }

    #[test]
    fn quoted_names_with_commas_and_quotes() {
        let text = "\"enc,1.weight\",\"src \"\"x\"\", 1\"\n";
        assert_eq!(rows(text), vec![row(1, "enc,1.weight", "src \"x\", 1")]);
        // A quoted line break: the next row starts on line 3.
        assert_eq!(rows("\"two\nlines\",x\ny,z\n"), vec![row(1, "two\nlines", "x"), row(3, "y", "z")]);
    }

    #[test]
    fn comments_and_blank_lines_keep_line_numbers() {
        let text = "# mapping\n\na.w,b.w\n   \nc.w,d.w\n";
        assert_eq!(rows(text), vec![row(3, "a.w", "b.w"), row(5, "c.w", "d.w")]);
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let e = error("a.w,b.w\na.b,c.d,e.f\n");
        assert!(e.contains("map.csv") && e.contains("line 2: 3 fields"), "{e}");
        let e = error("a.w,b.w\n\nlonely\n");
        assert!(e.contains("line 3: 1 fields"), "{e}");
        let e = error("a.w,b.w\n\"\",b.w\n");
        assert!(e.contains("line 2: the target name is empty"), "{e}");
        let e = error("a.w, \n");
        assert!(e.contains("line 1: the source name is empty"), "{e}");
        // An unterminated quote runs to the end: a row of one field on line 1.
        let e = error("\"a.w,b.w\n");
        assert!(e.contains("line 1: 1 fields"), "{e}");
    }
}
