//! A tenant's plan: what it may keep (users, API keys, instances, indicators), what it may do
//! per day (telemetry events, task runs), and until when a trial lasts. Every limit is
//! optional (none: unlimited); a tenant without a plan has no limits. Past a count the
//! request is refused (403), past a daily rate it is throttled until the next UTC day (429),
//! and a trial past its end leaves the tenant read-only — its data stays.

use crate::{ParseError, Timestamp};

/// The highest limit a plan may state (a trillion): any count or daily rate above it is
/// beyond what one tenant can reach.
pub const PLAN_LIMIT_MAX: u64 = 1_000_000_000_000;

/// Seconds in a UTC day, for daily meters.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// What a tenant may keep and do. `None`: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub users_max: Option<u64>,
    pub api_keys_max: Option<u64>,
    pub instances_max: Option<u64>,
    pub indicators_max: Option<u64>,
    pub events_per_day: Option<u64>,
    pub runs_per_day: Option<u64>,
    /// After it, the tenant is read-only.
    pub trial_ends_at: Option<Timestamp>,
}

impl Plan {
    /// Whether the trial has ended at `now` (the tenant is read-only).
    pub fn read_only_at(&self, now: Timestamp) -> bool {
        self.trial_ends_at.is_some_and(|end| now >= end)
    }

    /// The limit on `counted`.
    pub fn count_max(&self, counted: Counted) -> Option<u64> {
        match counted {
            Counted::Users => self.users_max,
            Counted::ApiKeys => self.api_keys_max,
            Counted::Instances => self.instances_max,
            Counted::Indicators => self.indicators_max,
        }
    }

    /// The daily limit on `meter`.
    pub fn per_day(&self, meter: Meter) -> Option<u64> {
        match meter {
            Meter::Events => self.events_per_day,
            Meter::Runs => self.runs_per_day,
        }
    }
}

/// What a plan counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Users,
    ApiKeys,
    Instances,
    Indicators,
}

impl Counted {
    /// The plan's field for it.
    pub fn limit_name(self) -> &'static str {
        match self {
            Counted::Users => "users_max",
            Counted::ApiKeys => "api_keys_max",
            Counted::Instances => "instances_max",
            Counted::Indicators => "indicators_max",
        }
    }
}

/// What a plan meters per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Meter {
    /// Telemetry events accepted.
    Events,
    /// Task runs asked for.
    Runs,
}

impl Meter {
    pub const ALL: [Meter; 2] = [Meter::Events, Meter::Runs];

    pub fn as_str(self) -> &'static str {
        match self {
            Meter::Events => "events",
            Meter::Runs => "runs",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .ok_or_else(|| ParseError::new("meter", "expected events or runs"))
    }

    /// The plan's field for it.
    pub fn limit_name(self) -> &'static str {
        match self {
            Meter::Events => "events_per_day",
            Meter::Runs => "runs_per_day",
        }
    }
}

/// A UTC day, as the number of days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    pub fn of(at: Timestamp) -> Self {
        Self(at.unix_micros().div_euclid(SECONDS_PER_DAY * 1_000_000))
    }

    pub fn from_number(days: i64) -> Self {
        Self(days)
    }

    pub fn number(self) -> i64 {
        self.0
    }

    /// Its first instant.
    pub fn start(self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.saturating_mul(SECONDS_PER_DAY * 1_000_000))
    }

    pub fn plus(self, days: i64) -> Self {
        Self(self.0.saturating_add(days))
    }

    /// Seconds from `now` until this day's end (at least 1).
    pub fn seconds_left(self, now: Timestamp) -> u64 {
        let end = self.plus(1).start().unix_micros();
        let left = (end - now.unix_micros()).max(1_000_000) / 1_000_000;
        u64::try_from(left).unwrap_or(1)
    }

    /// `YYYY-MM-DD`.
    pub fn date(self) -> String {
        self.start().to_string()[..10].to_owned()
    }
}

/// What one tenant used on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    pub day: Day,
    pub meter: Meter,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_ends_at_its_instant() {
        let end = Timestamp::parse("2026-12-04T12:00:00Z").unwrap();
        let plan = Plan {
            trial_ends_at: Some(end),
            ..Plan::default()
        };
        assert!(!plan.read_only_at(end.plus_seconds(-1)));
        assert!(plan.read_only_at(end));
        assert!(!Plan::default().read_only_at(end), "no plan, no end");
    }

    #[test]
    fn days_are_utc_and_count_down_to_midnight() {
        let at = Timestamp::parse("2026-12-04T23:59:30Z").unwrap();
        let day = Day::of(at);
        assert_eq!(day.date(), "2026-12-04");
        assert_eq!(day.seconds_left(at), 30);
        assert_eq!(day.plus(1).date(), "2026-12-05");
        assert_eq!(
            Day::of(Timestamp::parse("1969-12-31T23:00:00Z").unwrap()).date(),
            "1969-12-31"
        );
        assert_eq!(Meter::parse("runs").unwrap(), Meter::Runs);
        assert!(Meter::parse("calls").is_err());
    }
}
