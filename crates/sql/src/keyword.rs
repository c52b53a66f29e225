//! Recognition of the few keywords the classifier and rewriter care about.

/// Keywords that steer classification. Everything else is `None`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Keyword {
    Aggregate,
    All,
    Alter,
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

/// Case-insensitive keyword lookup of an unquoted word.
pub fn keyword(word: &[u8]) -> Option<Keyword> {
    use Keyword::*;
    if word.len() < 2 || word.len() > MAX_KEYWORD_LEN || word[0].is_ascii_digit() {
        return None;
    }
    let mut upper = [0u8; MAX_KEYWORD_LEN];
    let upper = &mut upper[..word.len()];
    for (dst, src) in upper.iter_mut().zip(word) {
        *dst = src.to_ascii_uppercase();
    }
    Some(match &*upper {
        b"AGGREGATE" => Aggregate,
        b"ALL" => All,
        b"ALTER" => Alter,
        b"ATOMIC" => Atomic,
        b"BACKUP" => Backup,
        b"BEGIN" => Begin,
        b"CALL" => Call,
        b"CASE" => Case,
        b"COMMIT" => Commit,
        b"CREATE" => Create,
        b"DATABASES" => Databases,
        b"DEALLOCATE" => Deallocate,
        b"DELETE" => Delete,
        b"DESC" => Desc,
        b"DESCRIBE" => Describe,
        b"DISTINCT" | b"DISTINCTROW" => Distinct,
        b"DO" => Do,
        b"DROP" => Drop,
        b"ELSE" => Else,
        b"END" => End,
        b"EVENT" => Event,
        b"EXCEPT" => Except,
        b"EXECUTE" => Execute,
        b"EXPLAIN" => Explain,
        b"EXPORT" => Export,
        b"FOUND_ROWS" => FoundRows,
        b"FLUSH" => Flush,
        b"FOR" => For,
        b"FROM" => From,
        b"FUNCTION" => Function,
        b"GET_LOCK" => GetLock,
        b"GLOBAL" => Global,
        b"GROUP" => Group,
        b"HANDLER" => Handler,
        b"HAVING" => Having,
        b"IF" => If,
        b"INSERT" => Insert,
        b"INTERSECT" => Intersect,
        b"INTO" => Into,
        b"LAST_INSERT_ID" => LastInsertId,
        b"LASTVAL" => Lastval,
        b"LIMIT" => Limit,
        b"LOCAL" => Local,
        b"LOCK" => Lock,
        b"LOOP" => Loop,
        b"NOT" => Not,
        b"ORDER" => Order,
        b"PACKAGE" => Package,
        b"PREPARE" => Prepare,
        b"PROCEDURE" => Procedure,
        b"RELEASE" => Release,
        b"RELEASE_ALL_LOCKS" => ReleaseAllLocks,
        b"RELEASE_LOCK" => ReleaseLock,
        b"RENAME" => Rename,
        b"REPEAT" => Repeat,
        b"REPLACE" => Replace,
        b"ROLLBACK" => Rollback,
        b"ROW" => Row,
        b"ROW_COUNT" => RowCount,
        b"SAVEPOINT" => Savepoint,
        b"SCHEMAS" => Schemas,
        b"SELECT" => Select,
        b"SEQUENCE" => Sequence,
        b"SESSION" => Session,
        b"SET" => Set,
        b"SHOW" => Show,
        b"SQL_CALC_FOUND_ROWS" => SqlCalcFoundRows,
        b"START" => Start,
        b"STATEMENT" => Statement,
        b"TABLE" => Table,
        b"TABLES" => Tables,
        b"TEMPORARY" => Temporary,
        b"THEN" => Then,
        b"TO" => To,
        b"TRANSACTION" => Transaction,
        b"TRIGGER" => Trigger,
        b"TRUNCATE" => Truncate,
        b"UNION" => Union,
        b"UNLOCK" => Unlock,
        b"UPDATE" => Update,
        b"USE" => Use,
        b"VALUES" => Values,
        b"VIEW" => View,
        b"WHERE" => Where,
        b"WHILE" => While,
        b"WINDOW" => Window,
        b"WITH" => With,
        b"WORK" => Work,
        b"XA" => Xa,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!("héllo".as_bytes().len(), 6);
        assert_eq!(keyword("héllo".as_bytes()), None);
    }
}
