//! Helpers shared by the query tests.
#![allow(dead_code, clippy::panic)]

use acta_query::{Expr, Field, Query, QueryError, Term, Value, parse};

/// The expression of `q`, which must parse to a non-empty query.
pub fn expr(q: &str) -> Expr {
    match parse(q) {
        Ok(Query { expr: Some(e) }) => e,
        other => panic!("{q:?} parsed to {other:?}"),
    }
}

/// The error `q` must give.
pub fn err(q: &str) -> QueryError {
    match parse(q) {
        Err(e) => e,
        Ok(ok) => panic!("{q:?} parsed to {ok:?}, expected an error"),
    }
}

/// The expression with every term span set to `0..0`, to compare shapes.
pub fn unspanned(e: &Expr) -> Expr {
    match e {
        Expr::And(v) => Expr::And(v.iter().map(unspanned).collect()),
        Expr::Or(v) => Expr::Or(v.iter().map(unspanned).collect()),
        Expr::Not(x) => Expr::Not(Box::new(unspanned(x))),
        Expr::Term(t) => Expr::Term(Term {
            span: 0..0,
            ..t.clone()
        }),
    }
}

/// The query's expression without spans.
pub fn shape(q: &str) -> Expr {
    unspanned(&expr(q))
}

pub fn term(field: Field, value: Value) -> Expr {
    Expr::Term(Term {
        field,
        value,
        span: 0..0,
    })
}

pub fn exact(field: Field, v: &str) -> Expr {
    term(field, Value::Exact(v.to_owned()))
}

pub fn wild(field: Field, v: &str) -> Expr {
    term(field, Value::Wildcard(v.to_owned()))
}

pub fn text(v: &str) -> Expr {
    exact(Field::Text, v)
}

pub fn actor(v: &str) -> Expr {
    exact(Field::Actor, v)
}

pub fn and(v: Vec<Expr>) -> Expr {
    Expr::And(v)
}

pub fn or(v: Vec<Expr>) -> Expr {
    Expr::Or(v)
}

pub fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}
