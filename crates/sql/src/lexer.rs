//! Single-pass, allocation-free tokenizer for MySQL/MariaDB statement text.
//!
//! The lexer only separates what is code from what is not (strings, quoted
//! identifiers, comments) and marks variables; it does not know the grammar.
//! Executable comments (`/*! ... */`, `/*!50708 ... */`, `/*M! ... */`) are
//! lexed as code because the server runs their content, while plain comments
//! and optimizer hints (`/*+ ... */`) are skipped. The version number is not
//! checked: MariaDB skips `/*!50700`..`/*!99999` (MySQL 5.7+) and versions
//! newer than itself, but treating them as code only makes the classifier
//! report more session effects, never fewer.
//!
//! Every token boundary lies on an ASCII byte, so slicing the source `&str`
//! with a token's range never splits a UTF-8 character.

use memchr::{memchr, memchr2};

/// What a token is; its text is `&sql[token.start..token.end]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TokenKind {
    /// An unquoted run of identifier characters: keyword, identifier or number.
    Word,
    /// A backtick-quoted identifier, backticks included.
    QuotedIdent,
    /// A single- or double-quoted string, quotes included.
    String,
    /// A user variable: `@x`, `@'x'`, `@"x"`, `` @`x` ``.
    UserVar,
    /// A system variable: `@@x`, `@@session.x`, `@@global.x`.
    SystemVar,
    /// Any other single ASCII byte, e.g. `(`, `,`, `;` or the `@` of `'user'@'host'`.
    Punct(u8),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }

    pub fn is_punct(&self, byte: u8) -> bool {
        self.kind == TokenKind::Punct(byte)
    }
}

/// Iterator over the tokens of a statement text.
#[derive(Clone, Debug)]
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    /// Inside `/*! ... */`: the next `*/` closes the comment instead of being code.
    in_executable_comment: bool,
    /// The previous token, to tell `'user'@'host'` apart from a user variable.
    previous: Option<Token>,
}

impl<'a> Lexer<'a> {
    pub fn new(sql: &'a str) -> Self {
        Lexer {
            src: sql.as_bytes(),
            pos: 0,
            in_executable_comment: false,
            previous: None,
        }
    }

