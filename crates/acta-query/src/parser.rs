//! The lexer and parser: query text to a normalised [`Query`].
//!
//! Lists of operands are collected in loops, so long flat queries cost no stack; only
//! parentheses recurse, at most [`MAX_DEPTH`] deep. Chains of `NOT` are counted, not nested.
//! Input size and term count are bounded ([`MAX_INPUT_BYTES`], [`MAX_TERMS`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use crate::ast::{Expr, Field, Outcome, Query, Term, Value};
use crate::error::QueryError;

/// Longest query accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Most terms a query may hold.
pub const MAX_TERMS: usize = 100_000;
/// Deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 64;

/// Parses a query. The empty or all-whitespace query is `Query { expr: None }`, which matches
/// every event. Never panics; errors carry the byte span of the offending part.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(QueryError::new(
            input,
            MAX_INPUT_BYTES..input.len(),
            format!(
                "query is {} bytes long; the limit is {MAX_INPUT_BYTES} bytes (1 MiB)",
                input.len()
            ),
        ));
    }
    let mut parser = Parser {
        lexer: Lexer {
            src: input,
            pos: 0,
            terms: 0,
        },
    };
    let expr = parser.sequence(0, None)?;
    Ok(Query { expr })
}

#[derive(Debug)]
enum Kind {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Minus,
    Term(Term),
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    span: Range<usize>,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    terms: usize,
}

/// Whether `c` ends a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == ')'
}

/// Whether `c`, following a keyword, leaves it a keyword (`NOT(` is `NOT` then `(`).
fn ends_keyword(c: Option<char>) -> bool {
    c.is_none_or(|c| c.is_whitespace() || c == '(' || c == ')')
}

/// Length of the `name` in a leading `name:` (a letter or `_`, then letters, digits, `_`, `-`
/// or `.`), or `None` when the word does not start like that.
fn field_prefix_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    for (i, c) in chars {
        if c == ':' {
            return Some(i);
        }
        if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return None;
        }
    }
    None
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> QueryError {
        QueryError::new(self.src, span, message)
    }

    fn next(&mut self) -> Result<Option<Token>, QueryError> {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let mut chars = trimmed.chars();
        let Some(c) = chars.next() else {
            return Ok(None);
        };
        let after = chars.next();
        let single = |kind| Token {
            kind,
            span: start..start + 1,
        };
        let token = match c {
            '(' => single(Kind::LParen),
            ')' => single(Kind::RParen),
            '-' => {
                if after.is_none_or(ends_word) {
                    return Err(self.error(
                        start..start + 1,
                        "`-` needs a term or `(` right after it, as in -actor:alice",
                    ));
                }
                single(Kind::Minus)
            }
            _ => {
                if let Some((kind, len)) = keyword(trimmed) {
                    Token {
                        kind,
                        span: start..start + len,
                    }
                } else {
                    let term = self.term()?;
                    self.terms += 1;
                    if self.terms > MAX_TERMS {
                        return Err(self.error(
                            term.span,
                            format!("more than {MAX_TERMS} terms in one query"),
                        ));
                    }
                    return Ok(Some(Token {
                        span: term.span.clone(),
                        kind: Kind::Term(term),
                    }));
                }
            }
        };
        self.pos = token.span.end;
        Ok(Some(token))
    }

    /// A term starting at `self.pos` (not whitespace, not a keyword, not `(`, `)` or `-`).
    fn term(&mut self) -> Result<Term, QueryError> {
        let start = self.pos;
        let rest = self.rest();
        let (field, quoted, value, value_span) = match field_prefix_len(rest) {
            Some(name_len) => {
                let name = rest.get(..name_len).unwrap_or_default();
                let Some(field) = Field::from_name(name) else {
                    return Err(self.error(
                        start..start + name_len,
                        format!(
                            "unknown field `{name}`; the fields are actor, action, resource, \
                             source, ip, account, region, outcome and service (free text with \
                             a colon must be quoted, as in \"{name}:…\")"
                        ),
                    ));
                };
                self.pos = start + name_len + 1;
                let value_start = self.pos;
                let (quoted, value) = if self.rest().starts_with('"') {
                    (true, self.quoted()?)
                } else {
                    (false, self.bare()?)
                };
                if value.is_empty() {
                    return Err(self.error(
                        start..self.pos,
                        format!(
                            "`{name}:` has no value; write {f}:value, or {f}:\"…\" for a value \
                             with spaces",
                            f = field.name()
                        ),
                    ));
                }
                if !quoted && value.starts_with('(') {
                    return Err(self.error(
                        value_start..value_start + 1,
                        format!(
                            "a field takes one value: write ({f}:a OR {f}:b), not {name}:(…); \
                             quote a value that starts with `(`",
                            f = field.name()
                        ),
                    ));
                }
                (field, quoted, value, value_start..self.pos)
            }
            None => {
                let quoted = rest.starts_with('"');
                let value = if quoted { self.quoted()? } else { self.bare()? };
                if value.is_empty() {
                    return Err(self.error(start..self.pos, "empty quoted phrase"));
                }
                (Field::Text, quoted, value, start..self.pos)
            }
        };
        let value = match field {
            Field::Ip => ip_value(&value).map_err(|m| self.error(value_span, m))?,
            Field::Outcome => match Outcome::from_name(&value) {
                Some(o) => Value::Outcome(o),
                None => {
                    return Err(self.error(
                        value_span,
                        format!(
                            "unknown outcome `{value}`; expected success, failure, unknown \
                             or other"
                        ),
                    ));
                }
            },
            _ if !quoted && value.contains(['*', '?']) => Value::Wildcard(value),
            _ => Value::Exact(value),
        };
        Ok(Term {
            field,
            value,
            span: start..self.pos,
        })
    }

    /// A bare word from `self.pos` to whitespace, `)` or the end.
    fn bare(&mut self) -> Result<String, QueryError> {
        let rest = self.rest();
        let mut len = rest.len();
        for (i, c) in rest.char_indices() {
            if ends_word(c) {
                len = i;
                break;
            }
            if c == '"' {
                let at = self.pos + i;
                return Err(self.error(
                    at..at + 1,
                    "a quote inside a word: quote the whole value, as in actor:\"alice smith\"",
                ));
            }
        }
        let word = rest.get(..len).unwrap_or_default().to_owned();
        self.pos += len;
        Ok(word)
    }

    /// A double-quoted string at `self.pos`, with `\"` and `\\` escapes; any other backslash is
    /// kept as written.
    fn quoted(&mut self) -> Result<String, QueryError> {
        let open = self.pos;
        let rest = self.rest();
        let mut out = String::new();
        let mut chars = rest.char_indices();
        chars.next();
        let close = loop {
            match chars.next() {
                None => {
                    return Err(self.error(
                        open..self.src.len(),
                        "unterminated quoted string: no closing `\"`",
                    ));
                }
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.clone().next() {
                    Some((_, c @ ('"' | '\\'))) => {
                        out.push(c);
                        chars.next();
                    }
                    _ => out.push('\\'),
                },
                Some((_, c)) => out.push(c),
            }
        };
        self.pos = open + close + 1;
        if let Some(c) = self.rest().chars().next()
            && !ends_word(c)
        {
            return Err(self.error(
                self.pos..self.pos + c.len_utf8(),
                "missing space after the closing quote",
            ));
        }
        Ok(out)
    }
}

