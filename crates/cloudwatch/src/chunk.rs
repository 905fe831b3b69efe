//! A chunk record: one resolution's buckets of one metric over a chunk's span, bucket start
//! (seconds) → unit → aggregate (data put with different units stays apart, as in
//! CloudWatch).
//!
//! Stored as two records: the statistics, binary (`StatsRecord`, below), under the chunk's
//! data key, and the distributions (for percentiles) as JSON of bucket → unit →
//! distribution under its `cloudwatch/dist/…` twin (`keys::dist_of`). A read of the basic
//! statistics reads only the first, and walks it in place (`visit`): four numbers a bucket,
//! copied out rather than parsed, where the distributions (an hour bucket keeps up to 64
//! distinct values exactly) are most of the bytes. Records of the earlier formats are still
//! read: `{"v":3,"b":{bucket:{unit:[count,sum,min,max]}}}` (statistics as JSON),
//! `{"v":2,"b":…,"d":"<distributions as a string>"}` and
//! `{"b":{bucket:{unit:{"n","s","lo","hi","d"}}}}`; the next write rewrites them.

use std::collections::BTreeMap;

use berth_store::{KeyValue, StoreError};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::aggregate::{Aggregate, Distribution};

/// Bucket start → unit → aggregate.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Chunk {
    pub buckets: BTreeMap<i64, BTreeMap<String, Aggregate>>,
}

const V2: &[u8] = b"{\"v\":2,";
const V3: &[u8] = b"{\"v\":3,";

/// The binary statistics record (format 4), little-endian throughout:
///
/// ```text
/// "\0cw4"                                    magic (a JSON record starts with `{`)
/// u8 U, then U × (u8 length, UTF-8 name)      the units met in the chunk
/// u32 N, then N × (i64 bucket start, u8 unit index, f64 count, f64 sum, f64 min, f64 max)
/// ```
///
/// Entries in bucket order, then unit order; fixed-width, so a read copies 41 bytes a
/// bucket instead of parsing four decimal numbers.
const V4: &[u8] = b"\0cw4";
const ENTRY: usize = 8 + 1 + 4 * 8;

/// A binary statistics record, checked whole before it is walked.
struct StatsRecord<'a> {
    units: Vec<&'a str>,
    entries: &'a [u8],
}

