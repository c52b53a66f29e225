//! Reads the hand-written differential cases from `tests/sharded/corpus/*.sql`:
//! one SQL statement per case, cases separated by blank lines, directives in
//! comment lines right above a case.
//!
//! Directives (a whole comment line each):
//! - `-- ordered`: compare rows in order (only when ORDER BY fixes the order
//!   completely); without it results compare as multisets.
//! - `-- error N`: on a sharded keyspace the gate must refuse the statement with
//!   MySQL error N; the reference is not consulted and the case is skipped on an
//!   unsharded target (which would simply run it).
//!
//! Any other comment line is free text. A case may span several lines; a
//! trailing `;` is dropped.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// File name (not the whole path), for failure reports.
    pub file: String,
    /// 1-based line of the case's first SQL line.
    pub line: usize,
    pub sql: String,
    pub ordered: bool,
    pub expect_error: Option<u16>,
}

impl Case {
    pub fn location(&self) -> String {
        format!("tests/sharded/corpus/{}:{}", self.file, self.line)
    }

    /// True for statements that change rows: they are applied, not compared
    /// as result sets.
    pub fn is_dml(&self) -> bool {
        is_dml(&self.sql)
    }
}

pub fn is_dml(sql: &str) -> bool {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(first.as_str(), "INSERT" | "UPDATE" | "DELETE" | "REPLACE")
}

#[derive(Default)]
struct Pending {
    ordered: bool,
    expect_error: Option<u16>,
    directive_line: Option<usize>,
}

/// Parses one corpus file; errors name the file and line.
pub fn parse(file: &str, text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut pending = Pending::default();
    let mut sql_lines: Vec<&str> = Vec::new();
    let mut sql_start = 0;

    let finish = |sql_lines: &mut Vec<&str>,
                  sql_start: usize,
                  pending: &mut Pending,
                  cases: &mut Vec<Case>| {
        if sql_lines.is_empty() {
            return;
        }
        let joined = sql_lines.join("\n");
        let sql = joined.trim().trim_end_matches(';').trim_end().to_string();
        cases.push(Case {
            file: file.to_string(),
            line: sql_start,
            sql,
            ordered: pending.ordered,
            expect_error: pending.expect_error,
        });
        sql_lines.clear();
        *pending = Pending::default();
    };

    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() {
            finish(&mut sql_lines, sql_start, &mut pending, &mut cases);
            if let Some(at) = pending.directive_line {
                return Err(format!(
                    "{file}:{at}: directive is not followed by a case (a blank line came first)"
                ));
            }
            continue;
        }
        if let Some(comment) = line.strip_prefix("--") {
            finish(&mut sql_lines, sql_start, &mut pending, &mut cases);
            let comment = comment.trim();
            if comment == "ordered" {
                pending.ordered = true;
                pending.directive_line = Some(line_no);
            } else if let Some(code) = comment.strip_prefix("error ") {
                let code: u16 = code.trim().parse().map_err(|_| {
                    format!("{file}:{line_no}: `-- error` needs a MySQL error number, got {code:?}")
                })?;
                pending.expect_error = Some(code);
                pending.directive_line = Some(line_no);
            } else if comment == "error" {
                return Err(format!(
                    "{file}:{line_no}: `-- error` needs a MySQL error number"
                ));
            }
            continue;
        }
        if sql_lines.is_empty() {
            sql_start = line_no;
        }
        sql_lines.push(raw);
    }
    finish(&mut sql_lines, sql_start, &mut pending, &mut cases);
    if let Some(at) = pending.directive_line {
        return Err(format!(
            "{file}:{at}: directive at the end of the file has no case"
        ));
    }
    if let Some(bad) = cases.iter().find(|c| c.sql.contains(";\n")) {
        return Err(format!(
            "{}: a case holds one statement; separate cases with a blank line",
            bad.location()
        ));
    }
    Ok(cases)
}

/// Every `*.sql` file of `dir`, sorted by name, parsed.
pub fn load_dir(dir: &Path) -> Result<Vec<(String, Vec<Case>)>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    let mut files = Vec::new();
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name))
            .map_err(|e| format!("cannot read {name}: {e}"))?;
        files.push((name.clone(), parse(&name, &text)?));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_directives_and_lines() {
        let text = "-- free text\nSELECT 1;\n\n-- ordered\nSELECT id\nFROM t\nORDER BY id\n\n-- why\n-- error 1235\nUPDATE t SET id = 2\n";
        let cases = parse("a.sql", text).unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].sql, "SELECT 1");
        assert_eq!(cases[0].line, 2);
        assert!(!cases[0].ordered && cases[0].expect_error.is_none());
        assert_eq!(cases[1].sql, "SELECT id\nFROM t\nORDER BY id");
        assert_eq!(cases[1].line, 5);
        assert!(cases[1].ordered);
        assert_eq!(cases[2].expect_error, Some(1235));
        assert!(cases[2].is_dml());
        assert!(!cases[1].is_dml());
        assert_eq!(cases[2].location(), "tests/sharded/corpus/a.sql:11");
    }

    #[test]
    fn bad_directives_are_errors() {
        assert!(
            parse("b.sql", "-- error x\nSELECT 1\n")
                .unwrap_err()
                .contains("b.sql:1")
        );
        assert!(
            parse("b.sql", "-- ordered\n\nSELECT 1\n")
                .unwrap_err()
                .contains("not followed")
        );
        assert!(
            parse("b.sql", "SELECT 1\n-- ordered\n")
                .unwrap_err()
                .contains("end of the file")
        );
        assert!(
            parse("b.sql", "SELECT 1;\nSELECT 2\n")
                .unwrap_err()
                .contains("one statement")
        );
    }

    #[test]
    fn the_shipped_corpus_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sharded/corpus");
        let files = load_dir(&dir).unwrap();
        assert!(files.iter().map(|(_, c)| c.len()).sum::<usize>() > 50);
        assert!(files.iter().any(|(name, _)| name.starts_with("dml")));
    }
}
