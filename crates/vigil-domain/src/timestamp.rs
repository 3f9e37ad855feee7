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

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with exactly six fractional digits, so the text form is canonical.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.to_datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.microsecond()
        )
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

    proptest! {
        #[test]
        fn display_then_parse_is_identity(micros in 0i64..4_102_444_800_000_000) {
            let at = Timestamp::from_unix_micros(micros);
            prop_assert_eq!(Timestamp::parse(&at.to_string()), Ok(at));
        }
    }
}
