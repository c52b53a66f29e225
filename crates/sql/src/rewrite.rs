//! Text rewrites that keep a statement's meaning when it runs on a pooled
//! connection other than the one that produced the session's state.

use std::fmt::Write;

use crate::keyword::{Keyword, keyword};
use crate::lexer::{Lexer, Token, TokenKind};

/// Replaces every read of the session's last insert id outside strings and
/// comments with the decimal `value`: `LAST_INSERT_ID()` (any case, spaces
/// or comments allowed before and inside the parentheses), `@@identity` and
/// `@@last_insert_id` (not when assigned). `LAST_INSERT_ID(expr)` is left
/// alone. Where the read is a whole select-list item without an alias, the
/// original text is kept as its alias so the result column name does not
/// change. Returns `None` when there is nothing to replace.
pub fn rewrite_last_insert_id(sql: &str, value: u64) -> Option<String> {
    let mut rewriter = Rewriter {
        sql,
        value,
        out: None,
        copied: 0,
    };
    let mut select_lists = SelectLists::default();
    let mut state = Candidate::None;
    let mut previous: Option<Token> = None;
    for token in Lexer::new(sql) {
        state = match state {
            Candidate::None => Candidate::None,
            Candidate::Name(found) if token.is_punct(b'(') => Candidate::Open(found),
            Candidate::Name(_) => Candidate::None,
            Candidate::Open(found) if token.is_punct(b')') => Candidate::Complete(Found {
                end: token.end,
                ..found
            }),
            Candidate::Open(_) => Candidate::None,
            Candidate::Complete(found) => {
                rewriter.replace(found, Some(token));
                Candidate::None
            }
            Candidate::Variable(found) => {
                if !is_assignment(sql, token) {
                    rewriter.replace(found, Some(token));
                }
                Candidate::None
            }
        };
        if matches!(state, Candidate::None) {
            let after_dot = previous.is_some_and(|p| p.is_punct(b'.'));
            let found = Found {
                start: token.start,
                end: token.end,
                aliasable: select_lists.at_item_start(sql, previous),
            };
            state = match token.kind {
                TokenKind::Word
                    if !after_dot
                        && keyword(token.text(sql).as_bytes()) == Some(Keyword::LastInsertId) =>
                {
                    Candidate::Name(found)
                }
                TokenKind::SystemVar if is_last_insert_id_variable(token.text(sql)) => {
                    Candidate::Variable(found)
                }
                _ => Candidate::None,
            };
        }
        select_lists.feed(sql, token, previous);
        previous = Some(token);
    }
    if let Candidate::Complete(found) | Candidate::Variable(found) = state {
        rewriter.replace(found, None);
    }
    let Rewriter { out, copied, .. } = rewriter;
    out.map(|mut out| {
        out.push_str(&sql[copied..]);
        out
    })
}

/// `@@identity`, `@@last_insert_id`, with or without a `session.` scope.
pub(crate) fn is_last_insert_id_variable(text: &str) -> bool {
    let Some(name) = text.strip_prefix("@@") else {
        return false;
    };
    let name = name.rsplit('.').next().unwrap_or(name);
    let name = name.trim_matches('`');
    name.eq_ignore_ascii_case("identity") || name.eq_ignore_ascii_case("last_insert_id")
}

/// `=` or `:=` after a variable makes it an assignment target.
fn is_assignment(sql: &str, token: Token) -> bool {
    token.is_punct(b'=') || (token.is_punct(b':') && sql.as_bytes().get(token.end) == Some(&b'='))
}

#[derive(Clone, Copy, Debug)]
struct Found {
    start: usize,
    end: usize,
    /// Starts a select-list item, so it may get an alias.
    aliasable: bool,
}

#[derive(Clone, Copy, Debug)]
enum Candidate {
    None,
    /// `LAST_INSERT_ID` seen.
    Name(Found),
    /// `LAST_INSERT_ID (` seen.
    Open(Found),
    /// `LAST_INSERT_ID ( )` seen; the next token decides the alias.
    Complete(Found),
    /// `@@identity` seen; the next token decides whether it is read.
    Variable(Found),
}

struct Rewriter<'a> {
    sql: &'a str,
    value: u64,
    out: Option<String>,
    copied: usize,
}

impl Rewriter<'_> {
    fn replace(&mut self, found: Found, next: Option<Token>) {
        let sql = self.sql;
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(sql.len() + 16));
        out.push_str(&sql[self.copied..found.start]);
        // Writing to a String cannot fail.
        let _ = write!(out, "{}", self.value);
        let original = &sql[found.start..found.end];
        if found.aliasable && ends_select_item(sql, next) && !original.contains('`') {
            out.push_str(" AS `");
            out.push_str(original);
            out.push('`');
        }
        self.copied = found.end;
    }
}

/// Whether `next` ends a select-list item, so the item had no alias.
fn ends_select_item(sql: &str, next: Option<Token>) -> bool {
    use Keyword as K;
    let Some(next) = next else {
        return true;
    };
    match next.kind {
        TokenKind::Punct(b',' | b';' | b')') => true,
        TokenKind::Word => matches!(
            keyword(next.text(sql).as_bytes()),
            Some(
                K::From
                    | K::Into
                    | K::Union
                    | K::Except
                    | K::Intersect
                    | K::Where
                    | K::Group
                    | K::Having
                    | K::Order
                    | K::Limit
                    | K::For
                    | K::Lock
                    | K::Window
            )
        ),
        _ => false,
    }
}

/// Which parenthesis depths are currently inside a select list.
#[derive(Default)]
struct SelectLists {
    depth: u32,
    /// Bit n set: depth n is between `SELECT` and the end of its select list.
    open: u64,
}

impl SelectLists {
    fn feed(&mut self, sql: &str, token: Token, previous: Option<Token>) {
        use Keyword as K;
        match token.kind {
            TokenKind::Punct(b'(') => {
                self.depth += 1;
                self.set(false);
            }
            TokenKind::Punct(b')') => self.depth = self.depth.saturating_sub(1),
            TokenKind::Word if !previous.is_some_and(|p| p.is_punct(b'.')) => {
                match keyword(token.text(sql).as_bytes()) {
                    Some(K::Select) => self.set(true),
                    Some(
                        K::From
                        | K::Into
                        | K::Where
                        | K::Group
                        | K::Having
                        | K::Order
                        | K::Limit
                        | K::Window
                        | K::For
                        | K::Lock
                        | K::Union
                        | K::Except
                        | K::Intersect,
                    ) => self.set(false),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn set(&mut self, open: bool) {
        if self.depth < 64 {
            let bit = 1u64 << self.depth;
            if open {
                self.open |= bit;
            } else {
                self.open &= !bit;
            }
        }
    }

    /// Whether a token right after `previous` begins a select-list item.
    fn at_item_start(&self, sql: &str, previous: Option<Token>) -> bool {
        if self.depth >= 64 || self.open & (1 << self.depth) == 0 {
            return false;
        }
        let Some(previous) = previous else {
            return false;
        };
        match previous.kind {
            TokenKind::Punct(b',') => true,
            TokenKind::Word => {
                let word = previous.text(sql);
                matches!(
                    keyword(word.as_bytes()),
                    Some(Keyword::Select | Keyword::Distinct | Keyword::All)
                ) || starts_with_ignore_case(word, "SQL_")
                    || word.eq_ignore_ascii_case("HIGH_PRIORITY")
                    || word.eq_ignore_ascii_case("STRAIGHT_JOIN")
            }
            _ => false,
        }
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}
