//! Pagination tokens. GetLogEvents' tokens name a direction (`f/…` forward, `b/…` backward,
//! the shape CloudWatch's tokens have) and a position in the stream's time order (timestamp,
//! then ordinal); FilterLogEvents' token names the last event returned: its timestamp,
//! stream and ordinal, which events are ordered by.

use crate::stream::EventKey;
use crate::{FilteredEvent, LogsError, Result};

pub fn events_token(forward: bool, (timestamp, ordinal): EventKey) -> String {
    format!(
        "{}/{timestamp}/{ordinal:020}",
        if forward { 'f' } else { 'b' }
    )
}

pub(crate) fn bad_token() -> LogsError {
    LogsError::InvalidParameter("The specified nextToken is not valid.".into())
}

/// `(forward, position)`.
pub fn parse_events_token(token: &str) -> Result<(bool, EventKey)> {
    let mut parts = token.splitn(3, '/');
    let (Some(direction), Some(ts), Some(ordinal)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_token());
    };
    let key = (
        ts.parse().map_err(|_| bad_token())?,
        ordinal.parse().map_err(|_| bad_token())?,
    );
    match direction {
        "f" => Ok((true, key)),
        "b" => Ok((false, key)),
        _ => Err(bad_token()),
    }
}

/// Where a FilterLogEvents page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPosition {
    pub timestamp: i64,
    pub ordinal: u64,
    pub stream: String,
}

pub fn filter_token(last: &FilteredEvent) -> String {
    format!("{}/{}/{}", last.timestamp, last.ordinal, last.stream)
}

pub fn parse_filter_token(token: &str) -> Result<FilterPosition> {
    let mut parts = token.splitn(3, '/');
    let (Some(ts), Some(ordinal), Some(stream)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_token());
    };
    Ok(FilterPosition {
        timestamp: ts.parse().map_err(|_| bad_token())?,
        ordinal: ordinal.parse().map_err(|_| bad_token())?,
        stream: stream.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_junk_is_refused() {
        let t = events_token(true, (-3, 42));
        assert_eq!(parse_events_token(&t).unwrap(), (true, (-3, 42)));
        let t = events_token(false, (i64::MAX, u64::MAX));
        assert_eq!(
            parse_events_token(&t).unwrap(),
            (false, (i64::MAX, u64::MAX))
        );
        assert!(parse_events_token("x/1/2").is_err());
        assert!(parse_events_token("f/1").is_err());
        let e = FilteredEvent {
            stream: "a/b/c".into(),
            ordinal: 7,
            timestamp: -3,
            ingestion: 0,
            message: String::new(),
        };
        let p = parse_filter_token(&filter_token(&e)).unwrap();
        assert_eq!(
            (p.timestamp, p.ordinal, p.stream.as_str()),
            (-3, 7, "a/b/c")
        );
        assert!(parse_filter_token("1/2").is_err());
    }
}
