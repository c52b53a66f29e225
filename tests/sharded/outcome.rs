//! What one statement returned (columns and rows as text, rows affected, or an
//! error), how two of them compare, and a client that runs statements on one
//! persistent connection, reconnecting after a broken one.

use std::fmt::Write as _;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Row, Value};

/// A value as the text protocol carries it; `None` is SQL NULL (distinct
/// from the string 'NULL').
pub type Cell = Option<Vec<u8>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
    /// A statement without a result set (DML, SET, ...).
    Affected(u64),
    /// `code` 0: no server error but a broken connection, a timeout, ...
    Error { code: u16, message: String },
}

impl Outcome {
    pub fn error_code(&self) -> Option<u16> {
        match self {
            Outcome::Error { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// First `max_rows` rows, one per line, tab-separated, NULL as `NULL` and
    /// the string 'NULL' quoted so the two can be told apart.
    pub fn render(&self, max_rows: usize) -> String {
        match self {
            Outcome::Rows { columns, rows } => {
                let mut out = format!("  columns: {}\n", columns.join(" | "));
                for row in rows.iter().take(max_rows) {
                    let cells: Vec<String> = row.iter().map(render_cell).collect();
                    let _ = writeln!(out, "  {}", cells.join("\t"));
                }
                if rows.len() > max_rows {
                    let _ = writeln!(out, "  ... {} rows in all", rows.len());
                } else {
                    let _ = writeln!(out, "  ({} rows)", rows.len());
                }
                out
            }
            Outcome::Affected(n) => format!("  OK, {n} rows affected\n"),
            Outcome::Error { code, message } => format!("  ERROR {code}: {message}\n"),
        }
    }
}

fn render_cell(cell: &Cell) -> String {
    match cell {
        None => "NULL".to_string(),
        Some(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            if text == "NULL" {
                "'NULL'".to_string()
            } else {
                text.into_owned()
            }
        }
    }
}

/// Rows of `want` missing from `got`, and rows of `got` not in `want`,
/// counting duplicates.
pub fn multiset_delta(want: &[Vec<Cell>], got: &[Vec<Cell>]) -> (Vec<Vec<Cell>>, Vec<Vec<Cell>>) {
    let mut want = want.to_vec();
    let mut got = got.to_vec();
    want.sort();
    got.sort();
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                missing.push(a.clone());
                i += 1;
            }
            (Some(_), Some(b)) => {
                extra.push(b.clone());
                j += 1;
            }
            (Some(a), None) => {
                missing.push(a.clone());
                i += 1;
            }
            (None, Some(b)) => {
                extra.push(b.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    (missing, extra)
}

/// Up to `max` rows inline: ` [a, b] [c, d] (+3 more)`, or ` none`.
pub fn render_rows(rows: &[Vec<Cell>], max: usize) -> String {
    if rows.is_empty() {
        return " none".to_string();
    }
    let mut out = String::new();
    for row in rows.iter().take(max) {
        let cells: Vec<String> = row.iter().map(render_cell).collect();
        let _ = write!(out, " [{}]", cells.join(", "));
    }
    if rows.len() > max {
        let _ = write!(out, " (+{} more)", rows.len() - max);
    }
    out
}

/// Why `got` differs from `expected`, or None when they are equal: the same
/// column count and names, and the same rows (in order when `ordered`, as
/// multisets otherwise); or the same error code; or the same rows affected.
pub fn difference(expected: &Outcome, got: &Outcome, ordered: bool) -> Option<String> {
    match (expected, got) {
        (
            Outcome::Rows {
                columns: want_cols,
                rows: want_rows,
            },
            Outcome::Rows {
                columns: got_cols,
                rows: got_rows,
            },
        ) => {
            if want_cols.len() != got_cols.len() {
                return Some(format!(
                    "column count {} expected, got {}",
                    want_cols.len(),
                    got_cols.len()
                ));
            }
            if want_cols != got_cols {
                return Some("column names differ".to_string());
            }
            if want_rows.len() != got_rows.len() {
                return Some(format!(
                    "{} rows expected, got {}",
                    want_rows.len(),
                    got_rows.len()
                ));
            }
            if ordered {
                let first = want_rows.iter().zip(got_rows).position(|(a, b)| a != b)?;
                return Some(format!("rows differ from row {} on (in order)", first + 1));
            }
            let (missing, extra) = multiset_delta(want_rows, got_rows);
            if missing.is_empty() && extra.is_empty() {
                return None;
            }
            Some(format!(
                "rows differ (as multisets); only in the reference:{}; only from the gate:{}",
                render_rows(&missing, 5),
                render_rows(&extra, 5)
            ))
        }
        (Outcome::Error { code: a, .. }, Outcome::Error { code: b, .. }) => {
            (a != b).then(|| format!("error {a} expected, got error {b}"))
        }
        (Outcome::Affected(a), Outcome::Affected(b)) => {
            (a != b).then(|| format!("{a} rows affected expected, got {b}"))
        }
        _ => Some("different kinds of result".to_string()),
    }
}

/// One connection to one server, used for every statement in turn.
pub struct Client {
    pub label: String,
    opts: Opts,
    conn: Option<Conn>,
    timeout: Duration,
}

impl Client {
    pub async fn connect(label: &str, opts: impl Into<Opts>) -> Result<Client, String> {
        let mut client = Client {
            label: label.to_string(),
            opts: opts.into(),
            conn: None,
            timeout: Duration::from_secs(60),
        };
        client.ensure_connected().await?;
        Ok(client)
    }

    async fn ensure_connected(&mut self) -> Result<&mut Conn, String> {
        if self.conn.is_none() {
            let conn = tokio::time::timeout(self.timeout, Conn::new(self.opts.clone()))
                .await
                .map_err(|_| format!("{}: connecting timed out", self.label))?
                .map_err(|e| format!("{}: cannot connect: {e}", self.label))?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// Runs `sql` (text protocol). A broken connection or a timeout is an
    /// `Error` with code 0, and the next statement gets a fresh connection.
    pub async fn run(&mut self, sql: &str) -> Outcome {
        let timeout = self.timeout;
        let conn = match self.ensure_connected().await {
            Ok(conn) => conn,
            Err(message) => return Outcome::Error { code: 0, message },
        };
        match tokio::time::timeout(timeout, run_on(conn, sql)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(mysql_async::Error::Server(e))) => Outcome::Error {
                code: e.code,
                message: e.message,
            },
            Ok(Err(other)) => {
                self.conn = None;
                Outcome::Error {
                    code: 0,
                    message: format!("client error: {other}"),
                }
            }
            Err(_) => {
                self.conn = None;
                Outcome::Error {
                    code: 0,
                    message: format!("no answer within {timeout:?}"),
                }
            }
        }
    }

    /// Runs `sql` and returns its rows, or a message naming the statement.
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Cell>>, String> {
        match self.run(sql).await {
            Outcome::Rows { rows, .. } => Ok(rows),
            other => Err(format!(
                "{}: {sql}\n{}",
                self.label,
                other.render(5).trim_end()
            )),
        }
    }

    /// Runs `sql` and fails unless it succeeded without a result set.
    pub async fn exec(&mut self, sql: &str) -> Result<u64, String> {
        match self.run(sql).await {
            Outcome::Affected(n) => Ok(n),
            other => Err(format!(
                "{}: {sql}\n{}",
                self.label,
                other.render(5).trim_end()
            )),
        }
    }

    pub async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
    }
}

async fn run_on(conn: &mut Conn, sql: &str) -> Result<Outcome, mysql_async::Error> {
    let mut result = conn.query_iter(sql).await?;
    let columns = result.columns();
    match columns {
        Some(columns) if !columns.is_empty() => {
            let names = columns.iter().map(|c| c.name_str().into_owned()).collect();
            let rows: Vec<Row> = result.collect().await?;
            result.drop_result().await?;
            let rows = rows
                .into_iter()
                .map(|row| row.unwrap().into_iter().map(cell).collect())
                .collect();
            Ok(Outcome::Rows {
                columns: names,
                rows,
            })
        }
        _ => {
            let affected = result.affected_rows();
            result.drop_result().await?;
            Ok(Outcome::Affected(affected))
        }
    }
}

/// The text protocol gives every non-NULL value as bytes; the other variants
/// are formatted the way the server would send them, should a driver version
/// ever parse them.
fn cell(value: Value) -> Cell {
    match value {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(bytes),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::UInt(u) => Some(u.to_string().into_bytes()),
        Value::Float(f) => Some(f.to_string().into_bytes()),
        Value::Double(d) => Some(d.to_string().into_bytes()),
        other => Some(other.as_sql(true).trim_matches('\'').as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(columns: &[&str], rows: &[&[Option<&str>]]) -> Outcome {
        Outcome::Rows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.map(|s| s.as_bytes().to_vec())).collect())
                .collect(),
        }
    }

    #[test]
    fn multiset_and_ordered_comparison() {
        let a = rows(&["id"], &[&[Some("1")], &[Some("2")], &[None]]);
        let b = rows(&["id"], &[&[None], &[Some("2")], &[Some("1")]]);
        assert_eq!(difference(&a, &b, false), None);
        assert!(difference(&a, &b, true).unwrap().contains("row 1"));
        let c = rows(&["id"], &[&[Some("1")], &[Some("1")], &[None]]);
        let why = difference(&a, &c, false).unwrap();
        assert!(
            why.contains("only in the reference: [2]; only from the gate: [1]"),
            "{why}"
        );
        assert_eq!(difference(&a, &a, true), None);
    }

    #[test]
    fn null_is_not_the_string_null_and_names_count() {
        let a = rows(&["x"], &[&[None]]);
        let b = rows(&["x"], &[&[Some("NULL")]]);
        assert!(difference(&a, &b, false).is_some());
        assert!(b.render(5).contains("'NULL'"));
        let c = rows(&["y"], &[&[None]]);
        assert_eq!(difference(&a, &c, false).unwrap(), "column names differ");
        let d = rows(&["x", "y"], &[&[None, None]]);
        assert!(difference(&a, &d, false).unwrap().contains("column count"));
        let dup = rows(&["x"], &[&[None], &[None]]);
        assert!(
            difference(&a, &dup, false)
                .unwrap()
                .contains("rows expected")
        );
    }

    #[test]
    fn errors_and_affected_rows() {
        let e1 = Outcome::Error {
            code: 1235,
            message: "x".into(),
        };
        let e2 = Outcome::Error {
            code: 1146,
            message: "y".into(),
        };
        assert!(difference(&e1, &e2, false).is_some());
        assert_eq!(difference(&e1, &e1.clone(), false), None);
        assert!(difference(&Outcome::Affected(2), &Outcome::Affected(3), false).is_some());
        assert!(difference(&Outcome::Affected(0), &rows(&["a"], &[]), false).is_some());
    }
}
