//! Every kind of error: its message and the span it points at.

mod common;

use acta_query::{MAX_INPUT_BYTES, MAX_TERMS, QueryError};
use common::*;

/// Asserts that `q` fails with a message containing `message` at byte range `span`.
#[track_caller]
fn fails(q: &str, message: &str, span: std::ops::Range<usize>) {
    let e = err(q);
    assert!(
        e.message.contains(message),
        "{q:?}: message {:?} lacks {message:?}",
        e.message
    );
    assert_eq!(e.span, span, "{q:?}: {}", e.message);
}

#[test]
fn unknown_field() {
    fails("actor:a foo:bar", "unknown field `foo`", 8..11);
    let e = err("foo:bar");
    for f in [
        "actor", "action", "resource", "source", "ip", "account", "region", "outcome", "service",
    ] {
        assert!(e.message.contains(f), "{}", e.message);
    }
    assert!(e.message.contains("quoted"), "{}", e.message);
    // Anything shaped like a field name counts, so typos are caught.
    fails("src-ip:1.2.3.4", "unknown field `src-ip`", 0..6);
    fails("user.name:x", "unknown field `user.name`", 0..9);
    fails("http://example.com", "unknown field `http`", 0..4);
    fails("(OR:x)", "unknown field `OR`", 1..3);
}

