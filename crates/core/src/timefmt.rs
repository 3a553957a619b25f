//! Time formats: RFC 3339 (the Lakebase APIs), the local `YYYY-MM-DD HH:MM:SS` of CLIs, and
//! the RFC 3339 rendering of wall-clock milliseconds for messages.

/// Parse an RFC 3339 timestamp (with or without fractional seconds) into Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// RFC 3339 (UTC) for Unix milliseconds, for messages.
pub fn fmt_wall(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms}ms"))
}

/// RFC 3339 UTC with exactly three fractional digits (`2026-12-02T18:00:00.120Z`), for log lines.
pub fn fmt_wall_millis(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => format!("{ms}ms"),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fraction]` in the local time zone (the Azure CLI's `expiresOn`, the
/// Python/Java SDKs' reading of CLI expiries) → Unix milliseconds.
pub fn parse_local_datetime_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i32>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i32>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !frac.bytes().all(|b| b.is_ascii_digit()) || !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let ms = if frac.is_empty() { 0 } else { format!("{:0<3}", &frac[..frac.len().min(3)]).parse::<i64>().ok()? };
    // SAFETY: a zeroed `tm` is valid; mktime only reads and normalises it.
    let secs = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = da;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se;
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    if secs == -1 {
        return None;
    }
    Some(secs as i64 * 1000 + ms)
}

/// An expiry as the SDKs accept it from CLIs: RFC 3339 (with or without fraction), else a local
/// `YYYY-MM-DD HH:MM:SS[.fraction]`.
pub fn parse_expiry_ms(s: &str) -> Option<i64> {
    parse_rfc3339_ms(s).or_else(|| parse_local_datetime_ms(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps_have_a_fixed_width() {
        assert_eq!(fmt_wall_millis(1_787_140_800_000), "2026-08-19T12:00:00.000Z");
        assert_eq!(fmt_wall_millis(1_787_140_800_120), "2026-08-19T12:00:00.120Z");
    }

    #[test]
    fn rfc3339_with_and_without_fraction() {
        assert_eq!(parse_rfc3339_ms("2026-08-19T12:00:00Z"), Some(1_787_140_800_000));
        assert_eq!(parse_rfc3339_ms("2026-08-19T12:00:00.250Z"), Some(1_787_140_800_250));
        assert_eq!(parse_rfc3339_ms("2026-08-19T12:00:00.123456789Z"), Some(1_787_140_800_123));
        assert_eq!(parse_rfc3339_ms("2026-08-19T14:00:00+02:00"), Some(1_787_140_800_000));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn expiry_formats() {
        assert_eq!(parse_expiry_ms("2026-08-19T12:00:00Z"), Some(1_787_140_800_000));
        assert_eq!(parse_expiry_ms("2026-08-19T12:00:00.123456789Z"), Some(1_787_140_800_123));
        // Local times: compare with the same instant through mktime's own zone.
        let a = parse_expiry_ms("2026-08-19 12:00:00").unwrap();
        let b = parse_expiry_ms("2026-08-19 12:00:00.5").unwrap();
        assert_eq!(b - a, 500);
        assert_eq!(parse_expiry_ms("2026-08-19 12:00:01.123456").unwrap() - a, 1123);
        assert!((a - 1_787_140_800_000).abs() <= 14 * 3600 * 1000);
        assert_eq!(parse_expiry_ms("tomorrow"), None);
        assert_eq!(parse_expiry_ms("2026-13-19 12:00:00"), None);
    }
}