    /// Byte offset where lexing continues.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves the lexer to `pos`, which must be a token boundary it reported
    /// (or the end of a raw run of ASCII bytes following one).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.src.len());
    }

    /// Skips whitespace and comments; leaves `pos` on the first byte of code.
    fn skip_trivia(&mut self) {
        let src = self.src;
        while self.pos < src.len() {
            let byte = src[self.pos];
            if is_space(byte) {
                self.pos += 1;
                continue;
            }
            match byte {
                b'#' => self.skip_line(),
                // `--` starts a comment only when followed by whitespace or a control character.
                b'-' if src.get(self.pos + 1) == Some(&b'-')
                    && src.get(self.pos + 2).is_none_or(|&next| next <= b' ') =>
                {
                    self.skip_line()
                }
                b'/' if src.get(self.pos + 1) == Some(&b'*') => self.skip_block_comment(),
                b'*' if self.in_executable_comment && src.get(self.pos + 1) == Some(&b'/') => {
                    self.in_executable_comment = false;
                    self.pos += 2;
                }
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        self.pos = match memchr(b'\n', &self.src[self.pos..]) {
            Some(offset) => self.pos + offset + 1,
            None => self.src.len(),
        };
    }

    /// `pos` is on `/*`.
    fn skip_block_comment(&mut self) {
        let src = self.src;
        let after_open = self.pos + 2;
        let executable_body = match src.get(after_open) {
            Some(b'!') => Some(after_open + 1),
            Some(b'M') if src.get(after_open + 1) == Some(&b'!') => Some(after_open + 2),
            _ => None,
        };
        if let Some(mut body) = executable_body {
            // The optional server version (5 digits for MySQL, 6 for MariaDB) is not code.
            let version_end = (body + 6).min(src.len());
            while body < version_end && src[body].is_ascii_digit() {
                body += 1;
            }
            self.pos = body;
            self.in_executable_comment = true;
            return;
        }
        self.pos = match find_comment_end(&src[after_open..]) {
            Some(offset) => after_open + offset + 2,
            None => src.len(),
        };
    }

    /// `pos` is on an opening quote; returns the end of the quoted text.
    /// An unterminated quote runs to the end of the input.
    fn quoted_end(&self, start: usize) -> usize {
        let src = self.src;
        let quote = src[start];
        let mut pos = start + 1;
        loop {
            let found = if quote == b'`' {
                memchr(quote, &src[pos..])
            } else {
                memchr2(quote, b'\\', &src[pos..])
            };
            let Some(offset) = found else {
                return src.len();
            };
            pos += offset;
            if src[pos] == b'\\' {
                pos = (pos + 2).min(src.len());
            } else if src.get(pos + 1) == Some(&quote) {
                pos += 2;
            } else {
                return pos + 1;
            }
        }
    }

    fn word_end(&self, start: usize) -> usize {
        let rest = &self.src[start..];
        start
            + rest
                .iter()
                .position(|&byte| !is_identifier_byte(byte))
                .unwrap_or(rest.len())
    }

    /// `pos` is on `@`.
    fn variable(&self, start: usize) -> Token {
        let src = self.src;
        if src.get(start + 1) == Some(&b'@') {
            // `@@name`, `@@session.name`, ``@@global.`name` ``
            let mut pos = start + 2;
            while let Some(&byte) = src.get(pos) {
                if is_identifier_byte(byte) || byte == b'.' {
                    pos += 1;
                } else if byte == b'`' {
                    pos = self.quoted_end(pos);
                } else {
                    break;
                }
            }
            return Token {
                kind: TokenKind::SystemVar,
                start,
                end: pos,
            };
        }
        if self.is_user_host_separator(start) {
            return Token {
                kind: TokenKind::Punct(b'@'),
                start,
                end: start + 1,
            };
        }
        let end = match src.get(start + 1) {
            Some(b'\'' | b'"' | b'`') => self.quoted_end(start + 1),
            _ => {
                // Unquoted user variable names may contain dots.
                let mut pos = start + 1;
                while pos < src.len() && (is_identifier_byte(src[pos]) || src[pos] == b'.') {
                    pos += 1;
                }
                pos
            }
        };
        Token {
            kind: TokenKind::UserVar,
            start,
            end,
        }
    }

    /// `'u'@'h'`, `` `u`@`h` ``, `root@localhost`: an `@` glued to a preceding
    /// name is part of an account name, not a variable. Keywords that can
    /// precede an expression (`SELECT@x`) do not count as names.
    fn is_user_host_separator(&self, at: usize) -> bool {
        let Some(previous) = self.previous else {
            return false;
        };
        if previous.end != at {
            return false;
        }
        match previous.kind {
            TokenKind::String | TokenKind::QuotedIdent => true,
            TokenKind::Word => !is_expression_keyword(&self.src[previous.start..previous.end]),
            _ => false,
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        self.skip_trivia();
        let start = self.pos;
        let byte = *self.src.get(start)?;
        let token = match byte {
            b'\'' | b'"' => Token {
                kind: TokenKind::String,
                start,
                end: self.quoted_end(start),
            },
            b'`' => Token {
                kind: TokenKind::QuotedIdent,
                start,
                end: self.quoted_end(start),
            },
            b'@' => self.variable(start),
            _ if is_identifier_byte(byte) => Token {
                kind: TokenKind::Word,
                start,
                end: self.word_end(start),
            },
            _ => Token {
                kind: TokenKind::Punct(byte),
                start,
                end: start + 1,
            },
        };
        self.pos = token.end;
        self.previous = Some(token);
        Some(token)
    }
}

/// Offset of the `*/` that closes a block comment whose body is `body`.
fn find_comment_end(body: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while let Some(offset) = memchr(b'*', &body[pos..]) {
        let star = pos + offset;
        if body.get(star + 1) == Some(&b'/') {
            return Some(star);
        }
        pos = star + 1;
    }
    None
}

/// Bytes of unquoted identifiers and numbers. Every byte of a multi-byte
/// UTF-8 character counts, which keeps token boundaries on ASCII bytes.
pub fn is_identifier_byte(byte: u8) -> bool {
    BYTE_CLASS[byte as usize] & IDENTIFIER != 0
}

fn is_space(byte: u8) -> bool {
    BYTE_CLASS[byte as usize] & SPACE != 0
}

const IDENTIFIER: u8 = 1;
const SPACE: u8 = 2;

/// Byte classes looked up instead of tested with chains of comparisons.
static BYTE_CLASS: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
            classes[byte] = IDENTIFIER;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            classes[byte] = SPACE;
        }
        byte += 1;
    }
    classes
};

