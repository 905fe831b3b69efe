//! Scheduled actions' schedules, pure: `at(yyyy-mm-ddThh:mm:ss)`, `rate(n unit)` and
//! `cron(minutes hours day-of-month month day-of-week year)` parsed, and their next
//! occurrence computed in a time zone: any IANA zone, with its daylight saving rules (the
//! IANA database is built into Berth, jiff's bundle, so it does not depend on the host's).
//! A local time a spring-forward skips runs at the same distance past the gap; one a
//! fall-back repeats runs once, at its first occurrence.

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Once, at this local time (seconds since the epoch as if the zone were UTC).
    At(i64),
    /// Every this many seconds.
    Rate(i64),
    Cron(Box<Cron>),
}

/// A cron expression's fields as sets of the values they allow; `None`: any.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    minutes: Vec<u32>,
    hours: Vec<u32>,
    days_of_month: Option<Vec<u32>>,
    months: Vec<u32>,
    /// 1 (SUN) to 7 (SAT).
    days_of_week: Option<Vec<u32>>,
    years: Option<Vec<u32>>,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `yyyy-mm-ddThh:mm:ss` as seconds since the epoch (read as UTC).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 || d[0].len() != 4 {
        return None;
    }
    let (y, mo, da) = (
        d[0].parse::<i64>().ok()?,
        d[1].parse::<u32>().ok()?,
        d[2].parse::<u32>().ok()?,
    );
    let (h, mi, se) = (
        t[0].parse::<i64>().ok()?,
        t[1].parse::<i64>().ok()?,
        t[2].parse::<i64>().ok()?,
    );
    let valid = (1..=12).contains(&mo)
        && (1..=31).contains(&da)
        && civil_from_days(days_from_civil(y, mo, da)) == (y, mo, da)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&se);
    valid.then(|| days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se)
}

/// A scheduled action's time zone (`None`: UTC), by its IANA name.
pub fn zone(name: Option<&str>) -> Result<jiff::tz::TimeZone, String> {
    let Some(name) = name else {
        return Ok(jiff::tz::TimeZone::UTC);
    };
    jiff::tz::TimeZone::get(name).map_err(|_| format!("Invalid timezone: {name}"))
}

/// Local seconds (as if the zone were UTC) of the instant `utc` in `zone`.
fn local_of(zone: &jiff::tz::TimeZone, utc: i64) -> i64 {
    jiff::Timestamp::from_second(utc).map_or(utc, |t| utc + i64::from(zone.to_offset(t).seconds()))
}

/// The instant of local seconds `local` in `zone`: past a gap by the gap's length, the
/// first of two in a fold (jiff's "compatible" disambiguation, as RFC 5545).
fn utc_of(zone: &jiff::tz::TimeZone, local: i64) -> Option<i64> {
    let civil = jiff::Timestamp::from_second(local)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .datetime();
    zone.to_ambiguous_timestamp(civil)
        .compatible()
        .ok()
        .map(|t| t.as_second())
}

fn field_value(s: &str, names: &[&str], first_named: u32) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + first_named)
}

/// One cron field as the sorted values it allows; `None` for `*`/`?` where `any` is allowed.
fn parse_field(
    field: &str,
    (lo, hi): (u32, u32),
    names: &[&str],
    first_named: u32,
    question: bool,
) -> Result<Option<Vec<u32>>, String> {
    if field == "?" && question {
        return Ok(None);
    }
    if field == "*" {
        return Ok(None);
    }
    let bad = || format!("Invalid cron field '{field}'");
    let mut values = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(bad)?),
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                field_value(a, names, first_named).ok_or_else(bad)?,
                field_value(b, names, first_named).ok_or_else(bad)?,
            )
        } else {
            let v = field_value(range, names, first_named).ok_or_else(bad)?;
            (v, if part.contains('/') { hi } else { v })
        };
        if start < lo || end > hi || start > end {
            return Err(bad());
        }
        values.extend((start..=end).step_by(step as usize));
    }
    values.sort_unstable();
    values.dedup();
    Ok(Some(values))
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_cron(body: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "A cron expression has 6 fields (minutes hours day-of-month month day-of-week year): '{body}'"
        ));
    }
    let all = |range: (u32, u32)| (range.0..=range.1).collect::<Vec<u32>>();
    let minutes = parse_field(fields[0], (0, 59), &[], 0, false)?.unwrap_or_else(|| all((0, 59)));
    let hours = parse_field(fields[1], (0, 23), &[], 0, false)?.unwrap_or_else(|| all((0, 23)));
    let days_of_month = parse_field(fields[2], (1, 31), &[], 0, true)?;
    let months = parse_field(fields[3], (1, 12), MONTHS, 1, false)?.unwrap_or_else(|| all((1, 12)));
    let days_of_week = parse_field(fields[4], (1, 7), DAYS, 1, true)?;
    let years = parse_field(fields[5], (1970, 2199), &[], 0, false)?;
    Ok(Cron {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
        years,
    })
}

