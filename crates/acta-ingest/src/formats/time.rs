//! Timestamps as access logs write them, to epoch milliseconds.
//!
//! Hand-written because the formats are few and fixed, and parsing them sits on the per-event hot
//! path: RFC 3339 / ISO 8601 (`2024-01-02T03:04:05.678Z`, `+02:00` offsets, a space instead of
//! `T`, no zone meaning UTC), epoch seconds or milliseconds, and the RFC 3164 syslog stamp
//! (`Jan  2 03:04:05`, no year).

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day count from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = *self.b.get(self.i)?;
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(d - b'0');
            self.i += 1;
        }
        Some(v)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
}

/// Parses an RFC 3339 / ISO 8601 timestamp to epoch milliseconds. Accepts `T`, `t` or a space
/// between date and time, any number of fraction digits (truncated to milliseconds), `Z`, `z`,
/// `±hh:mm`, `±hhmm`, `±hh` or no zone (UTC), and a trailing ` UTC`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.trim().as_bytes(),
        i: 0,
    };
    let year = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let month = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    let second = if c.eat(b':') { c.digits(2)? } else { 0 };
    let mut millis = 0u32;
    if c.eat(b'.') || c.eat(b',') {
        let mut n = 0;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            if n < 3 {
                millis = millis * 10 + u32::from(d - b'0');
            }
            n += 1;
            c.i += 1;
        }
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_min: i64 = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let h = c.digits(2)?;
            c.eat(b':');
            let m = if c.peek().is_some_and(|d| d.is_ascii_digit()) {
                c.digits(2)?
            } else {
                0
            };
            let v = i64::from(h * 60 + m);
            if sign == b'-' { -v } else { v }
        }
        Some(b' ') => {
            let rest = c.b.get(c.i..).unwrap_or_default();
            if rest != b" UTC" && rest != b" GMT" {
                return None;
            }
            c.i = c.b.len();
            0
        }
        Some(_) => return None,
    };
    if c.i != c.b.len() {
        return None;
    }
    let year = i64::from(year);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_min * 60;
    Some(secs * 1000 + i64::from(millis))
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// An epoch number as logs write it: seconds (up to 11 digits), milliseconds (12–14) or
/// microseconds/nanoseconds (longer); fractional seconds allowed.
pub fn epoch_to_ms(v: f64) -> Option<i64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ms = if v < 1e11 {
        v * 1000.0
    } else if v < 1e14 {
        v
    } else if v < 1e17 {
        v / 1000.0
    } else {
        v / 1_000_000.0
    };
    // Bounded above, so the cast cannot saturate meaningfully.
    (ms < 1e15).then_some(ms as i64)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Parses the RFC 3164 timestamp at the start of `s` (`Mmm dd hh:mm:ss`, day space-padded),
/// returning epoch milliseconds (UTC, as the stamp carries no zone) and the bytes consumed. The
/// year is taken from `reference_ms` (normally the time of receipt); a stamp more than a month in
/// the future of the reference belongs to the previous year (a December line read in January).
pub fn parse_rfc3164(s: &[u8], reference_ms: i64) -> Option<(i64, usize)> {
    let mon = s.get(..3)?;
    let month = MONTHS.iter().position(|m| m.as_slice() == mon)? as u32 + 1;
    let mut c = Cursor { b: s, i: 3 };
    if !c.eat(b' ') {
        return None;
    }
    c.eat(b' ');
    let day = if c.peek().is_some_and(|d| d.is_ascii_digit()) && {
        let next = c.b.get(c.i + 1).copied();
        next.is_some_and(|d| d.is_ascii_digit())
    } {
        c.digits(2)?
    } else {
        c.digits(1)?
    };
    if !c.eat(b' ') {
        return None;
    }
    let hour = c.digits(2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2)?;
    c.eat(b':').then_some(())?;
    let second = c.digits(2)?;
    // Some daemons add fractions (`rsyslog` high-precision off, but `Jan 2 03:04:05.123` exists).
    let mut millis = 0u32;
    if c.eat(b'.') {
        let mut n = 0;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            if n < 3 {
                millis = millis * 10 + u32::from(d - b'0');
            }
            n += 1;
            c.i += 1;
        }
        for _ in n.min(3)..3 {
            millis *= 10;
        }
    }
    if hour > 23 || minute > 59 || second > 60 || day == 0 || day > 31 {
        return None;
    }
    let (ref_year, _, _) = civil_from_days(reference_ms.div_euclid(86_400_000));
    let at = |year: i64| {
        (day <= days_in_month(year, month)).then(|| {
            (days_from_civil(year, month, day) * 86_400
                + i64::from(hour * 3600 + minute * 60 + second))
                * 1000
                + i64::from(millis)
        })
    };
    let mut ms = at(ref_year).or_else(|| at(ref_year - 1))?;
    if ms > reference_ms + 31 * 86_400_000 {
        ms = at(ref_year - 1)?;
    }
    Some((ms, c.i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-06-26T08:05:59Z"),
            Some(1_719_389_159_000)
        );
        assert_eq!(
            parse_rfc3339("2020-04-08T16:32:36.125094Z"),
            Some(1_586_363_556_125)
        );
        assert_eq!(
            parse_rfc3339("2023-01-31 18:58:27.638"),
            Some(1_675_191_507_638)
        );
        assert_eq!(
            parse_rfc3339("2024-01-01T02:00:00+02:00"),
            Some(1_704_067_200_000)
        );
        assert_eq!(
            parse_rfc3339("2024-01-01 00:00:00.5 UTC"),
            Some(1_704_067_200_500)
        );
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            format_rfc3339(1_586_363_556_125),
            "2020-04-08T16:32:36.125Z"
        );
        assert_eq!(parse_rfc3339(&format_rfc3339(-1_234_567)), Some(-1_234_567));
    }

    #[test]
    fn rfc3164_year_from_reference() {
        let jan_2025 = parse_rfc3339("2025-01-03T00:00:00Z").unwrap();
        let (ms, n) = parse_rfc3164(b"Dec 31 23:59:58 host sshd[1]: x", jan_2025).unwrap();
        assert_eq!(ms, parse_rfc3339("2024-12-31T23:59:58Z").unwrap());
        assert_eq!(n, 15);
        let (ms, n) = parse_rfc3164(b"Jan  2 03:04:05 h", jan_2025).unwrap();
        assert_eq!(ms, parse_rfc3339("2025-01-02T03:04:05Z").unwrap());
        assert_eq!(n, 15);
        assert!(parse_rfc3164(b"Foo  2 03:04:05 h", jan_2025).is_none());
        assert!(parse_rfc3164(b"Jan 32 03:04:05 h", jan_2025).is_none());
    }

    #[test]
    fn epochs() {
        assert_eq!(epoch_to_ms(1_621_305_118_553.0), Some(1_621_305_118_553));
        assert_eq!(epoch_to_ms(1_621_305_118.5), Some(1_621_305_118_500));
        assert_eq!(epoch_to_ms(f64::NAN), None);
        assert_eq!(epoch_to_ms(-1.0), None);
    }
}