/// Keywords after which `@x` (even without a space) is a user variable.
fn is_expression_keyword(word: &[u8]) -> bool {
    const KEYWORDS: &[&[u8]] = &[
        b"SELECT",
        b"SET",
        b"WHERE",
        b"AND",
        b"OR",
        b"XOR",
        b"NOT",
        b"ON",
        b"BY",
        b"VALUES",
        b"VALUE",
        b"RETURN",
        b"THEN",
        b"ELSE",
        b"WHEN",
        b"INTO",
        b"DO",
        b"IF",
        b"CASE",
        b"LIKE",
        b"IN",
        b"IS",
        b"DIV",
        b"MOD",
        b"LIMIT",
        b"OFFSET",
        b"HAVING",
        b"DISTINCT",
        b"AS",
        b"USING",
        b"EXECUTE",
        b"CALL",
        b"BETWEEN",
        b"REGEXP",
        b"RLIKE",
        b"FROM",
        b"ELSEIF",
        b"UNTIL",
        b"WHILE",
    ];
    word.len() <= 8
        && KEYWORDS
            .iter()
            .any(|keyword| keyword.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(sql: &str) -> Vec<(TokenKind, &str)> {
        Lexer::new(sql).map(|t| (t.kind, t.text(sql))).collect()
    }

    #[test]
    fn strings_identifiers_and_comments() {
        use TokenKind::*;
        assert_eq!(
            tokens("SELECT 'it''s', \"a\\\"b\", `x``y` -- c\n# d\n/* e */ 1"),
            vec![
                (Word, "SELECT"),
                (String, "'it''s'"),
                (Punct(b','), ","),
                (String, "\"a\\\"b\""),
                (Punct(b','), ","),
                (QuotedIdent, "`x``y`"),
                (Word, "1"),
            ]
        );
    }

    #[test]
    fn double_dash_without_space_is_two_minus_signs() {
        use TokenKind::*;
        assert_eq!(
            tokens("1--2"),
            vec![
                (Word, "1"),
                (Punct(b'-'), "-"),
                (Punct(b'-'), "-"),
                (Word, "2")
            ]
        );
        assert_eq!(tokens("1--\t2"), vec![(Word, "1")]);
        assert_eq!(tokens("1 --"), vec![(Word, "1")]);
    }

    #[test]
    fn executable_comments_are_code() {
        use TokenKind::*;
        assert_eq!(
            tokens("/*!40101 SET x=1 */ /*M!100100 y */ /*+ hint */ /*! z*/"),
            vec![
                (Word, "SET"),
                (Word, "x"),
                (Punct(b'='), "="),
                (Word, "1"),
                (Word, "y"),
                (Word, "z"),
            ]
        );
        // Outside an executable comment `*/` is ordinary punctuation.
        assert_eq!(
            tokens("a */ b"),
            vec![
                (Word, "a"),
                (Punct(b'*'), "*"),
                (Punct(b'/'), "/"),
                (Word, "b")
            ]
        );
    }

    #[test]
    fn variables_and_account_names() {
        use TokenKind::*;
        assert_eq!(
            tokens("@a.b @'x y' @@session.sql_mode 'u'@'h' root@localhost SELECT@v"),
            vec![
                (UserVar, "@a.b"),
                (UserVar, "@'x y'"),
                (SystemVar, "@@session.sql_mode"),
                (String, "'u'"),
                (Punct(b'@'), "@"),
                (String, "'h'"),
                (Word, "root"),
                (Punct(b'@'), "@"),
                (Word, "localhost"),
                (Word, "SELECT"),
                (UserVar, "@v"),
            ]
        );
    }

    #[test]
    fn unterminated_constructs_end_at_input_end() {
        assert_eq!(tokens("'abc").len(), 1);
        assert_eq!(tokens("`abc").len(), 1);
        assert_eq!(tokens("'abc\\").len(), 1);
        assert_eq!(tokens("x /* abc").len(), 1);
        assert_eq!(tokens("x /*!").len(), 1);
        assert_eq!(tokens("@").len(), 1);
        assert_eq!(tokens("@@").len(), 1);
    }

    #[test]
    fn multibyte_text_slices_cleanly() {
        let sql = "SELECT 'héllo', naïve, `ü`";
        let texts: Vec<&str> = Lexer::new(sql).map(|t| t.text(sql)).collect();
        assert_eq!(texts, vec!["SELECT", "'héllo'", ",", "naïve", ",", "`ü`"]);
    }
}
