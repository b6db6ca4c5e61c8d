//! The matching rules of the language, for one value at a time.
//!
//! Executors that translate queries to an index must give the same answers as
//! [`Value::matches`]; it also serves to filter candidates in memory.

use std::net::IpAddr;

use crate::ast::Value;

impl Value {
    /// Whether one stored field value matches: `Exact` compares whole values case-insensitively
    /// (both sides lowercased), `Wildcard` as [`wildcard_match`], `Ip` and `Cidr` parse the
    /// candidate as an address (IPv4-mapped IPv6 addresses count as IPv4) and compare it or test
    /// membership, `Outcome` compares the word case-insensitively.
    pub fn matches(&self, candidate: &str) -> bool {
        match self {
            Value::Exact(v) => lowercase_eq(v, candidate),
            Value::Wildcard(p) => wildcard_match(p, candidate),
            Value::Ip(a) => parse_ip(candidate).is_some_and(|c| c == a.to_canonical()),
            Value::Cidr(net, bits) => parse_ip(candidate).is_some_and(|c| in_cidr(c, *net, *bits)),
            Value::Outcome(o) => o.name().eq_ignore_ascii_case(candidate.trim()),
        }
    }
}

fn lowercase_eq(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

fn char_eq(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// Whether `text` matches the whole of `pattern`, case-insensitively: `*` matches any run of
/// characters (possibly none), `?` exactly one character, every other character itself. Runs
/// in time proportional to the product of the lengths at worst, without recursion.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it has been tried up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let pc = p.get(pi).copied();
        let tc = t.get(ti).copied();
        match (pc, tc) {
            (Some('*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(pc), Some(tc)) if pc == '?' || char_eq(pc, tc) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

fn in_cidr(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(bits.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(bits.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}
