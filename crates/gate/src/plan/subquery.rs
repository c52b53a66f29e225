//! Uncorrelated subqueries in the WHERE clause of a query over several
//! shards: the gate runs each first, writes its values into the outer query
//! and plans that again (so `id IN (SELECT ...)` can even route by vindex).
//! A subquery that refers to the outer query's tables is refused: it would
//! need a join the shards cannot do alone.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Query, Select, SetExpr, TableFactor, Value, ValueWithSpan, visit_expressions,
    visit_expressions_mut,
};
use sqlparser::tokenizer::Span;

use super::select::{column_ref, contains_subquery};
use super::{Plan, PlanContext, PlanError, PlanResult};

/// How a subquery's answer goes back into the outer query.
#[derive(Debug, Clone)]
pub enum PulledKind {
    /// `expr [NOT] IN (subquery)`: a list of literals, or TRUE/FALSE when
    /// the subquery returned nothing.
    In { expr: String, negated: bool },
    /// `(subquery)` as a value: its single value, NULL when no row.
    Scalar,
    /// `[NOT] EXISTS (subquery)`.
    Exists { negated: bool },
}

#[derive(Debug, Clone)]
pub struct Pulled {
    pub sql: String,
    pub kind: PulledKind,
    /// The text in the outer query the answer replaces.
    pub marker: String,
}

fn marker(n: usize) -> String {
    format!("\u{2}{n}\u{2}")
}

/// The subquery's own tables: names and aliases it may qualify columns with.
fn own_tables(query: &Query) -> PlanResult<(Vec<(String, String)>, bool)> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(PlanError::unsupported(
            "a UNION inside a subquery of a query over several shards",
        ));
    };
    let mut out = Vec::new();
    for twj in &select.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            match factor {
                TableFactor::Table { name, alias, .. } => {
                    let table = name
                        .0
                        .last()
                        .map(|p| p.to_string().trim_matches('`').to_string())
                        .unwrap_or_default();
                    let refname = alias
                        .as_ref()
                        .map(|a| a.name.value.clone())
                        .unwrap_or_else(|| table.clone());
                    out.push((refname, table));
                }
                _ => {
                    return Err(PlanError::unsupported(
                        "a derived table inside a subquery of a query over several shards",
                    ));
                }
            }
        }
    }
    let nested = contains_subquery(select.as_ref());
    Ok((out, nested))
}

