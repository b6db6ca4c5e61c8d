//! Time bounds (`--since`, `--until`): durations back from now, RFC 3339 timestamps, dates.

const SECOND_MS: i64 = 1000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;

const ACCEPTED: &str = "expected a duration back from now (30d, 12h, 90m, 45s, 2w, 1d12h), an \
                        RFC 3339 timestamp (2026-11-01T00:00:00Z, 2026-11-01T02:00:00+02:00), \
                        a date (2026-11-01, midnight UTC) or `now`";

/// A time bound to epoch milliseconds.
///
/// Accepts `now`; a duration meaning "now minus" it (`30d`, `12h`, `90m`, `45s`, `2w`, and sums
/// such as `1d12h`; see [`parse_duration`]); an RFC 3339 timestamp (`2026-11-01T00:00:00Z`,
/// `2026-11-01T02:00:00.250+02:00`; `t` or a space may replace `T`, `z` may replace `Z`, the
/// zone is required, fraction digits past milliseconds are dropped); or a date (`2026-11-01`,
/// midnight UTC). Surrounding whitespace is ignored. The error names the accepted forms.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    let starts_with_digit = t.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if starts_with_digit && t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let d = parse_duration(t)?;
        return now_ms
            .checked_sub(d)
            .ok_or_else(|| format!("invalid time `{t}`: too far back"));
    }
    if t.len() >= 10 && t.as_bytes().get(4) == Some(&b'-') {
        return parse_timestamp(t);
    }
    Err(format!("invalid time `{t}`: {ACCEPTED}"))
}

/// A duration to milliseconds: one or more `<number><unit>` with units `w` (weeks), `d`, `h`,
/// `m` (minutes), `s`, as in `30d`, `90m` or `1d12h`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let invalid = || format!("invalid duration `{t}`: {ACCEPTED}");
    if t.is_empty() {
        return Err(invalid());
    }
    let mut total: i64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (number, tail) = rest.split_at(digits);
        let mut tail_chars = tail.chars();
        let unit = match tail_chars.next() {
            Some('w') => WEEK_MS,
            Some('d') => DAY_MS,
            Some('h') => HOUR_MS,
            Some('m') => MINUTE_MS,
            Some('s') => SECOND_MS,
            None => {
                return Err(format!(
                    "invalid duration `{t}`: `{number}` needs a unit, as in {number}d, \
                     {number}h, {number}m or {number}s"
                ));
            }
            Some(_) => return Err(invalid()),
        };
        let too_long = || format!("invalid duration `{t}`: too long");
        let n: i64 = number.parse().map_err(|_| too_long())?;
        total = n
            .checked_mul(unit)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(too_long)?;
        rest = tail_chars.as_str();
    }
    Ok(total)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
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
            let d = self.b.get(self.i).filter(|d| d.is_ascii_digit())?;
            v = v * 10 + u32::from(d - b'0');
            self.i += 1;
        }
        Some(v)
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
}

/// `YYYY-MM-DD` or an RFC 3339 timestamp.
fn parse_timestamp(t: &str) -> Result<i64, String> {
    let invalid = || format!("invalid time `{t}`: {ACCEPTED}");
    let out_of_range = |what: &str| format!("invalid time `{t}`: {what} out of range");
    let mut c = Cursor {
        b: t.as_bytes(),
        i: 0,
    };
    let year = c.digits(4).ok_or_else(invalid)?;
    if !c.eat(b'-') {
        return Err(invalid());
    }
    let month = c.digits(2).ok_or_else(invalid)?;
    if !c.eat(b'-') {
        return Err(invalid());
    }
    let day = c.digits(2).ok_or_else(invalid)?;
    let year = i64::from(year);
    if !(1..=12).contains(&month) {
        return Err(out_of_range("month"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(out_of_range("day"));
    }
    let midnight = days_from_civil(year, month, day) * DAY_MS;
    if c.done() {
        return Ok(midnight);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err(invalid());
    }
    let hour = c.digits(2).ok_or_else(invalid)?;
    if !c.eat(b':') {
        return Err(invalid());
    }
    let minute = c.digits(2).ok_or_else(invalid)?;
    if !c.eat(b':') {
        return Err(invalid());
    }
    let second = c.digits(2).ok_or_else(invalid)?;
    if hour > 23 {
        return Err(out_of_range("hour"));
    }
    if minute > 59 {
        return Err(out_of_range("minute"));
    }
    if second > 59 {
        return Err(out_of_range("second"));
    }
    let mut millis = 0i64;
    if c.eat(b'.') || c.eat(b',') {
        let mut n = 0;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            if n < 3 {
                millis = millis * 10 + i64::from(d - b'0');
            }
            n += 1;
            c.i += 1;
        }
        if n == 0 {
            return Err(invalid());
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_ms = match c.peek() {
        None => {
            return Err(format!(
                "invalid time `{t}`: a timestamp needs a zone: add Z for UTC or an offset such \
                 as +02:00"
            ));
        }
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let h = c.digits(2).ok_or_else(invalid)?;
            c.eat(b':');
            let m = c.digits(2).ok_or_else(invalid)?;
            if h > 23 || m > 59 {
                return Err(out_of_range("zone offset"));
            }
            let v = i64::from(h) * HOUR_MS + i64::from(m) * MINUTE_MS;
            if sign == b'-' { -v } else { v }
        }
        Some(_) => return Err(invalid()),
    };
    if !c.done() {
        return Err(invalid());
    }
    Ok(midnight
        + i64::from(hour) * HOUR_MS
        + i64::from(minute) * MINUTE_MS
        + i64::from(second) * SECOND_MS
        + millis
        - offset_ms)
}
