//! Recognition of the few keywords the classifier and rewriter care about.

/// Keywords that steer classification. Everything else is `None`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Keyword {
    Aggregate,
    All,
    Alter,
    As,
    Atomic,
    Backup,
    Begin,
    Call,
    Case,
    Commit,
    Create,
    Databases,
    Deallocate,
    Delete,
    Desc,
    Describe,
    Distinct,
    Do,
    Drop,
    Else,
    End,
    Event,
    Except,
    Execute,
    Explain,
    Export,
    FoundRows,
    Flush,
    For,
    From,
    Function,
    GetLock,
    Global,
    Group,
    Handler,
    Having,
    If,
    Insert,
    Intersect,
    Into,
    LastInsertId,
    Lastval,
    Limit,
    Local,
    Lock,
    Loop,
    Not,
    Order,
    Package,
    Prepare,
    Procedure,
    Release,
    ReleaseAllLocks,
    ReleaseLock,
    Rename,
    Repeat,
    Replace,
    Rollback,
    Row,
    RowCount,
    Savepoint,
    Schemas,
    Select,
    Sequence,
    Session,
    Set,
    Show,
    SqlCalcFoundRows,
    Start,
    Statement,
    Table,
    Tables,
    Temporary,
    Then,
    To,
    Transaction,
    Trigger,
    Truncate,
    Union,
    Unlock,
    Update,
    Use,
    Values,
    View,
    Where,
    While,
    Window,
    With,
    Work,
    Xa,
}

/// Longest keyword we recognise (`SQL_CALC_FOUND_ROWS`, `RELEASE_ALL_LOCKS`).
const MAX_KEYWORD_LEN: usize = 19;

/// Sorted by spelling for binary search.
const KEYWORDS: &[(&[u8], Keyword)] = &[
    (b"AGGREGATE", Keyword::Aggregate),
    (b"ALL", Keyword::All),
    (b"ALTER", Keyword::Alter),
    (b"AS", Keyword::As),
    (b"ATOMIC", Keyword::Atomic),
    (b"BACKUP", Keyword::Backup),
    (b"BEGIN", Keyword::Begin),
    (b"CALL", Keyword::Call),
    (b"CASE", Keyword::Case),
    (b"COMMIT", Keyword::Commit),
    (b"CREATE", Keyword::Create),
    (b"DATABASES", Keyword::Databases),
    (b"DEALLOCATE", Keyword::Deallocate),
    (b"DELETE", Keyword::Delete),
    (b"DESC", Keyword::Desc),
    (b"DESCRIBE", Keyword::Describe),
    (b"DISTINCT", Keyword::Distinct),
    (b"DISTINCTROW", Keyword::Distinct),
    (b"DO", Keyword::Do),
    (b"DROP", Keyword::Drop),
    (b"ELSE", Keyword::Else),
    (b"END", Keyword::End),
    (b"EVENT", Keyword::Event),
    (b"EXCEPT", Keyword::Except),
    (b"EXECUTE", Keyword::Execute),
    (b"EXPLAIN", Keyword::Explain),
    (b"EXPORT", Keyword::Export),
    (b"FLUSH", Keyword::Flush),
    (b"FOR", Keyword::For),
    (b"FOUND_ROWS", Keyword::FoundRows),
    (b"FROM", Keyword::From),
    (b"FUNCTION", Keyword::Function),
    (b"GET_LOCK", Keyword::GetLock),
    (b"GLOBAL", Keyword::Global),
    (b"GROUP", Keyword::Group),
    (b"HANDLER", Keyword::Handler),
    (b"HAVING", Keyword::Having),
    (b"IF", Keyword::If),
    (b"INSERT", Keyword::Insert),
    (b"INTERSECT", Keyword::Intersect),
    (b"INTO", Keyword::Into),
    (b"LASTVAL", Keyword::Lastval),
    (b"LAST_INSERT_ID", Keyword::LastInsertId),
    (b"LIMIT", Keyword::Limit),
    (b"LOCAL", Keyword::Local),
    (b"LOCK", Keyword::Lock),
    (b"LOOP", Keyword::Loop),
    (b"NOT", Keyword::Not),
    (b"ORDER", Keyword::Order),
    (b"PACKAGE", Keyword::Package),
    (b"PREPARE", Keyword::Prepare),
    (b"PROCEDURE", Keyword::Procedure),
    (b"RELEASE", Keyword::Release),
    (b"RELEASE_ALL_LOCKS", Keyword::ReleaseAllLocks),
    (b"RELEASE_LOCK", Keyword::ReleaseLock),
    (b"RENAME", Keyword::Rename),
    (b"REPEAT", Keyword::Repeat),
    (b"REPLACE", Keyword::Replace),
    (b"ROLLBACK", Keyword::Rollback),
    (b"ROW", Keyword::Row),
    (b"ROW_COUNT", Keyword::RowCount),
    (b"SAVEPOINT", Keyword::Savepoint),
    (b"SCHEMAS", Keyword::Schemas),
    (b"SELECT", Keyword::Select),
    (b"SEQUENCE", Keyword::Sequence),
    (b"SESSION", Keyword::Session),
    (b"SET", Keyword::Set),
    (b"SHOW", Keyword::Show),
    (b"SQL_CALC_FOUND_ROWS", Keyword::SqlCalcFoundRows),
    (b"START", Keyword::Start),
    (b"STATEMENT", Keyword::Statement),
    (b"TABLE", Keyword::Table),
    (b"TABLES", Keyword::Tables),
    (b"TEMPORARY", Keyword::Temporary),
    (b"THEN", Keyword::Then),
    (b"TO", Keyword::To),
    (b"TRANSACTION", Keyword::Transaction),
    (b"TRIGGER", Keyword::Trigger),
    (b"TRUNCATE", Keyword::Truncate),
    (b"UNION", Keyword::Union),
    (b"UNLOCK", Keyword::Unlock),
    (b"UPDATE", Keyword::Update),
    (b"USE", Keyword::Use),
    (b"VALUES", Keyword::Values),
    (b"VIEW", Keyword::View),
    (b"WHERE", Keyword::Where),
    (b"WHILE", Keyword::While),
    (b"WINDOW", Keyword::Window),
    (b"WITH", Keyword::With),
    (b"WORK", Keyword::Work),
    (b"XA", Keyword::Xa),
];