/// `AND`, `OR` or `NOT` at the start of `s`, followed by whitespace, a parenthesis or the end.
fn keyword(s: &str) -> Option<(Kind, usize)> {
    let (kind, word) = if s.starts_with("AND") {
        (Kind::And, "AND")
    } else if s.starts_with("OR") {
        (Kind::Or, "OR")
    } else if s.starts_with("NOT") {
        (Kind::Not, "NOT")
    } else {
        return None;
    };
    let after = s.get(word.len()..).and_then(|r| r.chars().next());
    ends_keyword(after).then_some((kind, word.len()))
}

const IP_EXPECTED: &str = "expected an IP address or a CIDR range such as 10.0.0.0/8";

/// An `ip:` value: an address, or a CIDR range normalised to its network address.
fn ip_value(s: &str) -> Result<Value, String> {
    let Some((addr, prefix)) = s.split_once('/') else {
        return s
            .parse::<IpAddr>()
            .map(Value::Ip)
            .map_err(|_| format!("`{s}`: {IP_EXPECTED}"));
    };
    let addr: IpAddr = addr.parse().map_err(|_| format!("`{s}`: {IP_EXPECTED}"))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{s}`: the prefix length after `/` must be a number from 0 to {max}"
        ));
    }
    let bits: u16 = prefix
        .parse()
        .map_err(|_| format!("`{s}`: {IP_EXPECTED}"))?;
    let Some(bits) = u8::try_from(bits).ok().filter(|&b| b <= max) else {
        return Err(format!(
            "`{s}`: prefix /{bits} is too long; an {} range has at most {max} bits",
            if addr.is_ipv4() { "IPv4" } else { "IPv6" }
        ));
    };
    let network = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Ok(Value::Cidr(network, bits))
}

struct Parser<'a> {
    lexer: Lexer<'a>,
}

/// An operator still waiting for its right operand.
struct Pending {
    name: &'static str,
    span: Range<usize>,
}

impl Pending {
    fn missing_right(&self, lexer: &Lexer<'_>) -> QueryError {
        lexer.error(
            self.span.clone(),
            format!("`{}` needs a term on its right", self.name),
        )
    }
}

/// Appends `e` to the operands of an `And` (`and == true`) or `Or`, flattening one of the same
/// kind into the list.
fn push_flat(list: &mut Vec<Expr>, e: Expr, and: bool) {
    match e {
        Expr::And(items) if and => list.extend(items),
        Expr::Or(items) if !and => list.extend(items),
        e => list.push(e),
    }
}

/// The expression of an operand list: the operand itself when there is one.
fn close(mut list: Vec<Expr>, and: bool) -> Option<Expr> {
    match list.len() {
        0 => None,
        1 => list.pop(),
        _ if and => Some(Expr::And(list)),
        _ => Some(Expr::Or(list)),
    }
}

impl Parser<'_> {
    /// Operands and operators up to the end of the input (`open` is `None`) or to the `)` that
    /// closes the `(` at `open`. `OR` binds loosest, then `AND` and juxtaposition.
    fn sequence(
        &mut self,
        depth: usize,
        open: Option<Range<usize>>,
    ) -> Result<Option<Expr>, QueryError> {
        let mut ors: Vec<Expr> = Vec::new();
        let mut ands: Vec<Expr> = Vec::new();
        let mut pending: Option<Pending> = None;
        loop {
            let Some(token) = self.lexer.next()? else {
                if let Some(p) = pending {
                    return Err(p.missing_right(&self.lexer));
                }
                if let Some(open) = open {
                    return Err(self.lexer.error(open, "unclosed `(`"));
                }
                break;
            };
            match token.kind {
                Kind::RParen => {
                    let Some(open) = open else {
                        return Err(self.lexer.error(token.span, "unmatched `)`"));
                    };
                    if let Some(p) = pending {
                        return Err(p.missing_right(&self.lexer));
                    }
                    if ands.is_empty() && ors.is_empty() {
                        return Err(self
                            .lexer
                            .error(open.start..token.span.end, "empty parentheses"));
                    }
                    break;
                }
                Kind::And | Kind::Or => {
                    let is_and = matches!(token.kind, Kind::And);
                    let name = if is_and { "AND" } else { "OR" };
                    if let Some(p) = pending {
                        return Err(p.missing_right(&self.lexer));
                    }
                    if ands.is_empty() {
                        return Err(self
                            .lexer
                            .error(token.span, format!("`{name}` needs a term on its left")));
                    }
                    if !is_and && let Some(e) = close(std::mem::take(&mut ands), true) {
                        push_flat(&mut ors, e, false);
                    }
                    pending = Some(Pending {
                        name,
                        span: token.span,
                    });
                }
                _ => {
                    let e = self.unary(token, depth)?;
                    push_flat(&mut ands, e, true);
                    pending = None;
                }
            }
        }
        if let Some(e) = close(ands, true) {
            push_flat(&mut ors, e, false);
        }
        Ok(close(ors, false))
    }

    /// One operand: any number of `NOT` / `-`, then a term or a parenthesised group.
    fn unary(&mut self, first: Token, depth: usize) -> Result<Expr, QueryError> {
        let mut negations = 0usize;
        let mut last_negation: Option<(&'static str, Range<usize>)> = None;
        let mut token = first;
        let operand = loop {
            match token.kind {
                Kind::Not | Kind::Minus => {
                    let name = if matches!(token.kind, Kind::Not) {
                        "NOT"
                    } else {
                        "-"
                    };
                    negations += 1;
                    last_negation = Some((name, token.span.clone()));
                    match self.lexer.next()? {
                        Some(t) => token = t,
                        None => return Err(self.missing_negated(last_negation)),
                    }
                }
                Kind::Term(term) => break Expr::Term(term),
                Kind::LParen => {
                    if depth >= MAX_DEPTH {
                        return Err(self.lexer.error(
                            token.span,
                            format!("nested deeper than {MAX_DEPTH} parentheses"),
                        ));
                    }
                    let open = token.span.clone();
                    match self.sequence(depth + 1, Some(token.span))? {
                        Some(e) => break e,
                        None => return Err(self.lexer.error(open, "empty parentheses")),
                    }
                }
                Kind::RParen | Kind::And | Kind::Or => {
                    return Err(self.missing_negated(last_negation));
                }
            }
        };
        Ok(if negations % 2 == 1 {
            match operand {
                Expr::Not(inner) => *inner,
                e => Expr::Not(Box::new(e)),
            }
        } else {
            operand
        })
    }

    fn missing_negated(&self, negation: Option<(&'static str, Range<usize>)>) -> QueryError {
        let (name, span) = negation.unwrap_or(("NOT", self.lexer.pos..self.lexer.pos));
        self.lexer
            .error(span, format!("`{name}` needs a term or `(` after it"))
    }
}