impl<'a> StatsRecord<'a> {
    /// `None`: not a record of this format, or a damaged one.
    fn parse(value: &'a [u8]) -> Option<Result<StatsRecord<'a>, String>> {
        let mut rest = value.strip_prefix(V4)?;
        let mut take = |n: usize| -> Result<&'a [u8], String> {
            if rest.len() < n {
                return Err("statistics record truncated".into());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        Some((|| {
            let count = take(1)?[0];
            let mut units = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let len = take(1)?[0] as usize;
                let name = std::str::from_utf8(take(len)?).map_err(|e| e.to_string())?;
                units.push(name);
            }
            let n = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let entries = take(n.checked_mul(ENTRY).ok_or("statistics record too long")?)?;
            if entries.chunks_exact(ENTRY).any(|e| e[8] >= count) {
                return Err("statistics record names an unknown unit".into());
            }
            Ok(StatsRecord { units, entries })
        })())
    }

    /// (bucket start, unit, [count, sum, min, max]) in bucket order.
    fn iter(&self) -> impl Iterator<Item = (i64, &'a str, [f64; 4])> + '_ {
        self.entries.chunks_exact(ENTRY).map(|e| {
            let f = |at: usize| f64::from_le_bytes(e[at..at + 8].try_into().expect("8 bytes"));
            (
                i64::from_le_bytes(e[..8].try_into().expect("8 bytes")),
                self.units[e[8] as usize],
                [f(9), f(17), f(25), f(33)],
            )
        })
    }

    fn encode(chunk: &Chunk) -> Vec<u8> {
        let mut units: Vec<&str> = Vec::new();
        let mut n = 0;
        for by_unit in chunk.buckets.values() {
            for unit in by_unit.keys() {
                n += 1;
                if !units.contains(&unit.as_str()) {
                    units.push(unit);
                }
            }
        }
        let names: usize = units.iter().map(|u| 1 + u.len()).sum();
        let mut out = Vec::with_capacity(V4.len() + 1 + names + 4 + n * ENTRY);
        out.extend_from_slice(V4);
        // CloudWatch's units are a short list of short names (`metric::UNITS`), each
        // checked at the edge; the bounds hold by far.
        out.push(u8::try_from(units.len()).expect("fewer than 256 units"));
        for unit in &units {
            out.push(u8::try_from(unit.len()).expect("unit names are short"));
            out.extend_from_slice(unit.as_bytes());
        }
        out.extend_from_slice(&u32::try_from(n).expect("buckets fit").to_le_bytes());
        for (bucket, by_unit) in &chunk.buckets {
            for (unit, aggregate) in by_unit {
                out.extend_from_slice(&bucket.to_le_bytes());
                let index = units.iter().position(|u| u == unit).expect("listed above");
                out.push(index as u8);
                for x in aggregate.parts().0 {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
        out
    }
}

#[derive(Deserialize)]
struct Stats {
    b: BTreeMap<i64, BTreeMap<String, [f64; 4]>>,
}

#[derive(Deserialize)]
struct StatsOnly {
    b: BTreeMap<i64, BTreeMap<String, [f64; 4]>>,
    #[serde(rename = "d")]
    _d: IgnoredAny,
}

#[derive(Deserialize)]
struct Whole {
    b: BTreeMap<i64, BTreeMap<String, [f64; 4]>>,
    d: String,
}

/// The format before the split: aggregates whole.
#[derive(Deserialize)]
struct Legacy {
    b: BTreeMap<i64, BTreeMap<String, Aggregate>>,
}

fn corrupt(kv: &KeyValue, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{}: {e}", kv.key))
}

type Distributions = BTreeMap<i64, BTreeMap<String, Distribution>>;

fn with_distributions(
    stats: BTreeMap<i64, BTreeMap<String, [f64; 4]>>,
    mut d: Distributions,
) -> Chunk {
    let buckets = stats
        .into_iter()
        .map(|(at, units)| {
            let mut dists = d.remove(&at).unwrap_or_default();
            let units = units
                .into_iter()
                .map(|(u, s)| {
                    let dist = dists.remove(&u).unwrap_or(Distribution::Unavailable);
                    (u, Aggregate::from_parts(s, dist))
                })
                .collect();
            (at, units)
        })
        .collect();
    Chunk { buckets }
}

fn stats_only(b: BTreeMap<i64, BTreeMap<String, [f64; 4]>>) -> Chunk {
    Chunk {
        buckets: b
            .into_iter()
            .map(|(at, units)| {
                let units = units
                    .into_iter()
                    .map(|(u, s)| (u, Aggregate::basic(s[0], s[1], s[2], s[3])))
                    .collect();
                (at, units)
            })
            .collect(),
    }
}

type StatsMap = BTreeMap<i64, BTreeMap<String, [f64; 4]>>;

impl Chunk {
    /// The statistics record and the distributions record.
    pub(crate) fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let mut distributions: BTreeMap<i64, BTreeMap<&str, &Distribution>> = BTreeMap::new();
        for (bucket, units) in &self.buckets {
            for (unit, aggregate) in units {
                distributions
                    .entry(*bucket)
                    .or_default()
                    .insert(unit, aggregate.parts().1);
            }
        }
        let d = serde_json::to_vec(&distributions).expect("distributions serialise");
        (StatsRecord::encode(self), d)
    }

    /// The chunk whose statistics record is `kv`. `distributions`: `None` for the basic
    /// statistics only (no percentiles from them), else the distributions record as read
    /// (absent: none kept).
    pub(crate) fn decode(
        kv: &KeyValue,
        distributions: Option<Option<&KeyValue>>,
    ) -> Result<Chunk, StoreError> {
        let want = distributions.is_some();
        let stats: StatsMap = if let Some(record) = StatsRecord::parse(&kv.value) {
            let mut map = StatsMap::new();
            for (bucket, unit, s) in record.map_err(|e| corrupt(kv, e))?.iter() {
                map.entry(bucket).or_default().insert(unit.to_string(), s);
            }
            map
        } else if kv.value.starts_with(V3) {
            let body = [b"{", &kv.value[V3.len()..]].concat();
            let s: Stats = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
            s.b
        } else if !kv.value.starts_with(V2) {
            let legacy: Legacy = serde_json::from_slice(&kv.value).map_err(|e| corrupt(kv, e))?;
            return Ok(Chunk { buckets: legacy.b });
        } else {
            let body = [b"{", &kv.value[V2.len()..]].concat();
            if !want {
                let s: StatsOnly = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
                return Ok(stats_only(s.b));
            }
            let whole: Whole = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
            let d: Distributions = serde_json::from_str(&whole.d).map_err(|e| corrupt(kv, e))?;
            return Ok(with_distributions(whole.b, d));
        };
        match distributions.flatten() {
            Some(dkv) => {
                let d: Distributions =
                    serde_json::from_slice(&dkv.value).map_err(|e| corrupt(dkv, e))?;
                Ok(with_distributions(stats, d))
            }
            None if want => Ok(with_distributions(stats, Distributions::new())),
            None => Ok(stats_only(stats)),
        }
    }
}

/// Every bucket of the chunk whose statistics record is `kv`, in bucket order (then unit
/// order), as `visit(bucket start, unit, aggregate)`; `distributions` as for
/// `Chunk::decode`. A read of the basic statistics from a binary record builds nothing
/// but the aggregates it hands out.
pub(crate) fn visit(
    kv: &KeyValue,
    distributions: Option<Option<&KeyValue>>,
    mut visit: impl FnMut(i64, &str, Aggregate),
) -> Result<(), StoreError> {
    if distributions.is_none()
        && let Some(record) = StatsRecord::parse(&kv.value)
    {
        for (bucket, unit, [n, s, lo, hi]) in record.map_err(|e| corrupt(kv, e))?.iter() {
            visit(bucket, unit, Aggregate::basic(n, s, lo, hi));
        }
        return Ok(());
    }
    for (bucket, by_unit) in Chunk::decode(kv, distributions)?.buckets {
        for (unit, aggregate) in by_unit {
            visit(bucket, &unit, aggregate);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: Vec<u8>) -> KeyValue {
        KeyValue {
            key: "k".into(),
            value,
            create_revision: 1,
            mod_revision: 1,
        }
    }

    fn sample() -> Chunk {
        let mut a = Aggregate::of_value(3.0, 2.0);
        a.merge(&Aggregate::of_value(5.0, 1.0));
        let mut chunk = Chunk::default();
        chunk
            .buckets
            .entry(60)
            .or_default()
            .insert("Count".into(), a.clone());
        chunk
            .buckets
            .entry(60)
            .or_default()
            .insert("Seconds".into(), Aggregate::of_value(0.5, 1.0));
        chunk
            .buckets
            .entry(120)
            .or_default()
            .insert("None".into(), Aggregate::of_value(-1.0, 1.0));
        chunk
    }

    /// The statistics as format 3 wrote them: `{bucket:{unit:[n,s,lo,hi]}}`.
    fn stats_json(chunk: &Chunk) -> String {
        let stats: BTreeMap<i64, BTreeMap<&str, [f64; 4]>> = chunk
            .buckets
            .iter()
            .map(|(b, units)| {
                let units = units
                    .iter()
                    .map(|(u, a)| (u.as_str(), a.parts().0))
                    .collect();
                (*b, units)
            })
            .collect();
        serde_json::to_string(&stats).unwrap()
    }

    fn visited(kv: &KeyValue, d: Option<Option<&KeyValue>>) -> Vec<(i64, String, Aggregate)> {
        let mut all = Vec::new();
        visit(kv, d, |b, u, a| all.push((b, u.to_string(), a))).unwrap();
        all
    }

    #[test]
    fn chunks_round_trip_whole_and_as_statistics() {
        let chunk = sample();
        let (stats, dists) = chunk.encode();
        assert!(stats.starts_with(V4));
        let (stats, dists) = (kv(stats), kv(dists));
        assert_eq!(Chunk::decode(&stats, Some(Some(&dists))).unwrap(), chunk);
        let basic = Chunk::decode(&stats, None).unwrap();
        let b = &basic.buckets[&60]["Count"];
        assert_eq!(
            (b.sample_count, b.sum, b.minimum, b.maximum),
            (3.0, 11.0, 3.0, 5.0)
        );
        assert_eq!(b.percentile(50.0), None, "no distribution read");
        // Visited in bucket order, then unit order, with or without the distributions.
        let walked = visited(&stats, None);
        let keys: Vec<(i64, &str)> = walked.iter().map(|(b, u, _)| (*b, u.as_str())).collect();
        assert_eq!(keys, [(60, "Count"), (60, "Seconds"), (120, "None")]);
        assert_eq!(walked[0].2.parts().0, [3.0, 11.0, 3.0, 5.0]);
        assert_eq!(walked[0].2.percentile(50.0), None);
        let whole = visited(&stats, Some(Some(&dists)));
        assert_eq!(whole[0].2, chunk.buckets[&60]["Count"]);
        assert_eq!(whole[0].2.percentile(50.0), Some(3.0));
        // An empty chunk, and damaged records.
        let (empty, _) = Chunk::default().encode();
        assert_eq!(Chunk::decode(&kv(empty), None).unwrap(), Chunk::default());
        let mut bad = stats.value.clone();
        bad.pop();
        assert!(Chunk::decode(&kv(bad), None).is_err());
        let mut bad = stats.value.clone();
        let unit_at = bad.len() - ENTRY + 8;
        bad[unit_at] = 9;
        assert!(visit(&kv(bad), None, |_, _, _| {}).is_err());
    }

    #[test]
    fn records_of_the_earlier_formats_still_read() {
        let chunk = sample();
        let (_, dists) = chunk.encode();
        let dists = kv(dists);
        // Version 3: the statistics as JSON, the distributions apart.
        let v3 = kv(format!("{{\"v\":3,\"b\":{}}}", stats_json(&chunk)).into_bytes());
        assert_eq!(Chunk::decode(&v3, Some(Some(&dists))).unwrap(), chunk);
        assert_eq!(
            Chunk::decode(&v3, None).unwrap().buckets[&60]["Count"].sum,
            11.0
        );
        assert_eq!(visited(&v3, None).len(), 3);
        // The format before the split: aggregates whole in one record.
        #[derive(serde::Serialize)]
        struct Old<'a> {
            b: &'a BTreeMap<i64, BTreeMap<String, Aggregate>>,
        }
        let old = kv(serde_json::to_vec(&Old { b: &chunk.buckets }).unwrap());
        assert_eq!(Chunk::decode(&old, Some(None)).unwrap(), chunk);
        assert_eq!(
            Chunk::decode(&old, None).unwrap().buckets[&60]["Count"].sum,
            11.0
        );
        assert_eq!(visited(&old, Some(None))[0].2.percentile(50.0), Some(3.0));
        // Version 2: the distributions as a string in the record.
        let v2 = format!(
            "{{\"v\":2,\"b\":{},\"d\":{}}}",
            stats_json(&chunk),
            serde_json::to_string(&String::from_utf8(dists.value.clone()).unwrap()).unwrap()
        );
        let v2 = kv(v2.into_bytes());
        assert_eq!(Chunk::decode(&v2, Some(None)).unwrap(), chunk);
        assert_eq!(
            Chunk::decode(&v2, None).unwrap().buckets[&60]["Count"].maximum,
            5.0
        );
        assert_eq!(visited(&v2, None)[2].0, 120);
    }
}
