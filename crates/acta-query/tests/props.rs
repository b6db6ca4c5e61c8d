//! Property checks over many pseudo-random queries: parsing never panics, every error points
//! inside the input, every tree is normalised, every term's span re-parses to that term, and the
//! canonical form re-parses to the same tree.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use acta_query::{Expr, Query, QueryError, parse};
use common::unspanned;

/// xorshift64*: small, deterministic, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "(",
    ")",
    "\"",
    "\\",
    "-",
    ":",
    "*",
    "?",
    "/",
    " ",
    " ",
    " ",
    "\t",
    "\n",
    "AND",
    "OR",
    "NOT",
    "and",
    "or",
    "actor",
    "user",
    "action",
    "ip",
    "src_ip",
    "outcome",
    "status",
    "text",
    "region",
    "foo",
    "x",
    "a",
    "alice",
    "10.0.0.1",
    "10.1.2.3/8",
    "::1",
    "2001:db8::/33",
    "/129",
    "success",
    "FAILURE",
    "é",
    "日本",
    "\u{0}",
    "\u{200b}",
    "\u{3000}",
    "\u{2028}",
    "arn:aws:iam::1:user/a",
    "NOT(",
    "-(",
    "\"a b\"",
    "\\\"",
    "@",
    ".",
    "()",
    "))",
    "((",
];

fn random_query(rng: &mut Rng) -> String {
    let mut s = String::new();
    let n = rng.below(24);
    for _ in 0..n {
        s.push_str(PIECES[rng.below(PIECES.len())]);
    }
    s
}

fn random_bytes(rng: &mut Rng) -> String {
    let n = rng.below(40);
    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check_error(input: &str, e: &QueryError) {
    assert!(e.span.start <= e.span.end, "{input:?}: {e:?}");
    assert!(e.span.end <= input.len(), "{input:?}: {e:?}");
    assert!(input.is_char_boundary(e.span.start), "{input:?}: {e:?}");
    assert!(input.is_char_boundary(e.span.end), "{input:?}: {e:?}");
    assert!(!e.message.is_empty());
    let column = input[..e.span.start].chars().count() + 1;
    assert_eq!(e.column, column, "{input:?}: {e:?}");
    let rendered = e.render(input);
    assert!(rendered.starts_with("error: "));
    assert!(rendered.ends_with('^'), "{rendered:?}");
}

/// The normal form `parse` promises: lists of two or more, no list directly inside one of its
/// own kind, no double negation.
fn check_normalised(e: &Expr) {
    match e {
        Expr::And(items) => {
            assert!(items.len() >= 2);
            for i in items {
                assert!(!matches!(i, Expr::And(_)));
                check_normalised(i);
            }
        }
        Expr::Or(items) => {
            assert!(items.len() >= 2);
            for i in items {
                assert!(!matches!(i, Expr::Or(_)));
                check_normalised(i);
            }
        }
        Expr::Not(inner) => {
            assert!(!matches!(**inner, Expr::Not(_)));
            check_normalised(inner);
        }
        Expr::Term(_) => {}
    }
}

fn check_term_spans(input: &str, e: &Expr) {
    match e {
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| check_term_spans(input, i)),
        Expr::Not(inner) => check_term_spans(input, inner),
        Expr::Term(t) => {
            let text = input
                .get(t.span.clone())
                .unwrap_or_else(|| panic!("{input:?}: bad span {:?}", t.span));
            let alone = parse(text).unwrap_or_else(|e| panic!("{input:?}: {text:?}: {e}"));
            let Some(Expr::Term(again)) = alone.expr else {
                panic!("{input:?}: {text:?} is not one term");
            };
            assert_eq!(
                (again.field, &again.value),
                (t.field, &t.value),
                "{input:?}"
            );
            assert_eq!(again.span, 0..text.len());
        }
    }
}

fn check_ok(input: &str, q: &Query) {
    let Some(e) = &q.expr else {
        assert!(input.trim().is_empty(), "{input:?} parsed to nothing");
        assert_eq!(q.to_string(), "");
        return;
    };
    check_normalised(e);
    check_term_spans(input, e);
    let canonical = q.to_string();
    let again = parse(&canonical)
        .unwrap_or_else(|err| panic!("{input:?} → {canonical:?} does not parse: {err}"));
    let again_expr = again
        .expr
        .as_ref()
        .unwrap_or_else(|| panic!("{input:?} → {canonical:?} is empty"));
    assert_eq!(
        unspanned(again_expr),
        unspanned(e),
        "{input:?} → {canonical:?}"
    );
    assert_eq!(again.to_string(), canonical, "{input:?}");
}

fn check(input: &str, stats: &mut [usize; 2]) {
    match parse(input) {
        Ok(q) => {
            stats[0] += 1;
            check_ok(input, &q);
        }
        Err(e) => {
            stats[1] += 1;
            check_error(input, &e);
        }
    }
}

#[test]
fn random_queries_parse_or_fail_cleanly_and_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut stats = [0usize; 2];
    for _ in 0..100_000 {
        let q = random_query(&mut rng);
        check(&q, &mut stats);
    }
    // Both outcomes are exercised in earnest.
    assert!(stats[0] > 10_000, "{stats:?}");
    assert!(stats[1] > 10_000, "{stats:?}");
}

#[test]
fn random_bytes_parse_or_fail_cleanly() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut stats = [0usize; 2];
    for _ in 0..50_000 {
        let q = random_bytes(&mut rng);
        check(&q, &mut stats);
    }
}

#[test]
fn well_formed_random_queries_round_trip() {
    let atoms = [
        "actor:alice",
        "user:\"Alice Smith\"",
        "action:Delete*",
        "ip:10.1.2.3/8",
        "ip:2001:db8::1",
        "outcome:failure",
        "AccessDenied",
        "\"Access Denied\"",
        "\"a:b\"",
        "region:eu-west-?",
        "resource:\"x \\\"y\\\" \\\\ z\"",
        "text:AND",
        "and",
    ];
    let mut rng = Rng(42);
    let mut stats = [0usize; 2];
    for _ in 0..20_000 {
        let mut q = String::new();
        let mut open = 0;
        for _ in 0..1 + rng.below(12) {
            if rng.below(4) == 0 {
                q.push_str(["NOT ", "-"][rng.below(2)]);
            }
            if rng.below(5) == 0 {
                q.push('(');
                open += 1;
            }
            q.push_str(atoms[rng.below(atoms.len())]);
            if open > 0 && rng.below(3) == 0 {
                q.push(')');
                open -= 1;
            }
            q.push_str([" ", " AND ", " OR "][rng.below(3)]);
        }
        q.push('x');
        q.push_str(&")".repeat(open));
        check(&q, &mut stats);
    }
    assert_eq!(stats[1], 0, "well-formed queries all parse");
}
