//! Parse errors that point at the offending part of the query.

use std::fmt;
use std::ops::Range;

/// Why a query did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// What is wrong, for a person: names the problem and, where it helps, the accepted forms.
    pub message: String,
    /// Byte range in the input of the offending part (empty only at the end of the input).
    pub span: Range<usize>,
    /// 1-based column, in characters, where `span` starts.
    pub column: usize,
}

impl QueryError {
    /// An error at `span` of `input`. The span is clamped to the input and widened to character
    /// boundaries.
    pub fn new(input: &str, span: Range<usize>, message: impl Into<String>) -> QueryError {
        let start = floor_boundary(input, span.start);
        let end = ceil_boundary(input, span.end.max(start));
        QueryError {
            message: message.into(),
            span: start..end,
            column: chars_before(input, start) + 1,
        }
    }

    /// Three lines for a terminal: `error: message`, the query, and carets under the offending
    /// part (character columns; control characters in the query are shown as spaces so the
    /// carets line up). Spans beyond `input` are clamped to it.
    pub fn render(&self, input: &str) -> String {
        let start = chars_before(input, self.span.start);
        let end = chars_before(input, self.span.end).max(start + 1);
        let shown: String = input
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!(
            "error: {}\n{}\n{}{}",
            self.message,
            shown,
            " ".repeat(start),
            "^".repeat(end - start)
        )
    }
}

impl fmt::Display for QueryError {
    /// `message (at column N)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.message, self.column)
    }
}

impl std::error::Error for QueryError {}

/// Characters of `s` that start before byte `at` (all of them when `at` is past the end).
fn chars_before(s: &str, at: usize) -> usize {
    s.char_indices().take_while(|&(i, _)| i < at).count()
}

fn floor_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at += 1;
    }
    at
}
