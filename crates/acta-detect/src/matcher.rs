//! Field values and value modifiers: one Sigma `field|modifier…: value`
//! entry compiled into something that tests an [`Event`].

use std::net::IpAddr;

use base64::Engine as _;
use regex::{Regex, RegexBuilder};

use crate::event::{Event, FieldValue};

/// A comparison for the numeric modifiers `lt`, `lte`, `gt` and `gte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// `lt`
    Less,
    /// `lte`
    LessOrEqual,
    /// `gt`
    Greater,
    /// `gte`
    GreaterOrEqual,
}

/// Where a referenced field's value must occur (`fieldref`, alone or with
/// `contains`, `startswith`, `endswith`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The whole value.
    Whole,
    /// Anywhere in the value.
    Contains,
    /// At the start.
    Start,
    /// At the end.
    End,
}

/// One value of a field entry, compiled.
#[derive(Debug, Clone)]
pub enum ValueMatcher {
    /// A Sigma string (wildcards `*` and `?`, with `\` escapes), compiled to
    /// an anchored regular expression, case-insensitive unless `cased`.
    Pattern(Pattern),
    /// `re`: a regular expression searched anywhere in the value.
    Regex(Regex),
    /// `null`: the field is absent or JSON `null`.
    Null,
    /// `exists`: the field is present (`true`) or absent (`false`).
    Exists(bool),
    /// `cidr`: the value is an IP address inside the network.
    Cidr(IpAddr, u8),
    /// `lt`/`lte`/`gt`/`gte`: the value is a number in that relation.
    Number(Ordering, f64),
    /// `fieldref`: the value equals (or contains, …) another field's value,
    /// case-insensitively unless `cased`.
    FieldRef {
        /// The other field's path.
        field: String,
        /// Where its value must occur.
        placement: Placement,
        /// Whether case matters.
        cased: bool,
    },
}

impl ValueMatcher {
    /// Whether the field at `path` of `event` satisfies this value.
    pub fn matches(&self, event: &Event, path: &str) -> bool {
        let value = event.field(path);
        match self {
            ValueMatcher::Null => matches!(value, None | Some(FieldValue::Null)),
            ValueMatcher::Exists(wanted) => value.is_some() == *wanted,
            ValueMatcher::Pattern(pattern) => any_text(value, |text| pattern.is_match(text)),
            ValueMatcher::Regex(regex) => any_text(value, |text| regex.is_match(text)),
            ValueMatcher::Cidr(network, prefix) => any_text(value, |text| {
                text.parse::<IpAddr>()
                    .is_ok_and(|ip| in_network(ip, *network, *prefix))
            }),
            ValueMatcher::Number(ordering, bound) => any_text(value, |text| {
                text.trim().parse::<f64>().is_ok_and(|n| match ordering {
                    Ordering::Less => n < *bound,
                    Ordering::LessOrEqual => n <= *bound,
                    Ordering::Greater => n > *bound,
                    Ordering::GreaterOrEqual => n >= *bound,
                })
            }),
            ValueMatcher::FieldRef {
                field,
                placement,
                cased,
            } => {
                let Some(other) = event.field(field) else {
                    return false;
                };
                other
                    .texts()
                    .iter()
                    .any(|needle| any_text(value, |text| place(text, needle, *placement, *cased)))
            }
        }
    }
}

fn any_text(value: Option<&FieldValue>, test: impl Fn(&str) -> bool) -> bool {
    value.is_some_and(|value| value.texts().iter().any(|text| test(text)))
}

fn place(text: &str, needle: &str, placement: Placement, cased: bool) -> bool {
    let (text, needle) = if cased {
        (text.to_owned(), needle.to_owned())
    } else {
        (text.to_lowercase(), needle.to_lowercase())
    };
    match placement {
        Placement::Whole => text == needle,
        Placement::Contains => text.contains(&needle),
        Placement::Start => text.starts_with(&needle),
        Placement::End => text.ends_with(&needle),
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Parses `cidr` values: `10.0.0.0/8`, `fe80::/10`, or a bare address.
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let ip: IpAddr = address
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a CIDR network"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("`{text}` has a bad prefix length"))?,
        None => max,
    };
    Ok((ip, prefix))
}

