//! acta's query language, shared by the CLI, the HTTP API and the web UI.
//!
//! [`parse`] turns a query such as
//!
//! ```text
//! actor:alice* action:Delete* (ip:10.0.0.0/8 OR region:eu-west-1) -outcome:success
//! ```
//!
//! into a [`Query`]: a normalised boolean tree ([`Expr`]) of [`Term`]s, each a [`Field`] and a
//! [`Value`]. [`parse_time`] reads the time bounds that go with a query (`30d`,
//! `2026-11-01T00:00:00Z`, `2026-11-01`, `now`). The language is documented for users in
//! `docs/query.md`; in short:
//!
//! - `field:value` compares one field, the value a bare word (up to whitespace or `)`) or a
//!   double-quoted string with `\"` and `\\` escapes. Only the first colon separates the field,
//!   so `actor:arn:aws:iam::123456789012:user/alice` needs no quotes.
//! - A bare word with no field, or a quoted phrase, is free text ([`Field::Text`]). A bare word
//!   that starts like `name:` must name a known field, so free text containing a colon is
//!   quoted (`"a:b"`).
//! - Values match whole field values, case-insensitively. In unquoted values `*` matches any
//!   run of characters and `?` one character; quoted values are always exact.
//! - `ip:` takes an address or a CIDR range, `outcome:` one of `success`, `failure`, `unknown`,
//!   `other`.
//! - `NOT` (or a leading `-`) binds tightest, then `AND` (or juxtaposition), then `OR`;
//!   parentheses group. Operators are uppercase; `and`, `or`, `not` are free text.
//!
//! Parsing never panics and stays fast on hostile input: operand lists are built in loops,
//! parentheses nest at most [`MAX_DEPTH`] deep, and input size and term count are bounded.
//! Errors ([`QueryError`]) carry the byte span of the offending part and render with carets
//! under it.
#![deny(clippy::indexing_slicing)]

mod ast;
mod error;
mod matching;
mod parser;
mod time;

pub use ast::{Expr, Field, Outcome, Query, Term, Value};
pub use error::QueryError;
pub use matching::wildcard_match;
pub use parser::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_TERMS, parse};
pub use time::{days_from_civil, parse_duration, parse_time};