/// Refuses a subquery that refers to anything outside itself.
fn check_uncorrelated(ctx: &PlanContext<'_>, keyspace: &str, query: &Query) -> PlanResult<()> {
    let (tables, nested) = own_tables(query)?;
    if nested {
        return Err(PlanError::unsupported(
            "nested subqueries in a query over several shards",
        ));
    }
    let refnames: HashSet<&str> = tables.iter().map(|(r, _)| r.as_str()).collect();
    let mut problem: Option<String> = None;
    let _ = visit_expressions(query, |e| {
        if let Some((qualifier, column)) = column_ref(e) {
            match qualifier {
                Some(q) if !refnames.contains(q) => {
                    problem = Some(format!("{q}.{column}"));
                    return ControlFlow::Break(());
                }
                Some(_) => {}
                None => {
                    // An unqualified name is the subquery's own only if one
                    // of its tables has that column (MySQL looks inside
                    // first); unknown schemas are not guessed at.
                    let known = tables.iter().any(|(_, t)| {
                        ctx.schema
                            .and_then(|s| s.table(keyspace, t))
                            .is_some_and(|schema| schema.column(&column).is_some())
                    });
                    if !known {
                        problem = Some(column);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    match problem {
        None => Ok(()),
        Some(name) => Err(PlanError::unsupported(format!(
            "a correlated subquery (column {name} is not one of the subquery's own tables' known columns) in a query over several shards"
        ))),
    }
}

/// Replaces the WHERE clause's subqueries by markers; None when there is
/// none. Subqueries elsewhere (select list, HAVING, FROM) are refused.
pub(super) fn pull_out(
    ctx: &PlanContext<'_>,
    keyspace: &str,
    query: &Query,
    select: &Select,
    stays_on_shard: &dyn Fn(&Query) -> bool,
) -> PlanResult<Option<Plan>> {
    let in_where = select.selection.as_ref().is_some_and(contains_subquery);
    if !in_where {
        return Ok(None);
    }
    let mut outer = query.clone();
    let SetExpr::Select(outer_select) = outer.body.as_mut() else {
        return Ok(None);
    };
    let mut pulled: Vec<Pulled> = Vec::new();
    let mut failure: Option<PlanError> = None;
    if let Some(selection) = &mut outer_select.selection {
        let _ = visit_expressions_mut(selection, |e| {
            let replaced = match e {
                Expr::InSubquery {
                    expr,
                    subquery,
                    negated,
                } => Some((
                    subquery.as_ref().clone(),
                    PulledKind::In {
                        expr: expr.to_string(),
                        negated: *negated,
                    },
                )),
                Expr::Exists { subquery, negated } => Some((
                    subquery.as_ref().clone(),
                    PulledKind::Exists { negated: *negated },
                )),
                Expr::Subquery(subquery) => Some((subquery.as_ref().clone(), PulledKind::Scalar)),
                _ => None,
            };
            if let Some((subquery, kind)) = replaced {
                if stays_on_shard(&subquery) {
                    return ControlFlow::Continue(());
                }
                if let Err(err) = check_uncorrelated(ctx, keyspace, &subquery) {
                    failure = Some(err);
                    return ControlFlow::Break(());
                }
                let m = marker(pulled.len());
                pulled.push(Pulled {
                    sql: subquery.to_string(),
                    kind,
                    marker: m.clone(),
                });
                *e = Expr::Value(ValueWithSpan {
                    value: Value::Placeholder(m),
                    span: Span::empty(),
                });
            }
            ControlFlow::Continue(())
        });
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Some(Plan::Pullout {
        subqueries: pulled,
        outer: outer.to_string(),
    }))
}

/// The text that replaces a subquery's marker, given its answer's values
/// (already SQL literals).
pub fn replacement(kind: &PulledKind, values: &[String]) -> Result<String, PlanError> {
    Ok(match kind {
        PulledKind::In { expr, negated } => {
            if values.is_empty() {
                // `x IN (empty)` is false and `x NOT IN (empty)` true, even
                // for a NULL x.
                if *negated { "TRUE" } else { "FALSE" }.to_string()
            } else {
                format!(
                    "({expr}) {}IN ({})",
                    if *negated { "NOT " } else { "" },
                    values.join(", ")
                )
            }
        }
        PulledKind::Scalar => match values {
            [] => "NULL".to_string(),
            [one] => one.clone(),
            _ => {
                return Err(PlanError {
                    code: 1242,
                    sqlstate: "21000",
                    message: "Subquery returns more than 1 row".to_string(),
                });
            }
        },
        PulledKind::Exists { negated } => {
            if values.is_empty() != *negated {
                "FALSE".to_string()
            } else {
                "TRUE".to_string()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_keep_sql_semantics_for_empty_answers() {
        let in_kind = PulledKind::In {
            expr: "id".into(),
            negated: false,
        };
        let not_in = PulledKind::In {
            expr: "id".into(),
            negated: true,
        };
        assert_eq!(replacement(&in_kind, &[]).unwrap(), "FALSE");
        assert_eq!(replacement(&not_in, &[]).unwrap(), "TRUE");
        assert_eq!(
            replacement(&not_in, &["1".into(), "NULL".into()]).unwrap(),
            "(id) NOT IN (1, NULL)"
        );
        assert_eq!(replacement(&PulledKind::Scalar, &[]).unwrap(), "NULL");
        assert_eq!(
            replacement(&PulledKind::Scalar, &["1".into(), "2".into()])
                .unwrap_err()
                .code,
            1242
        );
        assert_eq!(
            replacement(&PulledKind::Exists { negated: false }, &[]).unwrap(),
            "FALSE"
        );
        assert_eq!(
            replacement(&PulledKind::Exists { negated: true }, &[]).unwrap(),
            "TRUE"
        );
        assert_eq!(
            replacement(&PulledKind::Exists { negated: true }, &["1".into()]).unwrap(),
            "FALSE"
        );
    }
}
