//! Unit tests of the merge pipeline on hand-made shard results.

use super::*;

fn column(
    name: &str,
    column_type: ColumnType,
    charset: u16,
    length: u32,
    flags: u16,
    decimals: u8,
) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        column_type,
        charset,
        length,
        flags,
        decimals,
        schema: String::new(),
        table: String::new(),
    }
}

fn int(name: &str) -> ColumnSpec {
    column(name, ColumnType::MYSQL_TYPE_LONG, 63, 11, BINARY_FLAG, 0)
}

fn text(name: &str) -> ColumnSpec {
    column(name, ColumnType::MYSQL_TYPE_VAR_STRING, 45, 80, 0, 0)
}

fn count(name: &str) -> ColumnSpec {
    column(
        name,
        ColumnType::MYSQL_TYPE_LONGLONG,
        63,
        21,
        NOT_NULL_FLAG | BINARY_FLAG,
        0,
    )
}

fn sum_of_int(name: &str) -> ColumnSpec {
    column(
        name,
        ColumnType::MYSQL_TYPE_NEWDECIMAL,
        63,
        33,
        BINARY_FLAG,
        0,
    )
}

fn rows(columns: &[ColumnSpec], data: &[&[Option<&str>]]) -> Rows {
    Rows {
        columns: columns.to_vec(),
        rows: data
            .iter()
            .map(|r| r.iter().map(|v| v.map(|s| s.as_bytes().to_vec())).collect())
            .collect(),
    }
}

fn texts(result: &Rows) -> Vec<Vec<Option<String>>> {
    result
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.as_ref().map(|b| String::from_utf8(b.clone()).unwrap()))
                .collect()
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn group_by_with_collation_sums_and_sorts_implicitly() {
    let cols = [text("k"), count("n"), sum_of_int("s")];
    let spec = MergeSpec {
        aggregate: true,
        group_by: vec![0],
        aggregates: vec![
            Aggregate {
                column: 1,
                kind: AggregateKind::Count,
            },
            Aggregate {
                column: 2,
                kind: AggregateKind::Sum,
            },
        ],
        visible_columns: 3,
        ..Default::default()
    };
    let a = rows(
        &cols,
        &[
            &[Some("b"), Some("2"), Some("5")],
            &[Some("a"), Some("1"), None],
        ],
    );
    let b = rows(
        &cols,
        &[
            &[Some("A "), Some("3"), Some("7")],
            &[Some("c"), Some("1"), Some("-1")],
        ],
    );
    let merged =
        merge_with_collations(&spec, &[collation_id("utf8mb4_general_ci")], vec![a, b]).unwrap();
    assert_eq!(
        texts(&merged),
        vec![
            vec![s("a"), s("4"), s("7")],
            vec![s("b"), s("2"), s("5")],
            vec![s("c"), s("1"), s("-1")],
        ]
    );
    // Without the column's collation the grouping is refused, not guessed.
    let a = rows(&cols, &[&[Some("b"), Some("2"), Some("5")]]);
    let err = merge(&spec, vec![a]).unwrap_err();
    assert_eq!(err.mysql_code(), (1235, "42000"));
}

#[test]
fn empty_input_without_group_by_gives_one_row() {
    let cols = [count("n"), sum_of_int("s"), int("m"), int("other")];
    let spec = MergeSpec {
        aggregate: true,
        aggregates: vec![
            Aggregate {
                column: 0,
                kind: AggregateKind::Count,
            },
            Aggregate {
                column: 1,
                kind: AggregateKind::Sum,
            },
            Aggregate {
                column: 2,
                kind: AggregateKind::Max,
            },
        ],
        visible_columns: 4,
        ..Default::default()
    };
    let merged = merge(&spec, vec![rows(&cols, &[]), rows(&cols, &[])]).unwrap();
    assert_eq!(texts(&merged), vec![vec![s("0"), None, None, None]]);
    // With GROUP BY, no rows stay no rows.
    let grouped = MergeSpec {
        group_by: vec![3],
        ..spec
    };
    assert!(
        merge(&grouped, vec![rows(&cols, &[])])
            .unwrap()
            .rows
            .is_empty()
    );
}

