//! Lexer-based statement classifier: what a query text does to session state,
//! decided in one pass over its tokens without parsing or allocating.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use crate::keyword::{Keyword, keyword};
use crate::lexer::{Lexer, Token, TokenKind};
use crate::rewrite::is_last_insert_id_variable;

/// What the first statement of a text is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum StatementKind {
    /// Only whitespace, comments or `;`.
    #[default]
    Empty,
    /// `SELECT`, `WITH ... SELECT`, `VALUES (...)`.
    Select,
    Insert,
    Replace,
    Update,
    Delete,
    /// `BEGIN`, `BEGIN WORK`, `START TRANSACTION`.
    Begin,
    Commit,
    /// A plain `ROLLBACK`; `ROLLBACK TO SAVEPOINT` is [`StatementKind::Savepoint`].
    Rollback,
    /// `SAVEPOINT x`, `ROLLBACK [WORK] TO [SAVEPOINT] x`, `RELEASE SAVEPOINT x`.
    Savepoint,
    /// Any `SET` statement except `SET STATEMENT ... FOR <stmt>`, which is
    /// classified as its inner statement because its settings last only for it.
    Set,
    Use,
    /// `SHOW DATABASES` / `SHOW SCHEMAS` with nothing after it; with `LIKE` or
    /// `WHERE` it is [`StatementKind::Show`].
    ShowDatabases,
    Show,
    /// `DESCRIBE` / `DESC`.
    Describe,
    Explain,
    /// `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `RENAME`.
    Ddl,
    Call,
    /// SQL-level `PREPARE`, `EXECUTE`, `DEALLOCATE PREPARE`, `DROP PREPARE`.
    Prepare,
    /// `LOCK TABLES`, `UNLOCK TABLES`, `FLUSH TABLES ... WITH READ LOCK` / `FOR EXPORT`.
    Lock,
    Other,
}

/// A set of facts about statements that matter for connection pooling.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u32);

impl Flags {
    /// `@x` (not `@@x`) anywhere, including `SET @x`, `:=` and `INTO @x`.
    pub const USER_VARIABLES: Flags = Flags(1 << 0);
    /// Any `SET` statement (`SET NAMES`, `SET autocommit`, `SET SESSION x`, `SET @@x`, ...).
    pub const SESSION_SET: Flags = Flags(1 << 1);
    /// `CREATE [OR REPLACE] TEMPORARY ...` or `DROP TEMPORARY ...`.
    pub const TEMPORARY_TABLE: Flags = Flags(1 << 2);
    /// `GET_LOCK(`, `RELEASE_LOCK(` or `RELEASE_ALL_LOCKS(`.
    pub const GET_LOCK: Flags = Flags(1 << 3);
    /// `LOCK`/`UNLOCK TABLES` and `FLUSH` that take table locks.
    pub const LOCK_TABLES: Flags = Flags(1 << 4);
    /// SQL-level `PREPARE`/`EXECUTE`/`DEALLOCATE` (also `EXECUTE IMMEDIATE`).
    pub const SQL_PREPARE: Flags = Flags(1 << 5);
    /// `SQL_CALC_FOUND_ROWS` or `FOUND_ROWS()`.
    pub const FOUND_ROWS: Flags = Flags(1 << 6);
    /// A read of the session's last insert id: `LAST_INSERT_ID()` with no
    /// argument, `@@identity` or `@@last_insert_id`. `rewrite_last_insert_id`
    /// replaces all of them.
    pub const LAST_INSERT_ID: Flags = Flags(1 << 7);
    /// Other connection state: `LAST_INSERT_ID(expr)`, `SET TRANSACTION`, `XA`,
    /// `HANDLER`, `BACKUP`, `ROW_COUNT()`, `LASTVAL(`, assignment to `@@identity`.
    pub const SESSION_STATE: Flags = Flags(1 << 8);
    /// More than one non-empty statement in the text.
    pub const MULTI: Flags = Flags(1 << 9);

