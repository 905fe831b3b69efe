//! Pagination tokens. GetLogEvents' tokens name an ordinal and a direction (`f/…` forward,
//! `b/…` backward, the shape CloudWatch's tokens have); FilterLogEvents' token names the
//! last event returned: its timestamp, stream and ordinal, which events are ordered by.

use crate::{FilteredEvent, LogsError, Result};

pub fn events_token(forward: bool, ordinal: u64) -> String {
    format!("{}/{ordinal:020}", if forward { 'f' } else { 'b' })
}

fn bad_token() -> LogsError {
    LogsError::InvalidParameter("The specified nextToken is not valid.".into())
}

/// `(forward, ordinal)`.
pub fn parse_events_token(token: &str) -> Result<(bool, u64)> {
    let (direction, ordinal) = token.split_once('/').ok_or_else(bad_token)?;
    let ordinal = ordinal.parse().map_err(|_| bad_token())?;
    match direction {
        "f" => Ok((true, ordinal)),
        "b" => Ok((false, ordinal)),
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
        assert_eq!(
            parse_events_token(&events_token(true, 42)).unwrap(),
            (true, 42)
        );
        assert_eq!(
            parse_events_token(&events_token(false, 0)).unwrap(),
            (false, 0)
        );
        assert!(parse_events_token("x/1").is_err());
        assert!(parse_events_token("f1").is_err());
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