/// Parses `at(...)`, `rate(...)` or `cron(...)`.
pub fn parse(schedule: &str) -> Result<Schedule, String> {
    let inner = |prefix: &str| {
        schedule
            .strip_prefix(prefix)
            .and_then(|s| s.strip_suffix(')'))
    };
    if let Some(at) = inner("at(") {
        return parse_datetime(at)
            .map(Schedule::At)
            .ok_or_else(|| format!("Invalid at expression: {schedule}"));
    }
    if let Some(rate) = inner("rate(") {
        let bad = || format!("Invalid rate expression: {schedule}");
        let (n, unit) = rate.trim().split_once(' ').ok_or_else(bad)?;
        let n: i64 = n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        let seconds = match unit.trim() {
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            _ => return Err(bad()),
        };
        return Ok(Schedule::Rate(n * seconds));
    }
    if let Some(cron) = inner("cron(") {
        return parse_cron(cron).map(|c| Schedule::Cron(Box::new(c)));
    }
    Err(format!(
        "Schedule must be at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(fields): {schedule}"
    ))
}

impl Cron {
    /// The first minute strictly after `after` (local seconds) the expression matches,
    /// looking at most ten years ahead.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let first_day = after.div_euclid(86_400);
        for day in first_day..first_day + 3660 {
            let (y, m, d) = civil_from_days(day);
            // 1970-01-01 was a Thursday (5 with SUN = 1).
            let dow = ((day + 4).rem_euclid(7) + 1) as u32;
            let matches = self.months.contains(&m)
                && self
                    .years
                    .as_ref()
                    .is_none_or(|ys| ys.contains(&(y as u32)))
                && self.days_of_month.as_ref().is_none_or(|ds| ds.contains(&d))
                && self
                    .days_of_week
                    .as_ref()
                    .is_none_or(|ds| ds.contains(&dow));
            if !matches {
                continue;
            }
            for h in &self.hours {
                for mi in &self.minutes {
                    let t = day * 86_400 + i64::from(*h) * 3600 + i64::from(*mi) * 60;
                    if t > after {
                        return Some(t);
                    }
                }
            }
        }
        None
    }
}