#[test]
fn avg_uses_hidden_count_and_reports_decimal_scale_plus_four() {
    let cols = [sum_of_int("avg(x)"), count("c")];
    let spec = MergeSpec {
        aggregate: true,
        aggregates: vec![Aggregate {
            column: 0,
            kind: AggregateKind::Avg { count_column: 1 },
        }],
        visible_columns: 1,
        ..Default::default()
    };
    let merged = merge(
        &spec,
        vec![
            rows(&cols, &[&[Some("3"), Some("2")]]),
            rows(&cols, &[&[Some("1"), Some("1")]]),
        ],
    )
    .unwrap();
    assert_eq!(texts(&merged), vec![vec![s("1.3333")]]);
    let column = &merged.columns[0];
    assert_eq!(
        (column.column_type, column.length, column.decimals),
        (ColumnType::MYSQL_TYPE_NEWDECIMAL, 16, 4)
    );
    let none = merge(&spec, vec![rows(&cols, &[&[None, Some("0")]])]).unwrap();
    assert_eq!(texts(&none), vec![vec![None]]);
}

#[test]
fn order_limit_offset_and_distinct() {
    let cols = [int("a"), int("b")];
    let spec = MergeSpec {
        distinct: true,
        order_by: vec![OrderKey {
            column: 0,
            descending: true,
        }],
        offset: 1,
        limit: Some(2),
        visible_columns: 1,
        ..Default::default()
    };
    let a = rows(
        &cols,
        &[
            &[Some("1"), Some("0")],
            &[None, Some("0")],
            &[Some("10"), Some("0")],
        ],
    );
    let b = rows(
        &cols,
        &[
            &[Some("9"), Some("0")],
            &[Some("10"), Some("1")],
            &[Some("2"), Some("0")],
        ],
    );
    let merged = merge(&spec, vec![a, b]).unwrap();
    assert_eq!(texts(&merged), vec![vec![s("9")], vec![s("2")]]);
    assert_eq!(merged.columns.len(), 1);
}

#[test]
fn having_filters_groups() {
    let cols = [int("k"), count("n")];
    let spec = MergeSpec {
        aggregate: true,
        group_by: vec![0],
        aggregates: vec![Aggregate {
            column: 1,
            kind: AggregateKind::Count,
        }],
        having: Some(Expr::Compare(
            CompareOp::Gt,
            Box::new(Expr::Column(1)),
            Box::new(Expr::Literal(Some(b"2".to_vec()))),
        )),
        visible_columns: 2,
        ..Default::default()
    };
    let a = rows(&cols, &[&[Some("1"), Some("2")], &[Some("2"), Some("1")]]);
    let b = rows(&cols, &[&[Some("1"), Some("1")], &[Some("2"), Some("1")]]);
    assert_eq!(
        texts(&merge(&spec, vec![a, b]).unwrap()),
        vec![vec![s("1"), s("3")]]
    );
}

