//! Splits the SQL text given to apply-schema into statements at top-level
//! semicolons, so each can be sent to the shard primaries on its own (the
//! agents run one statement per request). Semicolons inside quotes,
//! backquoted names and comments do not split.

/// Statements of `sql` in order, trimmed, empty ones dropped. Fails on an
/// unterminated quote or comment, naming it.
pub fn split_statements(sql: &str) -> Result<Vec<String>, String> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i = skip_quoted(bytes, i, quote).ok_or_else(|| {
                    let what = if quote == b'`' {
                        "backquoted name"
                    } else {
                        "string"
                    };
                    format!(
                        "unterminated {what} starting at byte {i}: {}",
                        excerpt(&sql[i..])
                    )
                })?;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-')
                && bytes.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = skip_line(bytes, i);
            }
            b'#' => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map(|end| i + 2 + end + 2)
                    .ok_or_else(|| {
                        format!(
                            "unterminated /* comment starting at byte {i}: {}",
                            excerpt(&sql[i..])
                        )
                    })?;
            }
            b';' => {
                push_statement(&mut statements, &sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push_statement(&mut statements, &sql[start..]);
    Ok(statements)
}

fn push_statement(out: &mut Vec<String>, text: &str) {
    let text = text.trim();
    if !text.is_empty() && !is_only_comments(text) {
        out.push(text.to_string());
    }
}

/// Whether `text` holds nothing but comments and whitespace (e.g. a trailing
/// comment after the last semicolon), which mysqld would reject as empty.
fn is_only_comments(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
        } else if bytes[i] == b'#' || (bytes[i] == b'-' && bytes.get(i + 1) == Some(&b'-')) {
            i = skip_line(bytes, i);
        } else if bytes[i] == b'/'
            && bytes.get(i + 1) == Some(&b'*')
            && bytes.get(i + 2) != Some(&b'!')
        {
            match text[i + 2..].find("*/") {
                Some(end) => i += 2 + end + 2,
                None => return false,
            }
        } else {
            return false;
        }
    }
    true
}

/// Index just past the closing quote; a doubled quote or a backslash (in
/// strings) escapes.
fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' && quote != b'`' {
            i += 2;
        } else if c == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return Some(i + 1);
            }
        } else {
            i += 1;
        }
    }
    None
}

fn skip_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(bytes.len(), |p| from + p + 1)
}

fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons() {
        let sql = "create table a (id int);\n\
                   insert into a values (1) ; -- done; really\n\
                   insert into b values ('x;y', \"it''s;\", 'a\\';b');\n\
                   create table `we;ird` (c int) /* a; b */;\n\
                   # trailing; comment\n";
        assert_eq!(
            split_statements(sql).unwrap(),
            vec![
                "create table a (id int)",
                "insert into a values (1)",
                "-- done; really\ninsert into b values ('x;y', \"it''s;\", 'a\\';b')",
                "create table `we;ird` (c int) /* a; b */",
            ]
        );
    }

    #[test]
    fn empty_and_comment_only_give_nothing() {
        assert!(split_statements("  ;; \n").unwrap().is_empty());
        assert!(
            split_statements("-- nothing\n/* here */")
                .unwrap()
                .is_empty()
        );
        assert_eq!(split_statements("select 1").unwrap(), vec!["select 1"]);
        assert_eq!(
            split_statements("/*!40101 SET x=1 */").unwrap(),
            vec!["/*!40101 SET x=1 */"]
        );
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert!(
            split_statements("select 'abc")
                .unwrap_err()
                .contains("unterminated string")
        );
        assert!(
            split_statements("select `abc")
                .unwrap_err()
                .contains("backquoted")
        );
        assert!(
            split_statements("select 1 /* x")
                .unwrap_err()
                .contains("/* comment")
        );
    }
}