    const NAMES: [(Flags, &'static str); 10] = [
        (Flags::USER_VARIABLES, "USER_VARIABLES"),
        (Flags::SESSION_SET, "SESSION_SET"),
        (Flags::TEMPORARY_TABLE, "TEMPORARY_TABLE"),
        (Flags::GET_LOCK, "GET_LOCK"),
        (Flags::LOCK_TABLES, "LOCK_TABLES"),
        (Flags::SQL_PREPARE, "SQL_PREPARE"),
        (Flags::FOUND_ROWS, "FOUND_ROWS"),
        (Flags::LAST_INSERT_ID, "LAST_INSERT_ID"),
        (Flags::SESSION_STATE, "SESSION_STATE"),
        (Flags::MULTI, "MULTI"),
    ];

    pub const fn empty() -> Flags {
        Flags(0)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any flag of `other` is set in `self`.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// `self | other`, usable in constants.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }
}

impl BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        let mut first = true;
        for (flag, name) in Flags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// The result of [`classify`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Classified {
    /// Kind of the first non-empty statement.
    pub kind: StatementKind,
    /// Union of the flags of all statements.
    pub flags: Flags,
}

/// Classifies a query text (possibly several `;`-separated statements).
pub fn classify(sql: &str) -> Classified {
    let mut result = Classified::default();
    let mut statements = 0u32;
    for_each_statement(sql, |statement| {
        if statements == 0 {
            result.kind = statement.kind;
        } else {
            result.flags |= Flags::MULTI;
        }
        statements += 1;
        result.flags |= statement.flags;
    });
    result
}

/// Splits a multi-statement text at the `;` that separate statements, ignoring
/// those inside strings, comments, quoted identifiers and the `BEGIN ... END`
/// bodies of stored programs. Statements are trimmed of surrounding
/// whitespace; pieces holding only comments or whitespace are dropped.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    for_each_statement(sql, |statement| {
        pieces.push(sql[statement.start..statement.end].trim_matches(is_sql_whitespace));
    });
    pieces
}

/// For `USE x` / ``USE `x` ``: the target text with backticks removed, e.g.
/// `commerce@replica` or `customer:-80`. `None` when the first statement is
/// not `USE`, or its target is missing or is not one plain or one
/// backtick-quoted run (a quoted name with doubled backticks is returned as written).
pub fn use_target(sql: &str) -> Option<&str> {
    let mut lexer = Lexer::new(sql);
    let first = lexer.next()?;
    if first.kind != TokenKind::Word || keyword(first.text(sql).as_bytes()) != Some(Keyword::Use) {
        return None;
    }
    let target = lexer.next()?;
    let bytes = sql.as_bytes();
    let (text, end) = match target.kind {
        TokenKind::QuotedIdent => {
            if target.end - target.start < 2 || bytes[target.end - 1] != b'`' {
                return None;
            }
            (&sql[target.start + 1..target.end - 1], target.end)
        }
        TokenKind::String | TokenKind::UserVar | TokenKind::SystemVar => return None,
        TokenKind::Word | TokenKind::Punct(_) => {
            // Vitess targets (`ks@replica`, `ks:-80`, `ks:80-@rdonly`) are not one
            // SQL token, so take the raw run up to whitespace or a terminator.
            let mut end = target.start;
            while end < bytes.len() && !is_target_terminator(bytes[end]) {
                end += 1;
            }
            (&sql[target.start..end], end)
        }
    };
    if text.is_empty() {
        return None;
    }
    lexer.seek(end);
    match lexer.next() {
        None => Some(text),
        Some(token) if token.is_punct(b';') => Some(text),
        Some(_) => None,
    }
}

fn is_target_terminator(byte: u8) -> bool {
    is_sql_whitespace(byte as char)
        || matches!(
            byte,
            b';' | b'#' | b'/' | b'*' | b'`' | b'\'' | b'"' | b'(' | b')' | b','
        )
}

fn is_sql_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// One non-empty statement found by [`for_each_statement`].
struct Statement {
    /// Byte range in the text, between separators (untrimmed).
    start: usize,
    end: usize,
    kind: StatementKind,
    flags: Flags,
}