/// How a Sigma string is anchored in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The whole value (no modifier).
    Whole,
    /// `contains`
    Contains,
    /// `startswith`
    Start,
    /// `endswith`
    End,
}

/// A compiled Sigma string.
///
/// A string without wildcards is also kept as its literal text, compared
/// byte-wise (ASCII case folded unless `cased`) whenever both it and the
/// value are ASCII: the same verdict as the regular expression, which is
/// only run for other values, at a fraction of the cost.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    literal: Option<Vec<u8>>,
    anchor: Anchor,
    cased: bool,
}

impl Pattern {
    /// Whether `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        match &self.literal {
            Some(needle) if self.cased || (self.anchor != Anchor::Contains && text.is_ascii()) => {
                let eq = |a: &[u8]| {
                    if self.cased {
                        a == needle.as_slice()
                    } else {
                        a.eq_ignore_ascii_case(needle)
                    }
                };
                let text = text.as_bytes();
                let n = needle.len();
                match self.anchor {
                    Anchor::Whole => text.len() == n && eq(text),
                    Anchor::Start => text.get(..n).is_some_and(eq),
                    Anchor::End => text
                        .len()
                        .checked_sub(n)
                        .and_then(|at| text.get(at..))
                        .is_some_and(eq),
                    // Cased: a plain substring search. (Case-insensitive searches are left to
                    // the regular expression's literal prefilter, faster than any scan here.)
                    Anchor::Contains => n == 0 || text.windows(n).any(eq),
                }
            }
            _ => self.regex.is_match(text),
        }
    }
}

impl Pattern {
    /// The ASCII literal this pattern equals, case-insensitively, when it
    /// matches whole values without wildcards and is not `cased`: a value
    /// that is ASCII matches exactly when it equals it ignoring ASCII case.
    pub fn whole_literal(&self) -> Option<&[u8]> {
        match (&self.literal, self.anchor, self.cased) {
            (Some(literal), Anchor::Whole, false) => Some(literal),
            _ => None,
        }
    }
}

/// The literal text of a Sigma string without wildcards (escapes
/// resolved), when it is ASCII.
fn literal(value: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push(next as u8);
                }
                _ => out.push(b'\\'),
            },
            '*' | '?' => return None,
            c if c.is_ascii() => out.push(c as u8),
            _ => return None,
        }
    }
    Some(out)
}

/// Compiles a Sigma string into an anchored regular expression: `*` any run
/// of characters, `?` one character, `\*`, `\?` and `\\` the characters
/// themselves, any other `\` a backslash.
pub fn compile_pattern(value: &str, anchor: Anchor, cased: bool) -> Result<Pattern, String> {
    Ok(Pattern {
        regex: pattern_regex(value, anchor, cased)?,
        literal: literal(value),
        anchor,
        cased,
    })
}

fn pattern_regex(value: &str, anchor: Anchor, cased: bool) -> Result<Regex, String> {
    let mut out = String::with_capacity(value.len() + 8);
    if matches!(anchor, Anchor::Whole | Anchor::Start) {
        out.push('^');
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push_str(&regex::escape(&next.to_string()));
                }
                _ => out.push_str(r"\\"),
            },
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    if matches!(anchor, Anchor::Whole | Anchor::End) {
        out.push('$');
    }
    RegexBuilder::new(&out)
        .case_insensitive(!cased)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| format!("value `{value}`: {e}"))
}

/// Compiles an `re` value with its flags (`i`, `m`, `s`).
pub fn compile_regex(
    value: &str,
    insensitive: bool,
    multiline: bool,
    dotall: bool,
) -> Result<Regex, String> {
    RegexBuilder::new(value)
        .case_insensitive(insensitive)
        .multi_line(multiline)
        .dot_matches_new_line(dotall)
        .build()
        .map_err(|e| format!("bad regular expression `{value}`: {e}"))
}

/// `base64`: the value's Base64 encoding.
pub fn base64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
}

