//! Calendar formatting and parsing of Unix timestamps (UTC only, no time zone data), for log
//! lines, status output and the timestamps of release manifests and signer validity windows.

/// Formats seconds and milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_utc(unix_secs: i64, millis: u32) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        millis.min(999)
    )
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC).
pub fn format_rfc3339(unix_secs: i64) -> String {
    let mut text = format_utc(unix_secs, 0);
    text.replace_range(19.., "Z");
    text
}

/// A span of seconds as people read it, two units at most: `45s`, `2m05s`, `1h02m`, `3d04h`.
pub fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3_600..86_400 => format!("{}h{:02}m", secs / 3_600, secs / 60 % 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs / 3_600 % 24),
    }
}

/// How long before `now` the RFC 3339 `time` was, as a [`span`] (`0s` for a time ahead of
/// `now`: another host's clock); `None` when `time` does not parse.
pub fn since(time: &str, now: i64) -> Option<String> {
    let then = parse_rfc3339(time)?;
    Some(span(u64::try_from(now.saturating_sub(then)).unwrap_or(0)))
}

/// How long after `now` the RFC 3339 `time` is, as a [`span`] (`0s` once past).
pub fn until(time: &str, now: i64) -> Option<String> {
    let then = parse_rfc3339(time)?;
    Some(span(u64::try_from(then.saturating_sub(now)).unwrap_or(0)))
}

/// How long from the RFC 3339 `start` to `end`, as a [`span`]; `None` when either does not
/// parse.
pub fn between(start: &str, end: &str) -> Option<String> {
    let (start, end) = (parse_rfc3339(start)?, parse_rfc3339(end)?);
    Some(span(u64::try_from(end.saturating_sub(start)).unwrap_or(0)))
}

/// Seconds since the Unix epoch of a UTC calendar instant, or `None` when a field is out of range.
pub fn unix_from_utc(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
    if day == 0 || day > max_day || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

/// Reads an RFC 3339 UTC instant, `YYYY-MM-DDTHH:MM:SSZ` (fractional seconds allowed and
/// dropped), as seconds since the Unix epoch. Offsets other than `Z` are not accepted.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't')
        || bytes[13] != b':'
        || bytes[16] != b':'
        || !matches!(bytes[bytes.len() - 1], b'Z' | b'z')
    {
        return None;
    }
    let fraction = &text[19..text.len() - 1];
    if !(fraction.is_empty()
        || (fraction.len() > 1
            && fraction.starts_with('.')
            && fraction[1..].bytes().all(|b| b.is_ascii_digit())))
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    unix_from_utc(
        i64::from(number(0..4)?),
        number(5..7)?,
        number(8..10)?,
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
    )
}

/// Converts a proleptic Gregorian (year, month, day) to days since 1970-01-01
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// The algorithm is Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(format_utc(1_795_291_060, 999), "2026-11-21T19:57:40.999Z");
        assert_eq!(format_utc(-1, 0), "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn rfc3339_round_trips() {
        for secs in [0, 951_782_400, 1_795_291_060, 4_102_444_799] {
            let text = format_rfc3339(secs);
            assert_eq!(parse_rfc3339(&text), Some(secs), "{text}");
        }
        assert_eq!(format_rfc3339(1_795_291_060), "2026-11-21T19:57:40Z");
        assert_eq!(
            parse_rfc3339("2026-11-21T19:57:40.123Z"),
            Some(1_795_291_060)
        );
    }

    #[test]
    fn rfc3339_refuses_what_it_does_not_understand() {
        for text in [
            "2026-11-21T19:57:40+01:00",
            "2026-11-21 19:57:40",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T19:57:40.Z",
            "+026-11-21T19:57:40Z",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }

    #[test]
    fn spans_read_in_two_units_at_most() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(125), "2m05s");
        assert_eq!(span(3_720), "1h02m");
        assert_eq!(span(3 * 86_400 + 4 * 3_600 + 59), "3d04h");
        let now = 1_796_637_630;
        assert_eq!(since("2026-12-07T10:00:00Z", now).as_deref(), Some("30s"));
        assert_eq!(since("2026-12-07T10:01:00Z", now).as_deref(), Some("0s"));
        assert_eq!(until("2026-12-07T10:10:00Z", now).as_deref(), Some("9m30s"));
        assert_eq!(since("yesterday", now), None);
        assert_eq!(
            between("2026-12-07T10:00:00Z", "2026-12-07T10:03:30Z").as_deref(),
            Some("3m30s")
        );
    }
}
