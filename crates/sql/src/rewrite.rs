//! Text rewrites that keep a statement's meaning when it runs on a pooled
//! connection other than the one that produced the session's state.

use std::fmt::Write;

use crate::keyword::{Keyword, keyword};
use crate::lexer::{Lexer, Token, TokenKind};

/// Replaces every read of the session's last insert id outside strings and
/// comments with the decimal `value`: `LAST_INSERT_ID()` (any case, spaces
/// or comments allowed before and inside the parentheses), `@@identity` and
/// `@@last_insert_id` (not when assigned). `LAST_INSERT_ID(expr)` is left
/// alone. A select-list item that changed and surely has no alias gets its
/// original text as alias, so the result column keeps its name. Returns
/// `None` when there is nothing to replace.
pub fn rewrite_last_insert_id(sql: &str, value: u64) -> Option<String> {
    let mut output = Output {
        sql,
        value,
        text: None,
        copied: 0,
    };
    let mut items = SelectItems::default();
    let mut candidate = Candidate::None;
    let mut previous: Option<Token> = None;
    for token in Lexer::new(sql) {
        candidate = match candidate {
            Candidate::None => Candidate::None,
            Candidate::Name(start) if token.is_punct(b'(') => Candidate::Open(start),
            Candidate::Open(start) if token.is_punct(b')') => {
                output.replace(start, token.end);
                items.mark_changed();
                Candidate::None
            }
            Candidate::Variable(start, end) => {
                if !is_assignment(sql, token) {
                    output.replace(start, end);
                    items.mark_changed();
                }
                Candidate::None
            }
            Candidate::Name(_) | Candidate::Open(_) => Candidate::None,
        };
        items.feed(&mut output, token, previous);
        if matches!(candidate, Candidate::None) {
            let after_dot = previous.is_some_and(|p| p.is_punct(b'.'));
            candidate = match token.kind {
                TokenKind::Word
                    if !after_dot
                        && keyword(token.text(sql).as_bytes()) == Some(Keyword::LastInsertId) =>
                {
                    Candidate::Name(token.start)
                }
                TokenKind::SystemVar if is_last_insert_id_variable(token.text(sql)) => {
                    Candidate::Variable(token.start, token.end)
                }
                _ => Candidate::None,
            };
        }
        previous = Some(token);
    }
    if let Candidate::Variable(start, end) = candidate {
        output.replace(start, end);
        items.mark_changed();
    }
    items.end_all(&mut output);
    let Output { text, copied, .. } = output;
    text.map(|mut text| {
        text.push_str(&sql[copied..]);
        text
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
enum Candidate {
    None,
    /// `LAST_INSERT_ID` seen at this offset.
    Name(usize),
    /// `LAST_INSERT_ID (` seen.
    Open(usize),
    /// `@@identity` seen; the next token tells whether it is read or assigned.
    Variable(usize, usize),
}

/// The rewritten text, built lazily on the first change.
struct Output<'a> {
    sql: &'a str,
    value: u64,
    text: Option<String>,
    /// Bytes of `sql` before this offset are already in `text`.
    copied: usize,
}

impl Output<'_> {
    fn text(&mut self) -> &mut String {
        let capacity = self.sql.len() + 32;
        self.text
            .get_or_insert_with(|| String::with_capacity(capacity))
    }

    fn copy_to(&mut self, offset: usize) {
        let sql = self.sql;
        let copied = self.copied;
        self.text().push_str(&sql[copied..offset]);
        self.copied = offset;
    }

    fn replace(&mut self, start: usize, end: usize) {
        self.copy_to(start);
        let value = self.value;
        // Writing to a String cannot fail.
        let _ = write!(self.text(), "{value}");
        self.copied = end;
    }

    /// Appends `` AS `original` `` after the item ending at `end`.
    fn alias(&mut self, start: usize, end: usize) {
        let sql = self.sql;
        self.copy_to(end);
        let text = self.text();
        text.push_str(" AS `");
        for c in sql[start..end].chars() {
            if c == '`' {
                text.push('`');
            }
            text.push(c);
        }
        text.push('`');
    }
}

/// Longest original item text used as an alias; longer items keep the
/// rewritten text as their column name rather than risk the alias limit.
const MAX_ALIAS_LEN: usize = 64;

/// Nesting depths whose select-list items are tracked for aliasing.
const TRACKED_DEPTHS: usize = 8;

/// One select-list item being read.
#[derive(Clone, Copy, Default, Debug)]
struct Item {
    /// The select list at this depth is open (after `SELECT`, before `FROM`, ...).
    in_list: bool,
    /// The current item has begun.
    started: bool,
    start: usize,
    /// End of the item's last token at the item's own depth.
    end: usize,
    /// An `AS` at the item's depth was seen.
    has_as: bool,
    /// The last token at the item's depth could be an implicit alias.
    last_may_alias: bool,
    changed: bool,
}

/// Select-list items open at each parenthesis depth.
#[derive(Default)]
struct SelectItems {
    depth: usize,
    items: [Item; TRACKED_DEPTHS],
}

impl SelectItems {
    fn mark_changed(&mut self) {
        let innermost = self.depth.min(TRACKED_DEPTHS - 1);
        for item in &mut self.items[..=innermost] {
            if item.started {
                item.changed = true;
            }
        }
    }

    fn feed(&mut self, output: &mut Output<'_>, token: Token, previous: Option<Token>) {
        use Keyword as K;
        let sql = output.sql;
        let word = match token.kind {
            TokenKind::Word if !previous.is_some_and(|p| p.is_punct(b'.')) => {
                keyword(token.text(sql).as_bytes())
            }
            _ => None,
        };
        match token.kind {
            TokenKind::Punct(b';') => {
                self.end_all(output);
                return;
            }
            TokenKind::Punct(b',') => {
                self.end_item(output, self.depth);
                return;
            }
            TokenKind::Punct(b')') => {
                self.end_item(output, self.depth);
                self.set_in_list(self.depth, false);
                self.depth = self.depth.saturating_sub(1);
            }
            _ => {}
        }
        match word {
            Some(K::Select) => {
                self.end_item(output, self.depth);
                self.set_in_list(self.depth, true);
                return;
            }
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
            ) => {
                self.end_item(output, self.depth);
                self.set_in_list(self.depth, false);
                return;
            }
            _ => {}
        }
        if let Some(item) = self.items.get_mut(self.depth)
            && item.in_list
        {
            let text = token.text(sql);
            if !item.started {
                if token.kind == TokenKind::Word && is_select_option(text) {
                    return;
                }
                item.started = true;
                item.start = token.start;
                item.has_as = false;
                item.changed = false;
            }
            item.end = token.end;
            item.has_as |= word == Some(K::As);
            // Only a last token that cannot be an alias proves there is none.
            item.last_may_alias = match token.kind {
                TokenKind::Punct(_) | TokenKind::UserVar | TokenKind::SystemVar => false,
                TokenKind::Word => !text.as_bytes()[0].is_ascii_digit(),
                TokenKind::String | TokenKind::QuotedIdent => true,
            };
        }
        if token.is_punct(b'(') {
            self.depth += 1;
            self.set_in_list(self.depth, false);
        }
    }

    fn set_in_list(&mut self, depth: usize, in_list: bool) {
        if let Some(item) = self.items.get_mut(depth) {
            *item = Item {
                in_list,
                ..Item::default()
            };
        }
    }

    /// Ends the item at `depth`, aliasing it if it changed and has no alias.
    fn end_item(&mut self, output: &mut Output<'_>, depth: usize) {
        let Some(item) = self.items.get_mut(depth) else {
            return;
        };
        // An item cut short by unbalanced parentheses may end before text
        // already rewritten; it is left without alias.
        if item.started
            && item.changed
            && !item.has_as
            && !item.last_may_alias
            && item.end >= output.copied
            && item.end - item.start <= MAX_ALIAS_LEN
            && !may_hold_comment(&output.sql[item.start..item.end])
        {
            output.alias(item.start, item.end);
        }
        item.started = false;
    }

    /// Ends every open item, innermost first (they end earliest in the text).
    fn end_all(&mut self, output: &mut Output<'_>) {
        for depth in (0..TRACKED_DEPTHS).rev() {
            self.end_item(output, depth);
        }
        *self = SelectItems::default();
    }
}

/// The server renames items holding comments in ways not worth mimicking, so
/// such items get no alias. A `#` or `--` inside a string is a false alarm
/// that only costs the alias.
fn may_hold_comment(text: &str) -> bool {
    text.contains("/*") || text.contains('#') || text.contains("--")
}

/// Words between `SELECT` and its first item.
fn is_select_option(word: &str) -> bool {
    matches!(
        keyword(word.as_bytes()),
        Some(Keyword::Distinct | Keyword::All)
    ) || (word.len() > 4 && word.as_bytes()[..4].eq_ignore_ascii_case(b"SQL_"))
        || word.eq_ignore_ascii_case("HIGH_PRIORITY")
        || word.eq_ignore_ascii_case("STRAIGHT_JOIN")
}
