//! Combines the results several shards returned for one scattered query into
//! the result a single MariaDB would have given: grouping and aggregates,
//! HAVING, DISTINCT, ORDER BY with each column's collation, LIMIT/OFFSET.
//!
//! Whatever cannot be reproduced exactly is an error, never an approximation: unknown
//! collations, ENUM/SET ordering, DOUBLE sums whose partials do not add up exactly,
//! decimals beyond 38 digits.

pub(crate) mod collation;
mod collation_tables;
pub mod decimal;
pub mod double;
mod expr;
mod value;

use std::collections::{HashMap, HashSet};

use tessera_wire::{ColumnSpec, ColumnType};

use decimal::{Decimal, MAX_SCALE};
use value::{BINARY_FLAG, GROUP_FLAG, Key, Kind, NOT_NULL_FLAG, UNSIGNED_FLAG};

pub use double::format_double;

/// One result set: column definitions and text-protocol rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<ColumnSpec>,
    pub rows: Vec<Vec<Option<Vec<u8>>>>,
}

impl From<tessera_wire::QueryResult> for Rows {
    fn from(result: tessera_wire::QueryResult) -> Self {
        Rows {
            columns: result.specs,
            rows: result.rows,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateKind {
    /// Shards returned partial COUNT(...) (BIGINT); result = sum of them (0 when no rows).
    Count,
    /// Shards returned partial SUM(x); result = sum, NULL when every partial is NULL.
    Sum,
    Min,
    Max,
    /// Shards returned the raw value (the planner grouped by it on the shards); result = number of
    /// distinct non-NULL values in the group, compared with the column's collation.
    CountDistinct,
    /// As CountDistinct, but the sum of the distinct values.
    SumDistinct,
    /// Shards returned partial SUM(x) in this column and partial COUNT(x) in `count_column`
    /// (a hidden column); result = sum/count with MariaDB's AVG scale and rounding.
    Avg {
        count_column: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    pub column: usize,
    pub kind: AggregateKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderKey {
    pub column: usize,
    pub descending: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeSpec {
    /// True when the query aggregates (has aggregates or GROUP BY): rows are grouped.
    pub aggregate: bool,
    /// Columns forming the group key (empty + aggregate = one group, and MariaDB then returns
    /// exactly one row even when there are no input rows: COUNT 0, SUM/MIN/MAX/AVG NULL, other
    /// columns NULL). With no `order_by`, groups come out sorted by this key ascending, as
    /// MariaDB 10.11 sorts GROUP BY results implicitly.
    pub group_by: Vec<usize>,
    pub aggregates: Vec<Aggregate>,
    /// Evaluated on each merged group (after aggregation); rows where it is not true are dropped.
    pub having: Option<Expr>,
    /// Deduplicate on the visible columns (after HAVING, before ORDER BY/LIMIT).
    pub distinct: bool,
    pub order_by: Vec<OrderKey>,
    pub offset: u64,
    pub limit: Option<u64>,
    /// Columns 0..visible_columns are returned; later ones are hidden helpers and dropped last.
    pub visible_columns: usize,
    /// Columns whose value the gate computes after aggregation (an expression around
    /// aggregates): (column, expression over the merged row). The shards' own value of the
    /// column only gives its type, which the computed value is formatted to. Evaluated
    /// before HAVING, DISTINCT and ORDER BY, which may use them.
    pub computed: Vec<(usize, Expr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `<=>`
    NullSafeEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A small expression tree for HAVING (and later, gate-side filters). Columns are indices into
/// the merged row (before hidden columns are dropped).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(usize),
    /// A number in its decimal text ("5", "-2.50", "1e3") or NULL. Text that is not a
    /// number is taken as a string literal, but prefer `Str` for strings: `'5'` and `5`
    /// compare differently with a text column.
    Literal(Option<Vec<u8>>),
    /// A string literal (UTF-8); it takes the collation of what it is compared with.
    Str(Vec<u8>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsNull(Box<Expr>),
    IsNotNull(Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    InList(Box<Expr>, Vec<Expr>),
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `ROUND(x, digits)` with constant digits (negative rounds left of the point).
    Round(Box<Expr>, i32),
    /// `CONCAT(...)`: NULL when any argument is; numbers as MariaDB prints them.
    Concat(Vec<Expr>),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum MergeError {
    /// The merge cannot reproduce MariaDB's answer exactly.
    #[error("unsupported in a cross-shard query: {0}")]
    Unsupported(String),
    /// The shard results or the spec do not fit together.
    #[error("cannot merge shard results: {0}")]
    Invalid(String),
    /// A value MariaDB itself would reject as out of range.
    #[error("{0}")]
    OutOfRange(String),
}

impl MergeError {
    /// The MySQL error code and SQLSTATE the session sends for this error.
    pub fn mysql_code(&self) -> (u16, &'static str) {
        match self {
            MergeError::Unsupported(_) => (1235, "42000"),
            MergeError::Invalid(_) => (1105, "HY000"),
            MergeError::OutOfRange(_) => (1690, "22003"),
        }
    }
}

/// The id of a collation the merge reproduces, by its MariaDB name (as
/// information_schema.COLUMNS.COLLATION_NAME gives it); None for any other collation.
pub fn collation_id(name: &str) -> Option<u16> {
    let id = match name.to_ascii_lowercase().as_str() {
        "binary" => 63,
        "utf8mb4_general_ci" => 45,
        "utf8mb3_general_ci" | "utf8_general_ci" => 33,
        "utf8mb4_bin" => 46,
        "utf8mb3_bin" | "utf8_bin" => 83,
        "utf8mb4_nopad_bin" => 1070,
        "utf8mb3_nopad_bin" | "utf8_nopad_bin" => 1107,
        "utf8mb4_general_nopad_ci" => 1069,
        "utf8mb3_general_nopad_ci" | "utf8_general_nopad_ci" => 1057,
        "latin1_swedish_ci" => 8,
        "latin1_swedish_nopad_ci" => 1032,
        "latin1_bin" => 47,
        "latin1_nopad_bin" => 1071,
        _ => return None,
    };
    debug_assert!(collation::Collation::by_id(id).is_some());
    Some(id)
}

type Row = Vec<Option<Vec<u8>>>;

/// Combines the shards' results of one query as `spec` describes, knowing no column's
/// collation: comparing any text column (other than binary strings) is then an
/// Unsupported error. Use `merge_with_collations` when the schema knows them.
pub fn merge(spec: &MergeSpec, inputs: Vec<Rows>) -> Result<Rows, MergeError> {
    merge_with_collations(spec, &[], inputs)
}

/// Combines the shards' results of one query as `spec` describes. `collations[i]` is the
/// declared collation id of text column `i` as the schema knows it (see `collation_id`).
/// It is needed because result metadata carries only the connection's collation (45 for
/// every text column of a utf8mb4 client, whatever the column's own collation), so a text
/// column compared without an entry here is an Unsupported error, never a guess. Binary
/// strings (metadata collation 63) need no entry.
pub fn merge_with_collations(
    spec: &MergeSpec,
    collations: &[Option<u16>],
    inputs: Vec<Rows>,
) -> Result<Rows, MergeError> {
    merge_inputs(spec, collations, inputs, Addend::Partial)
}

/// Like `merge_with_collations`, for rows the gate assembled itself (a join it ran):
/// each row stands for itself, not for a shard's group. The columns must still be those a
/// shard would have returned for the scatter query (its partial COUNT / SUM columns give the
/// types), while each row holds raw values: `1` (or NULL) in a COUNT column, the argument's
/// value in a SUM/AVG/MIN/MAX column. DOUBLE values are then added exactly or refused, as
/// SUM(DISTINCT) adds them, since the order one server would add them in is unknown.
pub fn merge_raw_rows(
    spec: &MergeSpec,
    collations: &[Option<u16>],
    rows: Rows,
) -> Result<Rows, MergeError> {
    merge_inputs(spec, collations, vec![rows], Addend::Raw)
}

fn merge_inputs(
    spec: &MergeSpec,
    collations: &[Option<u16>],
    inputs: Vec<Rows>,
    addend: Addend,
) -> Result<Rows, MergeError> {
    let input_columns = validate(spec, &inputs)?;
    let declared = |i: usize| collations.get(i).copied().flatten();
    let input_kinds: Vec<Result<Kind, MergeError>> = input_columns
        .iter()
        .enumerate()
        .map(|(i, c)| value::column_kind(c, declared(i)))
        .collect();
    let all_rows = inputs.into_iter().flat_map(|input| input.rows);

    let (columns, mut rows) = if spec.aggregate {
        aggregate(spec, &input_columns, &input_kinds, all_rows, addend)?
    } else {
        (input_columns.clone(), all_rows.collect())
    };
    let kinds: Vec<Result<Kind, MergeError>> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| value::column_kind(c, declared(i)))
        .collect();

    if !spec.computed.is_empty() {
        for (column, _) in &spec.computed {
            if *column >= columns.len() {
                return Err(MergeError::Invalid(format!(
                    "a computed column {column} of a {}-column result",
                    columns.len()
                )));
            }
        }
        let expr_columns = expr::columns_of(&columns, &kinds);
        for row in &mut rows {
            let mut values = Vec::with_capacity(spec.computed.len());
            for (column, e) in &spec.computed {
                values.push(expr::compute(e, &expr_columns, row, &columns[*column])?);
            }
            for ((column, _), value) in spec.computed.iter().zip(values) {
                row[*column] = value;
            }
        }
    }

    if let Some(having) = &spec.having {
        let expr_columns = expr::columns_of(&columns, &kinds);
        let mut kept = Vec::with_capacity(rows.len());
        for row in rows {
            if expr::is_true(having, &expr_columns, &row)? {
                kept.push(row);
            }
        }
        rows = kept;
    }

    if spec.distinct {
        let visible: Vec<usize> = (0..spec.visible_columns).collect();
        let mut seen = HashSet::with_capacity(rows.len());
        let mut kept = Vec::with_capacity(rows.len());
        for row in rows {
            if seen.insert(row_key(&row, &visible, &columns, &kinds)?) {
                kept.push(row);
            }
        }
        rows = kept;
    }

    let implicit_order: Vec<OrderKey>;
    let order = if spec.order_by.is_empty() && spec.aggregate {
        implicit_order = spec
            .group_by
            .iter()
            .map(|&column| OrderKey {
                column,
                descending: false,
            })
            .collect();
        &implicit_order
    } else {
        &spec.order_by
    };
    if !order.is_empty() {
        let columns_of_order: Vec<usize> = order.iter().map(|k| k.column).collect();
        let mut keyed = Vec::with_capacity(rows.len());
        for row in rows {
            keyed.push((row_key(&row, &columns_of_order, &columns, &kinds)?, row));
        }
        keyed.sort_by(|(a, _), (b, _)| {
            for ((ka, kb), o) in a.iter().zip(b).zip(order) {
                let ordering = ka.cmp(kb);
                let ordering = if o.descending {
                    ordering.reverse()
                } else {
                    ordering
                };
                if ordering.is_ne() {
                    return ordering;
                }
            }
            std::cmp::Ordering::Equal
        });
        rows = keyed.into_iter().map(|(_, row)| row).collect();
    }

    let offset = usize::try_from(spec.offset).unwrap_or(usize::MAX);
    let limit = spec
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut rows: Vec<Row> = rows.into_iter().skip(offset).take(limit).collect();
    for row in &mut rows {
        row.truncate(spec.visible_columns);
    }
    let mut columns = columns;
    columns.truncate(spec.visible_columns);
    Ok(Rows { columns, rows })
}

/// Checks that the inputs agree with each other and with the spec; returns the columns.
fn validate(spec: &MergeSpec, inputs: &[Rows]) -> Result<Vec<ColumnSpec>, MergeError> {
    let invalid = |m: String| Err(MergeError::Invalid(m));
    let Some(first) = inputs.first() else {
        return invalid("no shard results to merge".into());
    };
    let width = first.columns.len();
    for (i, input) in inputs.iter().enumerate() {
        if input.columns.len() != width {
            return invalid(format!(
                "shard result {i} has {} columns, the first has {width}",
                input.columns.len()
            ));
        }
        for (a, b) in input.columns.iter().zip(&first.columns) {
            if a.column_type != b.column_type || a.decimals != b.decimals && !is_text(a) {
                return invalid(format!(
                    "column `{}` has type {:?}({}) in one shard and {:?}({}) in another",
                    a.name, a.column_type, a.decimals, b.column_type, b.decimals
                ));
            }
        }
        if let Some(row) = input.rows.iter().find(|r| r.len() != width) {
            return invalid(format!(
                "a row of shard result {i} has {} values for {width} columns",
                row.len()
            ));
        }
    }
    let check = |column: usize, what: &str| {
        if column >= width {
            Err(MergeError::Invalid(format!(
                "{what} refers to column {column} of a {width}-column result"
            )))
        } else {
            Ok(())
        }
    };
    if spec.visible_columns > width {
        return invalid(format!(
            "{} visible columns asked of a {width}-column result",
            spec.visible_columns
        ));
    }
    for &c in &spec.group_by {
        check(c, "GROUP BY")?;
    }
    for a in &spec.aggregates {
        check(a.column, "an aggregate")?;
        if let AggregateKind::Avg { count_column } = a.kind {
            check(count_column, "AVG's count")?;
        }
    }
    for o in &spec.order_by {
        check(o.column, "ORDER BY")?;
    }
    Ok(first.columns.clone())
}

fn is_text(column: &ColumnSpec) -> bool {
    column.charset != 63
}

/// The comparison keys of `row` at `indices`.
fn row_key(
    row: &[Option<Vec<u8>>],
    indices: &[usize],
    columns: &[ColumnSpec],
    kinds: &[Result<Kind, MergeError>],
) -> Result<Vec<Key>, MergeError> {
    indices
        .iter()
        .map(|&i| {
            let value = row.get(i).and_then(|v| v.as_deref());
            if value.is_none() {
                return Ok(Key::Null);
            }
            let kind = kinds[i].clone()?;
            value::key_of(kind, value, &columns[i].name)
        })
        .collect()
}

/// A running total of DOUBLE values the gate adds itself (SUM(DISTINCT)): refused as soon
/// as an addition rounds, so the result is the exact sum, whatever order one server used.
#[derive(Debug, Default, Clone)]
struct DoubleSum {
    total: f64,
}

impl DoubleSum {
    fn add(&mut self, value: f64, column: &str) -> Result<(), MergeError> {
        let sum = self.total + value;
        let back = sum - self.total;
        let error = (self.total - (sum - back)) + (value - back);
        if error != 0.0 || !sum.is_finite() {
            return Err(MergeError::Unsupported(format!(
                "a DOUBLE sum of `{column}` across shards that floating point cannot add exactly"
            )));
        }
        self.total = sum;
        Ok(())
    }
}

/// Whether a value added to a total is a shard's partial sum or a raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addend {
    Partial,
    Raw,
}

/// A running SUM of one kind of number.
#[derive(Debug, Clone)]
enum Total {
    Exact(Decimal),
    Double(DoubleSum),
}

fn add_to(
    total: &mut Option<Total>,
    kind: Kind,
    text: &[u8],
    column: &str,
    addend: Addend,
) -> Result<(), MergeError> {
    let bad = || {
        MergeError::Invalid(format!(
            "column `{column}` holds {:?}, which is not a number",
            String::from_utf8_lossy(text)
        ))
    };
    match kind {
        Kind::Int { .. } | Kind::Decimal => {
            let value = Decimal::parse(text).ok_or_else(bad)?;
            let sum = match total {
                None => value,
                Some(Total::Exact(sum)) => sum.checked_add(value).ok_or_else(|| {
                    MergeError::Unsupported(format!(
                        "the sum of `{column}` needs more than 38 digits"
                    ))
                })?,
                Some(Total::Double(_)) => return Err(bad()),
            };
            *total = Some(Total::Exact(sum));
        }
        Kind::Double => {
            let value = value::parse_double(text).ok_or_else(bad)?;
            let mut sum = match total.take() {
                None => DoubleSum::default(),
                Some(Total::Double(_)) if addend == Addend::Partial => {
                    // One server adds every row to one running total in scan order; the
                    // shards' partial totals round differently (seen: 62.11399999999997 on
                    // one server, 62.11400000000001 from two partials), and nothing in a
                    // partial tells whether it was rounded.
                    return Err(MergeError::Unsupported(format!(
                        "SUM/AVG of the DOUBLE column `{column}` over rows of several shards"
                    )));
                }
                Some(Total::Double(sum)) => sum,
                Some(Total::Exact(_)) => return Err(bad()),
            };
            sum.add(value, column)?;
            *total = Some(Total::Double(sum));
        }
        _ => {
            return Err(MergeError::Unsupported(format!(
                "SUM/AVG of the non-numeric column `{column}` across shards"
            )));
        }
    }
    Ok(())
}

/// The per-group state of one aggregate.
#[derive(Debug, Clone)]
enum State {
    Count(i128),
    Sum(Option<Total>),
    Best(Option<(Key, Vec<u8>)>),
    Distinct(HashSet<Key>, Vec<Vec<u8>>),
    Avg(Option<Total>, i128),
}

struct Group {
    first: Row,
    states: Vec<State>,
}

fn aggregate(
    spec: &MergeSpec,
    columns: &[ColumnSpec],
    kinds: &[Result<Kind, MergeError>],
    rows: impl Iterator<Item = Row>,
    addend: Addend,
) -> Result<(Vec<ColumnSpec>, Vec<Row>), MergeError> {
    let kind_of = |i: usize| kinds[i].clone();
    let initial: Vec<State> = spec
        .aggregates
        .iter()
        .map(|a| match a.kind {
            AggregateKind::Count => State::Count(0),
            AggregateKind::Sum => State::Sum(None),
            AggregateKind::Min | AggregateKind::Max => State::Best(None),
            AggregateKind::CountDistinct | AggregateKind::SumDistinct => {
                State::Distinct(HashSet::new(), Vec::new())
            }
            AggregateKind::Avg { .. } => State::Avg(None, 0),
        })
        .collect();
    let mut index: HashMap<Vec<Key>, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for row in rows {
        let key = row_key(&row, &spec.group_by, columns, kinds)?;
        let slot = match index.get(&key) {
            Some(&slot) => slot,
            None => {
                groups.push(Group {
                    first: row.clone(),
                    states: initial.clone(),
                });
                index.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        let group = &mut groups[slot];
        for (a, state) in spec.aggregates.iter().zip(&mut group.states) {
            let name = &columns[a.column].name;
            let value = row[a.column].as_deref();
            match state {
                State::Count(n) => {
                    if let Some(v) = value {
                        let partial = value::parse_int(v).ok_or_else(|| {
                            MergeError::Invalid(format!(
                                "COUNT column `{name}` holds a non-integer"
                            ))
                        })?;
                        *n += partial;
                    }
                }
                State::Sum(total) => {
                    if let Some(v) = value {
                        add_to(total, kind_of(a.column)?, v, name, addend)?;
                    }
                }
                State::Best(best) => {
                    if let Some(v) = value {
                        let key = value::key_of(kind_of(a.column)?, Some(v), name)?;
                        let better = match best {
                            None => true,
                            Some((current, _)) => {
                                if a.kind == AggregateKind::Min {
                                    key < *current
                                } else {
                                    key > *current
                                }
                            }
                        };
                        if better {
                            *best = Some((key, v.to_vec()));
                        }
                    }
                }
                State::Distinct(seen, values) => {
                    if let Some(v) = value {
                        let key = value::key_of(kind_of(a.column)?, Some(v), name)?;
                        if seen.insert(key) {
                            values.push(v.to_vec());
                        }
                    }
                }
                State::Avg(total, count) => {
                    let AggregateKind::Avg { count_column } = a.kind else {
                        unreachable!("Avg state only for AVG");
                    };
                    if let Some(v) = value {
                        add_to(total, kind_of(a.column)?, v, name, addend)?;
                    }
                    if let Some(c) = row[count_column].as_deref() {
                        *count += value::parse_int(c).ok_or_else(|| {
                            MergeError::Invalid(format!(
                                "AVG's count column `{}` holds a non-integer",
                                columns[count_column].name
                            ))
                        })?;
                    }
                }
            }
        }
    }
    if groups.is_empty() && spec.group_by.is_empty() {
        groups.push(Group {
            first: vec![None; columns.len()],
            states: initial,
        });
    }

    let mut out_columns = columns.to_vec();
    for column in &mut out_columns {
        // MariaDB leaks its internal GROUP_FLAG on columns of a multi-column GROUP BY; the
        // shards' GROUP BY (with the planner's extra keys) is not the query's.
        column.flags &= !GROUP_FLAG;
    }
    for a in &spec.aggregates {
        out_columns[a.column] = aggregate_column(&columns[a.column], a.kind)?;
    }
    let mut out_rows = Vec::with_capacity(groups.len());
    for group in groups {
        let mut row = group.first;
        for (a, state) in spec.aggregates.iter().zip(group.states) {
            let input = &columns[a.column];
            row[a.column] = match state {
                State::Count(n) => Some(n.to_string().into_bytes()),
                State::Sum(total) => format_total(total, input)?,
                State::Best(best) => best.map(|(_, v)| v),
                State::Distinct(_, values) => {
                    if a.kind == AggregateKind::CountDistinct {
                        Some(values.len().to_string().into_bytes())
                    } else {
                        let kind = kind_of(a.column)?;
                        // MariaDB adds distinct values in ascending order (it walks a sorted
                        // tree of them); doing the same keeps DOUBLE sums identical.
                        let mut keyed = Vec::with_capacity(values.len());
                        for v in values {
                            keyed.push((value::key_of(kind, Some(&v), &input.name)?, v));
                        }
                        keyed.sort_by(|a, b| a.0.cmp(&b.0));
                        let mut total = None;
                        for (_, v) in &keyed {
                            add_to(&mut total, kind, v, &input.name, Addend::Raw)?;
                        }
                        let out = &out_columns[a.column];
                        format_total(total, out)?
                    }
                }
                State::Avg(total, count) => {
                    let AggregateKind::Avg { count_column } = a.kind else {
                        unreachable!("Avg state only for AVG");
                    };
                    row[count_column] = Some(count.to_string().into_bytes());
                    average(total, count, input, &out_columns[a.column])?
                }
            };
        }
        out_rows.push(row);
    }
    Ok((out_columns, out_rows))
}

/// A SUM's text: DECIMAL at the column's scale, integers as they are, DOUBLE as MariaDB
/// prints it; NULL when nothing was summed.
fn format_total(total: Option<Total>, column: &ColumnSpec) -> Result<Option<Vec<u8>>, MergeError> {
    Ok(match total {
        None => None,
        Some(Total::Double(sum)) => Some(format_double(sum.total).into_bytes()),
        Some(Total::Exact(sum)) => {
            let scale = if is_decimal(column) {
                u32::from(column.decimals)
            } else {
                0
            };
            let sum = sum.round_to(scale).ok_or_else(|| {
                MergeError::Unsupported(format!(
                    "the sum of `{}` needs more than 38 digits",
                    column.name
                ))
            })?;
            Some(sum.to_string().into_bytes())
        }
    })
}

fn average(
    total: Option<Total>,
    count: i128,
    input: &ColumnSpec,
    output: &ColumnSpec,
) -> Result<Option<Vec<u8>>, MergeError> {
    if count == 0 {
        return Ok(None);
    }
    Ok(match total {
        None => None,
        Some(Total::Double(sum)) => Some(format_double(sum.total / count as f64).into_bytes()),
        Some(Total::Exact(sum)) => {
            let scale = u32::from(output.decimals);
            let avg = sum
                .checked_div(Decimal::from_int(count), scale)
                .ok_or_else(|| {
                    MergeError::Unsupported(format!(
                        "the average of `{}` needs more than 38 digits",
                        input.name
                    ))
                })?;
            Some(avg.to_string().into_bytes())
        }
    })
}

pub(crate) fn is_decimal(column: &ColumnSpec) -> bool {
    matches!(
        column.column_type,
        ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL
    )
}

pub(crate) fn is_float(column: &ColumnSpec) -> bool {
    matches!(
        column.column_type,
        ColumnType::MYSQL_TYPE_DOUBLE | ColumnType::MYSQL_TYPE_FLOAT
    )
}

pub(crate) fn is_integer(column: &ColumnSpec) -> bool {
    use ColumnType::*;
    matches!(
        column.column_type,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_YEAR
    )
}

/// A column whose text values are numbers a server reads back unquoted.
pub(crate) fn is_numeric(column: &ColumnSpec) -> bool {
    is_integer(column) || is_decimal(column) || is_float(column)
}

/// MariaDB's precision of a numeric column from its display length.
fn precision_of(column: &ColumnSpec) -> u32 {
    let sign = u32::from(column.flags & UNSIGNED_FLAG == 0);
    let point = u32::from(column.decimals > 0 && is_decimal(column));
    column.length.saturating_sub(sign + point)
}

fn double_column(like: &ColumnSpec) -> ColumnSpec {
    ColumnSpec {
        column_type: ColumnType::MYSQL_TYPE_DOUBLE,
        charset: 63,
        length: 23,
        flags: BINARY_FLAG,
        decimals: 31,
        ..like.clone()
    }
}

fn decimal_column(like: &ColumnSpec, precision: u32, scale: u32) -> ColumnSpec {
    ColumnSpec {
        column_type: ColumnType::MYSQL_TYPE_NEWDECIMAL,
        charset: 63,
        length: precision + 1 + u32::from(scale > 0),
        flags: BINARY_FLAG,
        decimals: scale as u8,
        ..like.clone()
    }
}

/// The column definition MariaDB reports for the aggregate, given the shards' column.
fn aggregate_column(input: &ColumnSpec, kind: AggregateKind) -> Result<ColumnSpec, MergeError> {
    Ok(match kind {
        AggregateKind::Count | AggregateKind::Sum | AggregateKind::Min | AggregateKind::Max => {
            input.clone()
        }
        AggregateKind::CountDistinct => ColumnSpec {
            column_type: ColumnType::MYSQL_TYPE_LONGLONG,
            charset: 63,
            length: 21,
            flags: NOT_NULL_FLAG | BINARY_FLAG,
            decimals: 0,
            ..input.clone()
        },
        AggregateKind::SumDistinct => {
            if is_float(input) {
                double_column(input)
            } else if is_integer(input) || is_decimal(input) {
                let scale = if is_decimal(input) {
                    u32::from(input.decimals)
                } else {
                    0
                };
                decimal_column(input, (precision_of(input) + 22).min(65), scale)
            } else {
                return Err(MergeError::Unsupported(format!(
                    "SUM(DISTINCT) of the non-numeric column `{}` across shards",
                    input.name
                )));
            }
        }
        AggregateKind::Avg { .. } => {
            // `input` is the shards' SUM column: DOUBLE for floats, else DECIMAL(p + 22, s).
            if is_float(input) {
                double_column(input)
            } else if is_integer(input) || is_decimal(input) {
                let scale = if is_decimal(input) {
                    u32::from(input.decimals)
                } else {
                    0
                };
                let sum_precision = precision_of(&ColumnSpec {
                    flags: 0,
                    ..input.clone()
                });
                let precision = if sum_precision >= 65 {
                    65
                } else {
                    (sum_precision.saturating_sub(22) + 4).min(65)
                };
                decimal_column(input, precision, (scale + 4).min(MAX_SCALE))
            } else {
                return Err(MergeError::Unsupported(format!(
                    "AVG of the non-numeric column `{}` across shards",
                    input.name
                )));
            }
        }
    })
}

#[cfg(test)]
mod tests;