/// A keyword spelling packed big-endian into zero-padded words, so that
/// comparing packs orders them like the spellings and costs three integer
/// comparisons instead of a `memcmp` call.
type Packed = [u64; 3];

const fn pack(spelling: &[u8]) -> Packed {
    let mut packed = [0u64; 3];
    let mut i = 0;
    while i < spelling.len() {
        packed[i / 8] |= (spelling[i] as u64) << (56 - 8 * (i % 8));
        i += 1;
    }
    packed
}

const PACKED_KEYWORDS: [Packed; KEYWORDS.len()] = {
    let mut packed = [[0u64; 3]; KEYWORDS.len()];
    let mut i = 0;
    while i < KEYWORDS.len() {
        packed[i] = pack(KEYWORDS[i].0);
        i += 1;
    }
    packed
};

/// Case-insensitive keyword lookup of an unquoted word.
pub fn keyword(word: &[u8]) -> Option<Keyword> {
    if word.len() < 2 || word.len() > MAX_KEYWORD_LEN || !word[0].is_ascii_alphabetic() {
        return None;
    }
    let mut buffer = [0u8; 24];
    buffer[..word.len()].copy_from_slice(word);
    buffer.make_ascii_uppercase();
    let chunk = |i: usize| u64::from_be_bytes(buffer[i..i + 8].try_into().unwrap_or_default());
    let packed = [chunk(0), chunk(8), chunk(16)];
    PACKED_KEYWORDS
        .binary_search(&packed)
        .ok()
        .map(|index| KEYWORDS[index].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_fits_the_buffer() {
        assert!(KEYWORDS.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(
            KEYWORDS
                .iter()
                .all(|(spelling, _)| spelling.len() <= MAX_KEYWORD_LEN)
        );
        assert!(
            KEYWORDS
                .iter()
                .any(|(spelling, _)| spelling.len() == MAX_KEYWORD_LEN)
        );
    }

    #[test]
    fn lookup_is_case_insensitive_and_exact() {
        assert_eq!(keyword(b"select"), Some(Keyword::Select));
        assert_eq!(keyword(b"SeLeCt"), Some(Keyword::Select));
        assert_eq!(keyword(b"selects"), None);
        assert_eq!(keyword(b"last_insert_id"), Some(Keyword::LastInsertId));
        assert_eq!(
            keyword(b"SQL_CALC_FOUND_ROWS"),
            Some(Keyword::SqlCalcFoundRows)
        );
        assert_eq!(keyword(b"x"), None);
        assert_eq!(keyword(b"SQL_CALC_FOUND_ROWSX"), None);
        assert_eq!(keyword("héllo".as_bytes()), None);
    }
}