/// Calls `visit` for every statement holding at least one token.
fn for_each_statement(sql: &str, mut visit: impl FnMut(Statement)) {
    let mut scan = StatementScan::new(sql);
    let mut start = 0;
    for token in Lexer::new(sql) {
        if scan.feed(token) {
            if let Some((kind, flags)) = scan.finish() {
                visit(Statement {
                    start,
                    end: token.start,
                    kind,
                    flags,
                });
            }
            start = token.end;
        }
    }
    if let Some((kind, flags)) = scan.finish() {
        visit(Statement {
            start,
            end: sql.len(),
            kind,
            flags,
        });
    }
}

/// Where the classifier is within the current statement.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// No token yet except opening parentheses.
    Leading,
    /// After an unknown first word: a following `:` makes it a block label.
    MaybeLabel,
    /// After `BEGIN`: `NOT ATOMIC` makes it a compound block.
    AfterBegin,
    AfterStart,
    /// After `ROLLBACK [WORK]`: `TO` makes it a savepoint rollback.
    AfterRollback,
    AfterRelease,
    AfterSet,
    /// After `SET SESSION|GLOBAL|LOCAL`.
    AfterSetScope,
    /// Inside `SET STATEMENT ...` up to the `FOR` at this parenthesis depth.
    SetStatement(u32),
    AfterShow,
    /// `SHOW DATABASES`; any further token makes it a general `SHOW`.
    ShowDatabases,
    /// `CREATE`/`ALTER` before the object type word; counts tokens seen.
    DdlHead(u8),
    AfterDrop,
    /// `WITH` common table expressions: the first verb at this depth decides.
    With(u32),
    Flush,
    /// Nothing left to decide about the statement kind.
    Body,
}

/// Longest `CREATE`/`ALTER` head (`OR REPLACE`, `DEFINER = 'u'@'h'`,
/// `SQL SECURITY x`, `ALGORITHM = y`, ...) searched for the object type.
const DDL_HEAD_TOKENS: u8 = 16;

/// A function-like word waiting for its `(`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pending {
    None,
    LastInsertId,
    LastInsertIdOpen,
    /// `@@identity` / `@@last_insert_id`: an assignment if `=` or `:=` follows.
    IdentityVariable,
    Function(Flags),
}

/// Per-statement classification state, reset by [`StatementScan::finish`].
struct StatementScan<'a> {
    sql: &'a str,
    kind: StatementKind,
    flags: Flags,
    has_tokens: bool,
    phase: Phase,
    paren_depth: u32,
    previous: Option<Token>,
    pending: Pending,
    blocks: Blocks,
}

impl<'a> StatementScan<'a> {
    fn new(sql: &'a str) -> Self {
        StatementScan {
            sql,
            kind: StatementKind::Empty,
            flags: Flags::empty(),
            has_tokens: false,
            phase: Phase::Leading,
            paren_depth: 0,
            previous: None,
            pending: Pending::None,
            blocks: Blocks::default(),
        }
    }

    /// Consumes one token; returns true when it is a `;` ending the statement.
    fn feed(&mut self, token: Token) -> bool {
        if token.is_punct(b';') {
            if self.blocks.active && self.blocks.depth > 0 {
                self.blocks.at_statement_start = true;
                self.resolve_pending(token);
                self.previous = Some(token);
                return false;
            }
            return true;
        }
        self.has_tokens = true;
        let after_dot = self.previous.is_some_and(|p| p.is_punct(b'.'));
        let word = if token.kind == TokenKind::Word && !after_dot {
            keyword(token.text(self.sql).as_bytes())
        } else {
            None
        };
        self.resolve_pending(token);
        self.note_token(token, word);
        self.advance_phase(token, word);
        if self.blocks.active {
            self.blocks.feed(token, word);
        }
        self.previous = Some(token);
        false
    }

