//! The models' `timestamp` members (only TCS has them: `PublishMetricsRequest.timestamp`,
//! `ContainerHealth.statusSince`, `InstanceStatus.lastUpdated`, …), as a JSON number of
//! seconds since the Unix epoch.
//!
//! Where that comes from: both models declare `"protocol": "json"`, whose timestamps are
//! epoch seconds, and the agent's websocket client (`ecs-agent/wsclient/client.go`,
//! `CreateRequestMessage`) has long built each message with aws-sdk-go's
//! `private/protocol/json/jsonutil.BuildJSON`, which writes a `time.Time` as a bare number:
//! whole seconds in older SDKs (`strconv.AppendInt(…, t.UTC().Unix(), 10)`), seconds with a
//! millisecond fraction in newer ones (`protocol.FormatTime(UnixTimeFormatName, …)`: the
//! time truncated to milliseconds, `ms/1e3` formatted with `'f', -1`, e.g. `1700000000.123`).
//! We write exactly that. Newer agent trees marshal with `encoding/json` instead (the vendored
//! `wsclient/client.go` calls `json.Marshal(input)`), through a `utils.Timestamp` type whose
//! source we could not read, and agents built on the SDK for Go v2 marshal plain `time.Time`,
//! i.e. an RFC 3339 string; so on decode we also accept a string, RFC 3339 or numeric.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant with millisecond precision (the precision the agent's SDK keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_millis: i64,
}

impl Timestamp {
    pub const fn from_unix_millis(unix_millis: i64) -> Self {
        Self { unix_millis }
    }

    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self {
            unix_millis: seconds.saturating_mul(1000),
        }
    }

    pub const fn unix_millis(self) -> i64 {
        self.unix_millis
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let millis = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Self::from_unix_millis(millis)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(timestamp: Timestamp) -> Self {
        let magnitude = Duration::from_millis(timestamp.unix_millis.unsigned_abs());
        if timestamp.unix_millis >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.unix_millis % 1000 == 0 {
            serializer.serialize_i64(self.unix_millis / 1000)
        } else {
            serializer.serialize_f64(self.unix_millis as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("seconds since the Unix epoch, or an RFC 3339 date-time")
    }

    fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Timestamp, E> {
        Ok(Timestamp::from_unix_seconds(seconds))
    }

    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Timestamp, E> {
        i64::try_from(seconds)
            .map(Timestamp::from_unix_seconds)
            .map_err(|_| E::custom("timestamp out of range"))
    }

    fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Timestamp, E> {
        let millis = (seconds * 1000.0).round();
        if millis.is_finite() && millis.abs() < i64::MAX as f64 {
            Ok(Timestamp::from_unix_millis(millis as i64))
        } else {
            Err(E::custom("timestamp out of range"))
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            return self.visit_f64(seconds);
        }
        let time = OffsetDateTime::parse(text, &Rfc3339).map_err(E::custom)?;
        let millis = time.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(millis)
            .map(Timestamp::from_unix_millis)
            .map_err(|_| E::custom("timestamp out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Timestamp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn writes_whole_seconds_as_an_integer_and_millis_as_a_fraction() {
        let whole = Timestamp::from_unix_seconds(1_700_000_000);
        assert_eq!(serde_json::to_string(&whole).unwrap(), "1700000000");
        let fractional = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(
            serde_json::to_string(&fractional).unwrap(),
            "1700000000.123"
        );
    }

    #[test]
    fn reads_every_form_an_agent_writes() {
        let expected = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(read("1700000000.123"), expected);
        assert_eq!(read("\"2023-11-14T22:13:20.123Z\""), expected);
        assert_eq!(read("\"2023-11-14T23:13:20.123456789+01:00\""), expected);
        assert_eq!(read("\"1700000000.123\""), expected);
        assert_eq!(
            read("1700000000"),
            Timestamp::from_unix_seconds(1_700_000_000)
        );
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }

    #[test]
    fn round_trips_through_system_time() {
        let stamp = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(Timestamp::from(SystemTime::from(stamp)), stamp);
        let early = Timestamp::from_unix_millis(-1_500);
        assert_eq!(Timestamp::from(SystemTime::from(early)), early);
    }
}
