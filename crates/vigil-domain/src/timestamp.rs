use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ParseError;

/// A UTC instant with microsecond precision — the precision both stores keep, so a value
/// read back is equal to the value written (the audit hash depends on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn unix_micros(&self) -> i64 {
        self.0
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let micros = at.unix_timestamp_nanos().div_euclid(1_000);
        Self(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    pub fn to_datetime(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Parses an RFC 3339 instant (`2026-11-23T10:00:00Z`, any offset), truncating below
    /// microseconds.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        OffsetDateTime::parse(raw, &Rfc3339)
            .map(Self::from_datetime)
            .map_err(|_| {
                ParseError::new("timestamp", "expected RFC 3339, e.g. 2026-11-23T10:00:00Z")
            })
    }

    pub fn plus_seconds(&self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, written digit by digit: list responses format four
    /// instants per item, and `write!` with padding was a tenth of a list's cost. Years
    /// outside 0000–9999 are clamped to that range.
    fn rfc3339(&self) -> [u8; 27] {
        const MICROS_PER_DAY: i64 = 86_400_000_000;
        let micros = self
            .0
            .clamp(-62_167_219_200_000_000, 253_402_300_799_999_999);
        let days = micros.div_euclid(MICROS_PER_DAY);
        let of_day = micros.rem_euclid(MICROS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let seconds = of_day / 1_000_000;
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for k in (at..at + width).rev() {
                out[k] = b'0' + u8::try_from(value % 10).unwrap_or(0);
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, seconds / 3_600);
        put(14, 2, seconds / 60 % 60);
        put(17, 2, seconds % 60);
        put(20, 6, of_day % 1_000_000);
        out
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with exactly six fractional digits, so the text form is canonical.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.rfc3339();
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_accepts_offsets_and_normalizes_to_utc() {
        let at = Timestamp::parse("2026-11-23T12:00:00.5+02:00").unwrap();
        assert_eq!(at.to_string(), "2026-11-23T10:00:00.500000Z");
    }

    #[test]
    fn parse_rejects_dates_without_time() {
        assert!(Timestamp::parse("2026-11-23").is_err());
    }

    #[test]
    fn display_handles_leap_days_and_epoch_edges() {
        let at = |raw| Timestamp::parse(raw).unwrap().to_string();
        assert_eq!(
            at("2024-02-29T23:59:59.999999Z"),
            "2024-02-29T23:59:59.999999Z"
        );
        assert_eq!(at("1970-01-01T00:00:00Z"), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at("1969-12-31T23:59:59.5Z"), "1969-12-31T23:59:59.500000Z");
        assert_eq!(at("2000-03-01T00:00:00Z"), "2000-03-01T00:00:00.000000Z");
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999) {
            let at = Timestamp::from_unix_micros(micros);
            prop_assert_eq!(Timestamp::parse(&at.to_string()), Ok(at));
        }

        #[test]
        fn display_agrees_with_the_time_crate(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999) {
            let at = Timestamp::from_unix_micros(micros);
            let reference = at.to_datetime();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                reference.year(), u8::from(reference.month()), reference.day(),
                reference.hour(), reference.minute(), reference.second(), reference.microsecond()
            );
            prop_assert_eq!(at.to_string(), expected);
        }
    }
}
