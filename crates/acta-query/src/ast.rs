//! The syntax tree a query parses to, and its canonical text form.
//!
//! The [`fmt::Display`] forms of [`Query`], [`Expr`] and [`Term`] print a canonical query: every
//! operator explicit (`AND`, `OR`, `NOT`), parentheses only where precedence needs them, field
//! names canonical (`user:` prints as `actor:`), values quoted only when they must be. Parsing
//! the canonical form of a tree that [`crate::parse`] returned gives the same tree, spans aside.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The expression; `None` for the empty (or all-whitespace) query, which matches every event.
    pub expr: Option<Expr>,
}

/// A boolean expression over terms.
///
/// Trees from [`crate::parse`] are normalised: `And` and `Or` hold at least two operands and
/// never an operand of their own kind (`a AND (b AND c)` is `And([a, b, c])`), and `Not` never
/// holds a `Not` (`NOT NOT a` is `a`).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every operand matches.
    And(Vec<Expr>),
    /// At least one operand matches.
    Or(Vec<Expr>),
    /// The operand does not match.
    Not(Box<Expr>),
    /// One field compared with one value.
    Term(Term),
}

/// One `field:value` comparison, or free text.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// The field compared; [`Field::Text`] for free text.
    pub field: Field,
    /// What the field must match.
    pub value: Value,
    /// Byte range of the whole term in the input, field prefix and quotes included (a leading
    /// `-` is not part of the term).
    pub span: Range<usize>,
}

/// The fields a query can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Any identifier of the actor: name, uid (ARN), email, credential id, session issuer.
    Actor,
    /// `api.operation`: the source's own operation name.
    Action,
    /// Resource uids and names.
    Resource,
    /// The ledger source name.
    Source,
    /// `src_endpoint.ip`.
    Ip,
    /// The cloud account.
    Account,
    /// The cloud region.
    Region,
    /// `success`, `failure`, `unknown` or `other`.
    Outcome,
    /// `api.service.name`.
    Service,
    /// Free text: a bare word or a quoted phrase with no `field:` prefix.
    Text,
}

/// Input spellings of field names and the field each stands for; matched case-insensitively.
const FIELD_NAMES: [(&str, Field); 15] = [
    ("actor", Field::Actor),
    ("user", Field::Actor),
    ("action", Field::Action),
    ("operation", Field::Action),
    ("api", Field::Action),
    ("resource", Field::Resource),
    ("source", Field::Source),
    ("ip", Field::Ip),
    ("src_ip", Field::Ip),
    ("account", Field::Account),
    ("region", Field::Region),
    ("outcome", Field::Outcome),
    ("status", Field::Outcome),
    ("service", Field::Service),
    ("text", Field::Text),
];

impl Field {
    /// Every field, in the order documentation lists them.
    pub const ALL: [Field; 10] = [
        Field::Actor,
        Field::Action,
        Field::Resource,
        Field::Source,
        Field::Ip,
        Field::Account,
        Field::Region,
        Field::Outcome,
        Field::Service,
        Field::Text,
    ];

    /// The canonical name: `actor`, `action`, `resource`, `source`, `ip`, `account`, `region`,
    /// `outcome`, `service`, `text`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Actor => "actor",
            Field::Action => "action",
            Field::Resource => "resource",
            Field::Source => "source",
            Field::Ip => "ip",
            Field::Account => "account",
            Field::Region => "region",
            Field::Outcome => "outcome",
            Field::Service => "service",
            Field::Text => "text",
        }
    }

    /// The field a name stands for, case-insensitively, aliases included: `user` (actor),
    /// `operation` and `api` (action), `src_ip` (ip), `status` (outcome).
    pub fn from_name(name: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, f)| f)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a term's field must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The whole value, compared case-insensitively; as written in the query.
    Exact(String),
    /// An unquoted value with `*` (any run of characters, possibly none) or `?` (exactly one
    /// character), matched against the whole value, case-insensitively; as written.
    Wildcard(String),
    /// One IP address (`ip:10.1.2.3`).
    Ip(IpAddr),
    /// A network (`ip:10.0.0.0/8`): the network address, host bits cleared, and the prefix
    /// length (at most 32 for IPv4, 128 for IPv6).
    Cidr(IpAddr, u8),
    /// An outcome (`outcome:failure`).
    Outcome(Outcome),
}

/// The outcome of an event, from its OCSF `status_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Allowed and done.
    Success,
    /// Denied, or failed.
    Failure,
    /// The source did not say.
    Unknown,
    /// A status the source reports that is none of the above.
    Other,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Unknown,
        Outcome::Other,
    ];

    /// The query-language word: `success`, `failure`, `unknown`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
            Outcome::Other => "other",
        }
    }

    /// The outcome a word names, case-insensitively.
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Query {
    /// The canonical query; the empty query prints as nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Some(e) => fmt::Display::fmt(e, f),
            None => Ok(()),
        }
    }
}

/// Where an expression is printed, which decides whether it needs parentheses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    InOr,
    InAnd,
    InNot,
}

fn write_expr(f: &mut fmt::Formatter<'_>, e: &Expr, place: Place) -> fmt::Result {
    match e {
        Expr::Term(t) => fmt::Display::fmt(t, f),
        Expr::Not(inner) => {
            f.write_str("NOT ")?;
            write_expr(f, inner, Place::InNot)
        }
        Expr::And(items) => {
            let parens = items.len() > 1 && matches!(place, Place::InAnd | Place::InNot);
            write_list(f, items, " AND ", Place::InAnd, parens)
        }
        Expr::Or(items) => {
            let parens = items.len() > 1 && place != Place::Top;
            write_list(f, items, " OR ", Place::InOr, parens)
        }
    }
}

fn write_list(
    f: &mut fmt::Formatter<'_>,
    items: &[Expr],
    op: &str,
    place: Place,
    parens: bool,
) -> fmt::Result {
    if parens {
        f.write_str("(")?;
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(op)?;
        }
        write_expr(f, item, place)?;
    }
    if parens {
        f.write_str(")")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    /// The canonical form (see the module documentation).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, Place::Top)
    }
}

impl fmt::Display for Term {
    /// `field:value`, or the value alone for free text; values quoted when they must be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.field == Field::Text;
        if !text {
            write!(f, "{}:", self.field.name())?;
        }
        match &self.value {
            Value::Exact(s) if is_plain_word(s, text) => f.write_str(s),
            Value::Exact(s) => write_quoted(f, s),
            Value::Wildcard(p) => f.write_str(p),
            Value::Ip(a) => write!(f, "{a}"),
            Value::Cidr(a, p) => write!(f, "{a}/{p}"),
            Value::Outcome(o) => f.write_str(o.name()),
        }
    }
}

/// Whether `s` reads back as the same exact value when written without quotes (conservative:
/// anything unusual is quoted).
fn is_plain_word(s: &str, text: bool) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(c, '(' | ')' | '"' | '\\' | '*' | '?')
        })
        && (!text || (!s.contains(':') && !matches!(s, "AND" | "OR" | "NOT")))
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}