/// `base64offset`: the three encodings of the value at each offset modulo
/// 3 inside a longer Base64 text, without the characters that depend on the
/// unknown neighbours.
pub fn base64_offsets(value: &str) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    let bytes = value.as_bytes();
    (0..3)
        .filter_map(|shift: usize| {
            let mut padded = vec![b' '; shift];
            padded.extend_from_slice(bytes);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&padded);
            let end_cut = END.get((bytes.len() + shift) % 3).copied().unwrap_or(0);
            let start = START.get(shift).copied().unwrap_or(0);
            let end = encoded.len().checked_sub(end_cut)?;
            encoded.get(start..end).map(str::to_owned)
        })
        .collect()
}

/// `windash`: the value with each dash or slash that starts a word replaced
/// by each of the characters Windows accepts there.
pub fn windash(value: &str) -> Vec<String> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    DASHES
        .iter()
        .map(|dash| {
            let mut out = String::with_capacity(value.len());
            let mut word_start = true;
            for c in value.chars() {
                if word_start && (c == '-' || c == '/') {
                    out.push(*dash);
                } else {
                    out.push(c);
                }
                word_start = c.is_whitespace();
            }
            out
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_fast_path_agrees_with_the_regex() {
        let values = [
            "evil", "EvIl", r"a\*b", r"a\\b", r"a\b", "", "Kelvin", "été",
        ];
        let texts = [
            "evil",
            "EVIL",
            "so evil here",
            "evilx",
            "xevil",
            "a*b",
            r"a\b",
            "ab",
            "",
            "\u{212A}elvin",
            "KELVIN",
            "ÉTÉ",
            "été",
            "e\u{301}vil",
            "ev",
            "évil",
        ];
        for value in values {
            for anchor in [Anchor::Whole, Anchor::Contains, Anchor::Start, Anchor::End] {
                for cased in [false, true] {
                    let pattern = compile_pattern(value, anchor, cased).unwrap();
                    for text in texts {
                        assert_eq!(
                            pattern.is_match(text),
                            pattern.regex.is_match(text),
                            "{value:?} {anchor:?} cased={cased} on {text:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn patterns_wildcards_and_escapes() {
        let re = compile_pattern(r"a*b?c\*d\\e\x", Anchor::Whole, false).unwrap();
        assert!(re.is_match(r"AxxbYc*d\e\x"));
        assert!(!re.is_match(r"AxxbYcZd\e\x"));
        let contains = compile_pattern("evil", Anchor::Contains, false).unwrap();
        assert!(contains.is_match("so EVIL here"));
        let cased = compile_pattern("evil", Anchor::Contains, true).unwrap();
        assert!(!cased.is_match("so EVIL here"));
        assert!(
            compile_pattern("ab", Anchor::Start, false)
                .unwrap()
                .is_match("ABc")
        );
        assert!(
            !compile_pattern("ab", Anchor::Start, false)
                .unwrap()
                .is_match("cab")
        );
        assert!(
            compile_pattern("ab", Anchor::End, false)
                .unwrap()
                .is_match("cAB")
        );
        assert!(
            compile_pattern("a\nb*", Anchor::Whole, false)
                .unwrap()
                .is_match("a\nbc\nd")
        );
    }

    #[test]
    fn cidr_networks() {
        let (net, prefix) = parse_cidr("10.1.0.0/16").unwrap();
        assert!(in_network("10.1.200.3".parse().unwrap(), net, prefix));
        assert!(!in_network("10.2.0.1".parse().unwrap(), net, prefix));
        let (net, prefix) = parse_cidr("fe80::/10").unwrap();
        assert!(in_network("fe80::1".parse().unwrap(), net, prefix));
        assert!(!in_network("10.2.0.1".parse().unwrap(), net, prefix));
        let (net, prefix) = parse_cidr("0.0.0.0/0").unwrap();
        assert!(in_network("1.2.3.4".parse().unwrap(), net, prefix));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("nope").is_err());
    }

    #[test]
    fn encodings() {
        assert_eq!(base64("ping"), "cGluZw==");
        // The spec's example: `/bin/bash` inside a longer Base64 text.
        assert_eq!(
            base64_offsets("/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
        assert_eq!(windash("-a /b c-d").len(), 5);
        assert!(windash("-a /b c-d").contains(&"/a /b c-d".to_owned()));
    }
}
