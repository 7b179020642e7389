use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant with millisecond precision, written `2024-06-25T04:38:28.732Z` as the original's
/// row timestamps are. Truncating at construction keeps what is stored equal to what is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    pub fn parse(raw: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(raw).map(|t| Self::from(t.with_timezone(&Utc)))
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// This instant, or the millisecond after `earlier` when this one is not later: a row's
    /// `updated_date` only moves forward, even when a registration that took its time before
    /// another commits after it.
    pub fn after(self, earlier: Timestamp) -> Timestamp {
        if self > earlier { self } else { Self(earlier.0 + chrono::Duration::milliseconds(1)) }
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Self(value.trunc_subsecs(3))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_utc_with_milliseconds_and_z() {
        let t = Timestamp::parse("2024-06-25T10:08:28.732654+05:30").unwrap();
        assert_eq!(t.to_string(), "2024-06-25T04:38:28.732Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2024-06-25T04:38:28.732Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn whole_seconds_still_show_milliseconds() {
        let t = Timestamp::parse("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2024-01-01T00:00:00.000Z");
    }
}