    /// Settles a function-like word seen just before `token`.
    fn resolve_pending(&mut self, token: Token) {
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        match pending {
            Pending::None => {}
            Pending::LastInsertId if token.is_punct(b'(') => {
                self.pending = Pending::LastInsertIdOpen;
            }
            Pending::LastInsertId => {}
            Pending::LastInsertIdOpen if token.is_punct(b')') => {
                self.flags |= Flags::LAST_INSERT_ID;
            }
            // LAST_INSERT_ID(expr) sets the value the next LAST_INSERT_ID() returns.
            Pending::LastInsertIdOpen => self.flags |= Flags::SESSION_STATE,
            Pending::IdentityVariable
                if token.is_punct(b'=') || (token.is_punct(b':') && self.next_is_equals(token)) =>
            {
                self.flags |= Flags::SESSION_STATE;
            }
            Pending::IdentityVariable => self.flags |= Flags::LAST_INSERT_ID,
            Pending::Function(flag) if token.is_punct(b'(') => self.flags |= flag,
            Pending::Function(_) => {}
        }
    }

    fn next_is_equals(&self, token: Token) -> bool {
        self.sql.as_bytes().get(token.end) == Some(&b'=')
    }

    /// Flags that any token can raise wherever it appears.
    fn note_token(&mut self, token: Token, word: Option<Keyword>) {
        match token.kind {
            TokenKind::UserVar => self.flags |= Flags::USER_VARIABLES,
            TokenKind::SystemVar if is_last_insert_id_variable(token.text(self.sql)) => {
                self.pending = Pending::IdentityVariable;
            }
            TokenKind::Punct(b'(') => self.paren_depth += 1,
            TokenKind::Punct(b')') => self.paren_depth = self.paren_depth.saturating_sub(1),
            _ => {}
        }
        self.pending = match word {
            Some(Keyword::LastInsertId) => Pending::LastInsertId,
            Some(Keyword::GetLock | Keyword::ReleaseLock | Keyword::ReleaseAllLocks) => {
                Pending::Function(Flags::GET_LOCK)
            }
            Some(Keyword::FoundRows) => Pending::Function(Flags::FOUND_ROWS),
            Some(Keyword::RowCount | Keyword::Lastval) => Pending::Function(Flags::SESSION_STATE),
            Some(Keyword::SqlCalcFoundRows) => {
                self.flags |= Flags::FOUND_ROWS;
                self.pending
            }
            _ => self.pending,
        };
    }

