//! Time bounds: durations, RFC 3339 timestamps, dates, `now`.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use acta_query::{days_from_civil, parse_duration, parse_time};

const NOW: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z
const S: i64 = 1000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;
const D: i64 = 24 * H;

fn t(s: &str) -> i64 {
    parse_time(s, NOW).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn fails(s: &str, needle: &str) {
    match parse_time(s, NOW) {
        Ok(v) => panic!("{s:?} parsed to {v}"),
        Err(e) => assert!(e.contains(needle), "{s:?}: {e:?} lacks {needle:?}"),
    }
}

#[test]
fn now() {
    assert_eq!(t("now"), NOW);
    assert_eq!(t(" NOW "), NOW);
}

#[test]
fn durations_back_from_now() {
    assert_eq!(t("30d"), NOW - 30 * D);
    assert_eq!(t("12h"), NOW - 12 * H);
    assert_eq!(t("90m"), NOW - 90 * M);
    assert_eq!(t("45s"), NOW - 45 * S);
    assert_eq!(t("2w"), NOW - 14 * D);
    assert_eq!(t("1d12h"), NOW - 36 * H);
    assert_eq!(t("1w2d3h4m5s"), NOW - (9 * D + 3 * H + 4 * M + 5 * S));
    assert_eq!(t("0s"), NOW);
    assert_eq!(parse_duration("90m"), Ok(90 * M));
    assert_eq!(parse_duration("1d12h"), Ok(36 * H));
}

#[test]
fn rfc3339_timestamps() {
    assert_eq!(t("2026-11-01T00:00:00Z"), 1_793_491_200_000);
    assert_eq!(t("1970-01-01T00:00:00Z"), 0);
    assert_eq!(t("2026-11-01T12:34:56Z"), NOW + 12 * H + 34 * M + 56 * S);
    // Offsets.
    assert_eq!(t("2026-11-01T02:00:00+02:00"), t("2026-11-01T00:00:00Z"));
    assert_eq!(t("2026-10-31T19:00:00-05:00"), NOW);
    assert_eq!(t("2026-11-01T05:30:00+05:30"), NOW);
    assert_eq!(t("2026-11-01T02:00:00+0200"), NOW);
    assert_eq!(t("2026-11-01T00:00:00+00:00"), NOW);
    assert_eq!(t("2026-11-01T00:00:00-00:00"), NOW);
    // Fractions: truncated to milliseconds.
    assert_eq!(t("2026-11-01T00:00:00.5Z"), NOW + 500);
    assert_eq!(t("2026-11-01T00:00:00.25Z"), NOW + 250);
    assert_eq!(t("2026-11-01T00:00:00.123456789Z"), NOW + 123);
    assert_eq!(t("2026-11-01T00:00:00,007Z"), NOW + 7);
    assert_eq!(t("2026-11-01T02:00:00.999+02:00"), NOW + 999);
    // Lowercase and the space separator RFC 3339 allows.
    assert_eq!(t("2026-11-01t00:00:00z"), NOW);
    assert_eq!(t("2026-11-01 00:00:00Z"), NOW);
    // Before 1970.
    assert_eq!(t("1969-12-31T23:59:59Z"), -S);
}

#[test]
fn dates_are_midnight_utc() {
    assert_eq!(t("2026-11-01"), NOW);
    assert_eq!(t("1970-01-01"), 0);
    assert_eq!(t("1969-12-31"), -D);
    assert_eq!(t("2000-01-01"), 946_684_800_000);
}

#[test]
fn leap_years() {
    assert_eq!(t("2024-03-01") - t("2024-02-28"), 2 * D);
    assert_eq!(t("2023-03-01") - t("2023-02-28"), D);
    assert_eq!(t("2024-02-29T12:00:00Z"), t("2024-02-29") + 12 * H);
    assert_eq!(t("2000-03-01") - t("2000-02-28"), 2 * D);
    assert_eq!(t("2100-03-01") - t("2100-02-28"), D);
    assert_eq!(t("2025-01-01") - t("2024-01-01"), 366 * D);
    assert_eq!(t("2026-01-01") - t("2025-01-01"), 365 * D);
    fails("2023-02-29", "day out of range");
    fails("1900-02-29", "day out of range");
    fails("2100-02-29", "day out of range");
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
}

#[test]
fn civil_arithmetic_matches_a_day_by_day_count() {
    let mut days = days_from_civil(1960, 1, 1);
    for year in 1960..2110 {
        for month in 1..=12u32 {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let len = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            for day in 1..=len {
                assert_eq!(
                    days_from_civil(year, month, day),
                    days,
                    "{year}-{month}-{day}"
                );
                days += 1;
            }
        }
    }
}

#[test]
fn errors_name_the_accepted_forms() {
    for bad in [
        "yesterday",
        "",
        "-30d",
        "30 d",
        "1.5h",
        "2026/11/01",
        "30x",
        "d30",
    ] {
        fails(bad, "RFC 3339");
    }
    let e = parse_time("yesterday", NOW).unwrap_err();
    for form in [
        "30d",
        "12h",
        "90m",
        "45s",
        "2w",
        "2026-11-01T00:00:00Z",
        "2026-11-01",
        "now",
    ] {
        assert!(e.contains(form), "{e}");
    }
    fails("30", "`30` needs a unit");
    fails("1d12", "`12` needs a unit");
    fails("2026-13-01", "month out of range");
    fails("2026-00-01", "month out of range");
    fails("2026-04-31", "day out of range");
    fails("2026-11-00", "day out of range");
    fails("2026-11-01T24:00:00Z", "hour out of range");
    fails("2026-11-01T00:60:00Z", "minute out of range");
    fails("2026-11-01T00:00:60Z", "second out of range");
    fails("2026-11-01T00:00:00+24:00", "zone offset out of range");
    fails("2026-11-01T00:00:00", "needs a zone");
    fails("2026-11-01T00:00Z", "RFC 3339");
    fails("2026-11-01T00:00:00.Z", "RFC 3339");
    fails("2026-11-01T00:00:00Zjunk", "RFC 3339");
    fails("2026-11-01X", "RFC 3339");
    fails("2026-11-1", "RFC 3339");
    fails("99999999999999999999d", "too long");
    fails("100000000000000w", "too long");
    assert!(
        parse_time("1w", i64::MIN)
            .unwrap_err()
            .contains("too far back")
    );
}