#[test]
fn empty_values() {
    fails("actor:", "`actor:` has no value", 0..6);
    fails("x user: y", "`user:` has no value", 2..7);
    fails("(actor:)", "`actor:` has no value", 1..7);
    fails(r#"actor:"""#, "`actor:` has no value", 0..8);
    fails(r#"a "" b"#, "empty quoted phrase", 2..4);
}

#[test]
fn field_followed_by_a_group() {
    fails("actor:(a OR b)", "a field takes one value", 6..7);
}

#[test]
fn ip_values() {
    let expected = "expected an IP address or a CIDR range such as 10.0.0.0/8";
    fails("ip:10.0.*", expected, 3..9);
    fails("x ip:alice y", expected, 5..10);
    fails("ip:10.0.0.256", expected, 3..13);
    fails("ip:fe80::1%eth0", expected, 3..15);
    fails(
        "ip:10.0.0.0/33",
        "prefix /33 is too long; an IPv4 range has at most 32 bits",
        3..14,
    );
    fails(
        "ip:::/129",
        "prefix /129 is too long; an IPv6 range has at most 128 bits",
        3..9,
    );
    fails("ip:10.0.0.0/999", "prefix /999 is too long", 3..15);
    fails(
        "ip:10.0.0.0/",
        "prefix length after `/` must be a number from 0 to 32",
        3..12,
    );
    fails("ip:10.0.0.0/8/8", "prefix length", 3..15);
    fails("ip:10.0.0.0/+8", "prefix length", 3..14);
    fails("ip:10.0.0.0/1000", "prefix length", 3..16);
    fails("ip:/8", expected, 3..5);
    fails(r#"ip:"10.0.0.1 ""#, expected, 3..14);
}

#[test]
fn outcome_values() {
    fails(
        "outcome:denied",
        "unknown outcome `denied`; expected success, failure, unknown or other",
        8..14,
    );
    fails("status:succ*", "unknown outcome", 7..12);
}

#[test]
fn unbalanced_parentheses() {
    fails("(a OR b", "unclosed `(`", 0..1);
    fails("x (a (b) c", "unclosed `(`", 2..3);
    fails("a OR b)", "unmatched `)`", 6..7);
    fails("(a)) b", "unmatched `)`", 3..4);
    fails(")", "unmatched `)`", 0..1);
}

#[test]
fn empty_parentheses() {
    fails("()", "empty parentheses", 0..2);
    fails("a ( \t ) b", "empty parentheses", 2..7);
    fails("NOT ()", "empty parentheses", 4..6);
}

#[test]
fn operators_missing_operands() {
    fails("AND a", "`AND` needs a term on its left", 0..3);
    fails("OR a", "`OR` needs a term on its left", 0..2);
    fails("a AND", "`AND` needs a term on its right", 2..5);
    fails("a OR", "`OR` needs a term on its right", 2..4);
    fails("a OR OR b", "`OR` needs a term on its right", 2..4);
    fails("a AND OR b", "`AND` needs a term on its right", 2..5);
    fails("a OR AND b", "`OR` needs a term on its right", 2..4);
    fails("(a AND) b", "`AND` needs a term on its right", 3..6);
    fails("(OR a)", "`OR` needs a term on its left", 1..3);
    fails("(a OR", "`OR` needs a term on its right", 3..5);
}

#[test]
fn negation_missing_operand() {
    fails("NOT", "`NOT` needs a term or `(` after it", 0..3);
    fails("a NOT", "`NOT` needs a term or `(` after it", 2..5);
    fails("NOT NOT", "`NOT` needs a term or `(` after it", 4..7);
    fails("(a NOT)", "`NOT` needs a term or `(` after it", 3..6);
    fails("NOT AND a", "`NOT` needs a term or `(` after it", 0..3);
    fails("NOT OR a", "`NOT` needs a term or `(` after it", 0..3);
    fails("a -", "`-` needs a term or `(` right after it", 2..3);
    fails("a - b", "`-` needs a term or `(` right after it", 2..3);
    fails("(a -)", "`-` needs a term or `(` right after it", 3..4);
    fails("-AND", "`-` needs a term or `(` after it", 0..1);
}

#[test]
fn quotes() {
    fails(r#"a "Access Denied"#, "unterminated quoted string", 2..16);
    fails(r#"actor:"bob"#, "unterminated quoted string", 6..10);
    fails(r#""a\""#, "unterminated quoted string", 0..4);
    fails(r#""abc"def"#, "missing space after the closing quote", 5..6);
    fails(
        r#"actor:"a"("#,
        "missing space after the closing quote",
        9..10,
    );
    fails(r#"al"ice"#, "a quote inside a word", 2..3);
    fails(r#"actor:al"ice""#, "a quote inside a word", 8..9);
}

#[test]
fn nesting_limit() {
    let q = format!("{}a{}", "(".repeat(65), ")".repeat(65));
    fails(&q, "nested deeper than 64 parentheses", 64..65);
    // Far deeper input fails the same way, without exhausting the stack.
    let q = "(".repeat(500_000);
    fails(&q, "nested deeper than 64 parentheses", 64..65);
    let q = "NOT (".repeat(100_000);
    fails(
        &q,
        "nested deeper than 64 parentheses",
        64 * 5 + 4..64 * 5 + 5,
    );
}

#[test]
fn size_limits() {
    let q = "a".repeat(MAX_INPUT_BYTES + 10);
    fails(
        &q,
        "the limit is 1048576 bytes",
        MAX_INPUT_BYTES..MAX_INPUT_BYTES + 10,
    );
    let q = "é".repeat(MAX_INPUT_BYTES / 2 + 1);
    let e = err(&q);
    assert!(q.is_char_boundary(e.span.start));
    assert_eq!(e.span.end, q.len());

    let q = vec!["a"; MAX_TERMS + 1].join(" ");
    let last = q.len() - 1;
    fails(&q, "more than 100000 terms", last..last + 1);
}

#[test]
fn spans_are_in_bytes_and_columns_in_characters() {
    // A name with letters beyond ASCII does not look like a field: free text.
    assert_eq!(shape("ünknöwn:x"), text("ünknöwn:x"));
    let q = "résumé foo:x";
    let e = err(q);
    assert_eq!(e.span, 9..12);
    assert_eq!(e.column, 8);
    assert_eq!(e.to_string(), format!("{} (at column 8)", e.message));
}

#[test]
fn render_points_carets_at_the_span() {
    let q = "actor:a foo:bar";
    let e = err(q);
    let r = e.render(q);
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], format!("error: {}", e.message));
    assert_eq!(lines[1], q);
    assert_eq!(lines[2], "        ^^^");

    // Character columns, not bytes.
    let q = "résumé (x";
    let e = err(q);
    assert_eq!(e.render(q).lines().nth(2), Some("       ^"));

    // One caret per character of the span.
    let q = "a OR";
    let e = err(q);
    assert_eq!(e.render(q).lines().nth(2), Some("  ^^"));

    // Control characters are shown as spaces so the carets line up.
    let q = "a\tfoo:x";
    let e = err(q);
    let r = e.render(q);
    assert_eq!(r.lines().nth(1), Some("a foo:x"));
    assert_eq!(r.lines().nth(2), Some("  ^^^"));

    // Clamped to the input it is given.
    let e = QueryError {
        message: "m".into(),
        span: 10..20,
        column: 11,
    };
    assert_eq!(e.render("abc"), "error: m\nabc\n   ^");
    let e = QueryError::new("abc", 10..20, "m");
    assert_eq!(e.span, 3..3);
    assert_eq!(e.column, 4);
}

#[test]
fn unterminated_quote_renders_to_the_end() {
    let q = r#"x "a b"#;
    let e = err(q);
    assert_eq!(e.render(q).lines().nth(2), Some("  ^^^^"));
    assert_eq!(e.to_string(), format!("{} (at column 3)", e.message));
}