impl Schedule {
    /// When it next runs strictly after `after` (UTC seconds), in `zone`, not before
    /// `start` nor after `end`; `base` is where a rate counts from.
    pub fn next_run(
        &self,
        after: i64,
        zone: &jiff::tz::TimeZone,
        base: i64,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Option<i64> {
        let next = match self {
            Schedule::At(local) => utc_of(zone, *local).filter(|t| *t > after),
            Schedule::Rate(period) => {
                let from = start.unwrap_or(base);
                if from > after {
                    Some(if start.is_some() { from } else { from + period })
                } else {
                    let k = (after - from) / period + 1;
                    Some(from + k * period)
                }
            }
            Schedule::Cron(cron) => {
                let after = after.max(start.map_or(after, |s| s - 1));
                // Local times in order; one a fall-back repeats maps to an instant already
                // past, so the search goes on from it.
                let mut local = local_of(zone, after);
                (0..4).find_map(|_| {
                    let candidate = cron.next_after(local)?;
                    local = candidate;
                    utc_of(zone, candidate).filter(|t| *t > after)
                })
            }
        }?;
        (end.is_none_or(|end| next <= end)).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: jiff::tz::TimeZone = jiff::tz::TimeZone::UTC;

    fn at(s: &str) -> i64 {
        parse_datetime(s).unwrap()
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(at("2026-12-07T13:40:05"), 1_796_650_805);
        assert!(parse_datetime("2026-02-30T00:00:00").is_none());
        assert!(parse_datetime("2026-12-07 13:40:05").is_none());
        assert!(parse_datetime("2026-12-07T24:00:00").is_none());
    }

    #[test]
    fn at_and_rate() {
        assert_eq!(
            parse("at(2026-12-07T13:40:05)").unwrap(),
            Schedule::At(at("2026-12-07T13:40:05"))
        );
        assert_eq!(parse("rate(5 minutes)").unwrap(), Schedule::Rate(300));
        assert_eq!(parse("rate(1 hour)").unwrap(), Schedule::Rate(3600));
        assert_eq!(parse("rate(2 days)").unwrap(), Schedule::Rate(172_800));
        for bad in [
            "rate(0 minutes)",
            "rate(5 weeks)",
            "rate(x)",
            "at(2026-12-07)",
            "every(5)",
            "cron(* * * *)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let once = parse("at(2026-12-07T13:40:05)").unwrap();
        let t = at("2026-12-07T13:40:05");
        assert_eq!(once.next_run(t - 10, &UTC, 0, None, None), Some(t));
        assert_eq!(once.next_run(t, &UTC, 0, None, None), None);
        // In Etc/GMT-2 (two hours ahead of UTC) 13:40:05 local is 11:40:05 UTC.
        let ahead = zone(Some("Etc/GMT-2")).unwrap();
        assert_eq!(once.next_run(0, &ahead, 0, None, None), Some(t - 7200));
        let rate = Schedule::Rate(300);
        assert_eq!(rate.next_run(1000, &UTC, 1000, None, None), Some(1300));
        assert_eq!(rate.next_run(1301, &UTC, 1000, None, None), Some(1600));
        assert_eq!(
            rate.next_run(1000, &UTC, 1000, Some(5000), None),
            Some(5000)
        );
        assert_eq!(rate.next_run(1000, &UTC, 1000, None, Some(1200)), None);
        assert_eq!(
            zone(Some("Mars/Olympus_Mons")).unwrap_err(),
            "Invalid timezone: Mars/Olympus_Mons"
        );
    }

    #[test]
    fn cron_expressions() {
        // Every day at 12:15.
        let c = parse("cron(15 12 * * ? *)").unwrap();
        let t = at("2026-12-07T13:00:00");
        assert_eq!(
            c.next_run(t, &UTC, 0, None, None),
            Some(at("2026-12-08T12:15:00"))
        );
        // Every 10 minutes on weekdays.
        let c = parse("cron(0/10 * ? * MON-FRI *)").unwrap();
        // 2026-12-05 is a Saturday.
        let sat = at("2026-12-05T10:03:00");
        assert_eq!(
            c.next_run(sat, &UTC, 0, None, None),
            Some(at("2026-12-07T00:00:00"))
        );
        let mon = at("2026-12-07T10:03:00");
        assert_eq!(
            c.next_run(mon, &UTC, 0, None, None),
            Some(at("2026-12-07T10:10:00"))
        );
        // The first of each month, in 2027 only.
        let c = parse("cron(0 6 1 * ? 2027)").unwrap();
        assert_eq!(
            c.next_run(t, &UTC, 0, None, None),
            Some(at("2027-01-01T06:00:00"))
        );
        let c = parse("cron(0 6 1 JAN,JUL ? *)").unwrap();
        assert_eq!(
            c.next_run(at("2027-01-01T06:00:00"), &UTC, 0, None, None),
            Some(at("2027-07-01T06:00:00"))
        );
        for bad in [
            "cron(60 * * * ? *)",
            "cron(* 24 * * ? *)",
            "cron(* * 0 * ? *)",
            "cron(* * * 13 ? *)",
            "cron(* * ? * 8 *)",
            "cron(0 0 L * ? *)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn daylight_saving_time_moves_the_runs_with_the_zone() {
        let paris = zone(Some("Europe/Paris")).unwrap();
        let noon = parse("cron(0 12 * * ? *)").unwrap();
        // Noon in Paris: 11:00 UTC in winter (CET), 10:00 UTC in summer (CEST).
        assert_eq!(
            noon.next_run(at("2027-01-10T00:00:00"), &paris, 0, None, None),
            Some(at("2027-01-10T11:00:00"))
        );
        assert_eq!(
            noon.next_run(at("2027-07-10T00:00:00"), &paris, 0, None, None),
            Some(at("2027-07-10T10:00:00"))
        );
        let new_york = zone(Some("America/New_York")).unwrap();
        // 2:30 every day; 2027-03-14 springs forward from 2:00 to 3:00 EDT.
        let c = parse("cron(30 2 * * ? *)").unwrap();
        let runs: Vec<i64> = std::iter::successors(Some(at("2027-03-13T00:00:00")), |after| {
            c.next_run(*after, &new_york, 0, None, None)
        })
        .skip(1)
        .take(3)
        .collect();
        assert_eq!(
            runs,
            [
                at("2027-03-13T07:30:00"), // 2:30 EST
                at("2027-03-14T07:30:00"), // the skipped 2:30 runs at 3:30 EDT
                at("2027-03-15T06:30:00"), // 2:30 EDT
            ]
        );
        // 1:30 every day; 2027-11-07 falls back from 2:00 EDT to 1:00 EST: once, at the
        // first 1:30.
        let c = parse("cron(30 1 * * ? *)").unwrap();
        let runs: Vec<i64> = std::iter::successors(Some(at("2027-11-06T12:00:00")), |after| {
            c.next_run(*after, &new_york, 0, None, None)
        })
        .skip(1)
        .take(2)
        .collect();
        assert_eq!(runs, [at("2027-11-07T05:30:00"), at("2027-11-08T06:30:00")]);
        // at() in the zone's local time.
        let once = parse("at(2027-07-04T09:00:00)").unwrap();
        assert_eq!(
            once.next_run(0, &new_york, 0, None, None),
            Some(at("2027-07-04T13:00:00"))
        );
    }
}