#[test]
fn inexact_double_sums_are_refused() {
    let dbl = column("s", ColumnType::MYSQL_TYPE_DOUBLE, 63, 23, BINARY_FLAG, 31);
    let spec = MergeSpec {
        aggregate: true,
        aggregates: vec![Aggregate {
            column: 0,
            kind: AggregateKind::Sum,
        }],
        visible_columns: 1,
        ..Default::default()
    };
    // One shard's partial is the whole sum.
    let single = merge(
        &spec,
        vec![
            rows(
                std::slice::from_ref(&dbl),
                &[&[Some("0.30000000000000004")]],
            ),
            rows(std::slice::from_ref(&dbl), &[&[None]]),
        ],
    )
    .unwrap();
    assert_eq!(texts(&single), vec![vec![s("0.30000000000000004")]]);
    // Two partials: whether they were rounded inside the shards is unknowable.
    let two = merge(
        &spec,
        vec![
            rows(std::slice::from_ref(&dbl), &[&[Some("1.5")]]),
            rows(std::slice::from_ref(&dbl), &[&[Some("0.25")]]),
        ],
    );
    assert!(matches!(two, Err(MergeError::Unsupported(_))));
    // SUM(DISTINCT) adds raw values itself: fine while every addition is exact.
    let distinct = MergeSpec {
        aggregates: vec![Aggregate {
            column: 0,
            kind: AggregateKind::SumDistinct,
        }],
        ..spec
    };
    let exact = merge(
        &distinct,
        vec![
            rows(
                std::slice::from_ref(&dbl),
                &[&[Some("1.5")], &[Some("0.25")]],
            ),
            rows(std::slice::from_ref(&dbl), &[&[Some("1.5")]]),
        ],
    )
    .unwrap();
    assert_eq!(texts(&exact), vec![vec![s("1.75")]]);
    let inexact = merge(
        &distinct,
        vec![
            rows(std::slice::from_ref(&dbl), &[&[Some("0.1")]]),
            rows(&[dbl], &[&[Some("0.2")]]),
        ],
    );
    assert!(matches!(inexact, Err(MergeError::Unsupported(_))));
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let spec = MergeSpec {
        visible_columns: 1,
        order_by: vec![OrderKey {
            column: 3,
            descending: false,
        }],
        ..Default::default()
    };
    assert!(matches!(merge(&spec, vec![]), Err(MergeError::Invalid(_))));
    let cols = [int("a")];
    assert!(matches!(
        merge(&spec, vec![rows(&cols, &[&[Some("1")]])]),
        Err(MergeError::Invalid(_))
    ));
    let spec = MergeSpec {
        visible_columns: 1,
        order_by: vec![OrderKey {
            column: 0,
            descending: false,
        }],
        ..Default::default()
    };
    assert!(matches!(
        merge(&spec, vec![rows(&cols, &[&[Some("x")]])]),
        Err(MergeError::Invalid(_))
    ));
    let ragged = Rows {
        columns: cols.to_vec(),
        rows: vec![vec![]],
    };
    assert!(matches!(
        merge(&spec, vec![ragged]),
        Err(MergeError::Invalid(_))
    ));
    let two = rows(&[int("a"), int("b")], &[]);
    assert!(matches!(
        merge(&spec, vec![rows(&cols, &[]), two]),
        Err(MergeError::Invalid(_))
    ));
}

#[test]
fn raw_rows_of_a_join_are_groups_of_one() {
    let double = column(
        "SUM(d)",
        ColumnType::MYSQL_TYPE_DOUBLE,
        63,
        23,
        BINARY_FLAG,
        31,
    );
    let spec = MergeSpec {
        aggregate: true,
        aggregates: vec![
            Aggregate {
                column: 0,
                kind: AggregateKind::Count,
            },
            Aggregate {
                column: 1,
                kind: AggregateKind::Sum,
            },
        ],
        visible_columns: 2,
        ..Default::default()
    };
    // COUNT(x) cells hold 1 or NULL; SUM cells the raw values.
    let input = rows(
        &[count("COUNT(x)"), double.clone()],
        &[
            &[Some("1"), Some("0.5")],
            &[None, Some("0.25")],
            &[Some("1"), None],
        ],
    );
    let out = merge_raw_rows(&spec, &[], input.clone()).unwrap();
    assert_eq!(texts(&out), vec![vec![s("2"), s("0.75")]]);
    // The same rows as shards' partial DOUBLE sums cannot be added exactly.
    assert!(matches!(
        merge(&spec, vec![input]),
        Err(MergeError::Unsupported(_))
    ));
    // Raw DOUBLE values whose sum rounds are refused, not approximated.
    let rounding = rows(
        &[count("COUNT(x)"), double],
        &[&[Some("1"), Some("0.1")], &[Some("1"), Some("0.2")]],
    );
    assert!(matches!(
        merge_raw_rows(&spec, &[], rounding),
        Err(MergeError::Unsupported(_))
    ));
}