    fn advance_phase(&mut self, token: Token, word: Option<Keyword>) {
        use Keyword as K;
        use StatementKind as S;
        match self.phase {
            Phase::Leading => {
                if !token.is_punct(b'(') {
                    self.start_statement(token, word);
                }
            }
            Phase::MaybeLabel => {
                if token.is_punct(b':') && self.sql.as_bytes().get(token.end) != Some(&b'=') {
                    self.blocks.active = true;
                }
                self.phase = Phase::Body;
            }
            Phase::AfterBegin => {
                if word == Some(K::Not) {
                    // BEGIN NOT ATOMIC ... END: an anonymous compound statement.
                    self.kind = S::Other;
                    self.blocks.active = true;
                    self.blocks.push(false);
                }
                self.phase = Phase::Body;
            }
            Phase::AfterStart => {
                if word == Some(K::Transaction) {
                    self.kind = S::Begin;
                }
                self.phase = Phase::Body;
            }
            Phase::AfterRollback => match word {
                Some(K::Work) => {}
                Some(K::To) => {
                    self.kind = S::Savepoint;
                    self.phase = Phase::Body;
                }
                _ => self.phase = Phase::Body,
            },
            Phase::AfterRelease => {
                if word == Some(K::Savepoint) {
                    self.kind = S::Savepoint;
                }
                self.phase = Phase::Body;
            }
            Phase::AfterSet => {
                if word == Some(K::Statement) {
                    self.phase = Phase::SetStatement(self.paren_depth);
                    return;
                }
                self.flags |= Flags::SESSION_SET;
                self.phase = match word {
                    Some(K::Transaction) => {
                        self.flags |= Flags::SESSION_STATE;
                        Phase::Body
                    }
                    Some(K::Session | K::Global | K::Local) => Phase::AfterSetScope,
                    _ => Phase::Body,
                };
            }
            Phase::AfterSetScope => {
                if word == Some(K::Transaction) {
                    self.flags |= Flags::SESSION_STATE;
                }
                self.phase = Phase::Body;
            }
            Phase::SetStatement(depth) => {
                if word == Some(K::For) && self.paren_depth == depth {
                    self.kind = S::Empty;
                    self.phase = Phase::Leading;
                }
            }
            Phase::AfterShow => {
                if matches!(word, Some(K::Databases | K::Schemas)) {
                    self.kind = S::ShowDatabases;
                    self.phase = Phase::ShowDatabases;
                } else {
                    self.phase = Phase::Body;
                }
            }
            Phase::ShowDatabases => {
                self.kind = S::Show;
                self.phase = Phase::Body;
            }
            Phase::DdlHead(seen) => match word {
                Some(K::Temporary) => {
                    self.flags |= Flags::TEMPORARY_TABLE;
                    self.phase = Phase::Body;
                }
                Some(K::Procedure | K::Function | K::Trigger | K::Event | K::Package) => {
                    // Stored program bodies contain `;` that do not end the statement.
                    self.blocks.active = true;
                    self.phase = Phase::Body;
                }
                Some(K::Table | K::View | K::Sequence | K::Databases | K::Schemas) => {
                    self.phase = Phase::Body;
                }
                _ if seen >= DDL_HEAD_TOKENS => self.phase = Phase::Body,
                _ => self.phase = Phase::DdlHead(seen + 1),
            },
            Phase::AfterDrop => {
                match word {
                    Some(K::Temporary) => self.flags |= Flags::TEMPORARY_TABLE,
                    Some(K::Prepare) => {
                        self.kind = S::Prepare;
                        self.flags |= Flags::SQL_PREPARE;
                    }
                    _ => {}
                }
                self.phase = Phase::Body;
            }
            Phase::With(depth) => {
                if self.paren_depth == depth {
                    let verb = match word {
                        Some(K::Select) => Some(S::Select),
                        Some(K::Insert) => Some(S::Insert),
                        Some(K::Replace) => Some(S::Replace),
                        Some(K::Update) => Some(S::Update),
                        Some(K::Delete) => Some(S::Delete),
                        _ => None,
                    };
                    if let Some(kind) = verb {
                        self.kind = kind;
                        self.phase = Phase::Body;
                    }
                }
            }
            Phase::Flush => {
                if matches!(word, Some(K::Lock | K::Export)) {
                    self.kind = S::Lock;
                    self.flags |= Flags::LOCK_TABLES;
                    self.phase = Phase::Body;
                }
            }
            Phase::Body => {}
        }
    }

    /// Decides the kind from the first keyword of the statement.
    fn start_statement(&mut self, token: Token, word: Option<Keyword>) {
        use Keyword as K;
        use StatementKind as S;
        let Some(word) = word else {
            self.kind = S::Other;
            self.phase = if token.kind == TokenKind::Word {
                Phase::MaybeLabel
            } else {
                Phase::Body
            };
            return;
        };
        let (kind, phase) = match word {
            K::Select | K::Values | K::Table => (S::Select, Phase::Body),
            K::With => (S::Select, Phase::With(self.paren_depth)),
            K::Insert => (S::Insert, Phase::Body),
            K::Replace => (S::Replace, Phase::Body),
            K::Update => (S::Update, Phase::Body),
            K::Delete => (S::Delete, Phase::Body),
            K::Begin => (S::Begin, Phase::AfterBegin),
            K::Start => (S::Other, Phase::AfterStart),
            K::Commit => (S::Commit, Phase::Body),
            K::Rollback => (S::Rollback, Phase::AfterRollback),
            K::Savepoint => (S::Savepoint, Phase::Body),
            K::Release => (S::Other, Phase::AfterRelease),
            K::Set => (S::Set, Phase::AfterSet),
            K::Use => (S::Use, Phase::Body),
            K::Show => (S::Show, Phase::AfterShow),
            K::Describe | K::Desc => (S::Describe, Phase::Body),
            K::Explain => (S::Explain, Phase::Body),
            K::Create | K::Alter => (S::Ddl, Phase::DdlHead(0)),
            K::Drop => (S::Ddl, Phase::AfterDrop),
            K::Truncate | K::Rename => (S::Ddl, Phase::Body),
            K::Call => (S::Call, Phase::Body),
            K::Prepare | K::Execute | K::Deallocate => {
                self.flags |= Flags::SQL_PREPARE;
                (S::Prepare, Phase::Body)
            }
            K::Lock | K::Unlock => {
                self.flags |= Flags::LOCK_TABLES;
                (S::Lock, Phase::Body)
            }
            K::Flush => (S::Other, Phase::Flush),
            K::Xa | K::Handler | K::Backup => {
                self.flags |= Flags::SESSION_STATE;
                (S::Other, Phase::Body)
            }
            K::If | K::Case | K::Loop | K::While | K::Repeat | K::For => {
                // MariaDB runs compound statements outside stored programs too.
                self.blocks.active = true;
                self.blocks.at_statement_start = true;
                (S::Other, Phase::Body)
            }
            _ => (S::Other, Phase::MaybeLabel),
        };
        self.kind = kind;
        self.phase = phase;
    }

