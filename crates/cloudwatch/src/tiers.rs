//! CloudWatch's resolutions and how long each is kept: 1 s data for 3 hours (high-resolution
//! metrics only), 1 min for 15 days, 5 min for 63 days, 1 h for 455 days. Every datum is
//! folded into each of its resolutions as it is put, so the coarser ones are the roll-ups of
//! the finer and a resolution past its retention is simply deleted.

use crate::{Result, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// The bucket width.
    pub seconds: i64,
    /// How long buckets are kept.
    pub retention: i64,
    /// The span one store record holds (a chunk of buckets).
    pub chunk: i64,
    /// The tier's name in keys.
    pub code: &'static str,
}

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

pub static TIERS: [Tier; 4] = [
    Tier {
        seconds: 1,
        retention: 3 * HOUR,
        chunk: 300,
        code: "s1",
    },
    Tier {
        seconds: 60,
        retention: 15 * DAY,
        chunk: HOUR,
        code: "m1",
    },
    Tier {
        seconds: 300,
        retention: 63 * DAY,
        chunk: DAY,
        code: "m5",
    },
    Tier {
        seconds: HOUR,
        retention: 455 * DAY,
        chunk: 7 * DAY,
        code: "h1",
    },
];

impl Tier {
    /// The start of the bucket holding `t` (seconds).
    pub fn bucket(&self, t: i64) -> i64 {
        t.div_euclid(self.seconds) * self.seconds
    }

    /// The start of the chunk holding `t` (seconds).
    pub fn chunk_start(&self, t: i64) -> i64 {
        t.div_euclid(self.chunk) * self.chunk
    }

    /// Whether a bucket starting at `bucket` is still kept at `now` (seconds).
    pub fn keeps(&self, bucket: i64, now: i64) -> bool {
        bucket + self.seconds > now - self.retention
    }
}

/// The tiers a datum is folded into: all for high-resolution data, the minute and coarser
/// for standard resolution.
pub fn tiers_for(high_resolution: bool) -> &'static [Tier] {
    if high_resolution { &TIERS } else { &TIERS[1..] }
}

/// A period CloudWatch accepts: 1, 5, 10, 30 or a multiple of 60 seconds.
pub fn check_period(period: i64, param: &str) -> Result<()> {
    if period >= 1 && (matches!(period, 1 | 5 | 10 | 30) || period % 60 == 0) {
        Ok(())
    } else {
        Err(invalid(format!(
            "The parameter {param} must be 1, 5, 10, 30, or a multiple of 60."
        )))
    }
}

/// The tier a read of `period` from `start` to `end` (seconds) is served from at `now`:
/// the data is there as CloudWatch's availability rules say — from the last 3 hours at any
/// period (periods under a minute from the 1 s data), up to 15 days back at multiples of a
/// minute, up to 63 days back at multiples of 5 minutes, up to 455 days back at multiples
/// of an hour; `None`: no data is returned for that period that far back. Every coarser
/// resolution holds the same data rolled up, so when one's buckets tile the read exactly
/// (the period, the start and the end on its boundaries) the coarsest such is read: the
/// same sums, counts and extremes from far fewer records (a week at an hour's period is
/// one or two records a metric instead of 168).
pub fn tier_for_read(period: i64, start: i64, end: i64, now: i64) -> Option<Tier> {
    let age = now - start;
    if period % 60 != 0 {
        return (age <= TIERS[0].retention).then_some(TIERS[0]);
    }
    let finest = TIERS[1..]
        .iter()
        .find(|t| age <= t.retention && period % t.seconds == 0)
        .copied()?;
    TIERS[1..]
        .iter()
        .rev()
        .find(|t| {
            t.seconds > finest.seconds
                && age <= t.retention
                && period % t.seconds == 0
                && start.rem_euclid(t.seconds) == 0
                && end.rem_euclid(t.seconds) == 0
        })
        .copied()
        .or(Some(finest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_those_cloudwatch_accepts() {
        for ok in [1, 5, 10, 30, 60, 120, 300, 3600, 86400] {
            check_period(ok, "Period").unwrap();
        }
        for bad in [0, -60, 2, 45, 90] {
            let e = check_period(bad, "Period").unwrap_err();
            assert_eq!(e.code(), "InvalidParameterValue", "{bad}");
        }
    }

    #[test]
    fn reads_go_to_the_finest_resolution_still_kept() {
        let now = 1_000_000_000;
        let read = |period, start| tier_for_read(period, start, now - 7, now);
        assert_eq!(read(1, now - 600), Some(TIERS[0]));
        assert_eq!(read(10, now - 4 * HOUR), None);
        assert_eq!(read(60, now - 600), Some(TIERS[1]));
        assert_eq!(read(60, now - 14 * DAY), Some(TIERS[1]));
        assert_eq!(read(60, now - 16 * DAY), None);
        assert_eq!(read(600, now - 16 * DAY), Some(TIERS[2]));
        assert_eq!(read(300, now - 64 * DAY), None);
        assert_eq!(read(3600, now - 64 * DAY), Some(TIERS[3]));
        assert_eq!(read(3600, now - 456 * DAY), None);
    }

    #[test]
    fn reads_tiled_by_a_coarser_resolution_are_served_from_it() {
        let now = 1_000_022_400; // an hour boundary
        let hour = now - 3 * DAY;
        assert_eq!(tier_for_read(3600, hour, now, now), Some(TIERS[3]));
        assert_eq!(tier_for_read(600, hour, now, now), Some(TIERS[2]));
        // A start or an end off the hour: the finest kept.
        assert_eq!(tier_for_read(3600, hour + 60, now, now), Some(TIERS[1]));
        assert_eq!(tier_for_read(3600, hour, now - 60, now), Some(TIERS[1]));
    }

    #[test]
    fn buckets_and_chunks_align_to_their_widths() {
        let t = TIERS[1];
        assert_eq!(t.bucket(125), 120);
        assert_eq!(t.chunk_start(7300), 7200);
        assert_eq!(t.bucket(-1), -60);
        assert!(t.keeps(1000, 1000 + t.retention - 1));
        assert!(!t.keeps(1000, 1060 + t.retention));
    }
}