    /// Ends the statement: returns its kind and flags if it held any token,
    /// and resets the state for the next statement.
    fn finish(&mut self) -> Option<(StatementKind, Flags)> {
        let had_tokens = self.has_tokens;
        // A `;` or the end of text also settles a pending function-like word.
        let end = self.sql.len();
        self.resolve_pending(Token {
            kind: TokenKind::Punct(b';'),
            start: end,
            end,
        });
        let mut kind = self.kind;
        let mut flags = self.flags;
        match self.phase {
            Phase::AfterSet => flags |= Flags::SESSION_SET,
            Phase::SetStatement(_) => {
                kind = StatementKind::Set;
                flags |= Flags::SESSION_SET;
            }
            _ => {}
        }
        if kind == StatementKind::Empty {
            kind = StatementKind::Other;
        }
        *self = StatementScan::new(self.sql);
        had_tokens.then_some((kind, flags))
    }
}

/// Nesting of compound-statement blocks (`BEGIN ... END`, `IF ... END IF`,
/// `CASE ... END`, loops), tracked only in statements that can contain them,
/// so that the `;` inside a stored program body does not end the statement.
#[derive(Default)]
struct Blocks {
    active: bool,
    depth: u32,
    /// Bit n set: the block at depth n is a `CASE` expression, in which
    /// `THEN`/`ELSE` are followed by expressions, not statements.
    expression_case: u64,
    /// The next token starts a statement of a body, where `IF`, `LOOP`, ... open blocks.
    at_statement_start: bool,
    /// After `END`: a following `IF`/`LOOP`/`CASE`/... names the closed block.
    after_end: bool,
}

impl Blocks {
    fn push(&mut self, is_expression_case: bool) {
        if self.depth < 64 {
            let bit = 1u64 << self.depth;
            if is_expression_case {
                self.expression_case |= bit;
            } else {
                self.expression_case &= !bit;
            }
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn in_expression_case(&self) -> bool {
        self.depth > 0 && self.depth <= 64 && self.expression_case & (1 << (self.depth - 1)) != 0
    }

    fn feed(&mut self, token: Token, word: Option<Keyword>) {
        use Keyword as K;
        let at_start = std::mem::replace(&mut self.at_statement_start, false);
        if std::mem::replace(&mut self.after_end, false)
            && matches!(
                word,
                Some(K::If | K::Loop | K::While | K::Repeat | K::Case | K::For)
            )
        {
            return;
        }
        if token.is_punct(b':') {
            // A label (`name:`) precedes a block statement.
            self.at_statement_start = true;
            return;
        }
        match word {
            Some(K::Begin) => {
                self.push(false);
                self.at_statement_start = true;
            }
            Some(K::Case) => self.push(!at_start),
            Some(K::If | K::While | K::For) if at_start => self.push(false),
            Some(K::Loop | K::Repeat) if at_start => {
                self.push(false);
                self.at_statement_start = true;
            }
            Some(K::End) => {
                self.pop();
                self.after_end = true;
            }
            Some(K::Then | K::Else) => self.at_statement_start = !self.in_expression_case(),
            Some(K::Do | K::Atomic | K::Row) => self.at_statement_start = true,
            _ => {}
        }
    }
}
