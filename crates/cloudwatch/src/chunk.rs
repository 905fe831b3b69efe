//! A chunk record: one resolution's buckets of one metric over a chunk's span, bucket start
//! (seconds) → unit → aggregate (data put with different units stays apart, as in
//! CloudWatch).
//!
//! Stored as JSON with the statistics and the distributions apart:
//! `{"v":2,"b":{bucket:{unit:[count,sum,min,max]}},"d":"<JSON of bucket → unit →
//! distribution>"}`. A read of the basic statistics parses `b` and skips `d` as one string
//! (a scan for its closing quote) instead of parsing every bucket's values, which are most
//! of a record (an hour bucket keeps up to 64 distinct values exactly). Records written
//! before (`{"b":{bucket:{unit:{"n","s","lo","hi","d"}}}}`) are still read.

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

impl Chunk {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut stats: BTreeMap<i64, BTreeMap<&str, [f64; 4]>> = BTreeMap::new();
        let mut distributions: BTreeMap<i64, BTreeMap<&str, &Distribution>> = BTreeMap::new();
        for (bucket, units) in &self.buckets {
            for (unit, aggregate) in units {
                let (s, d) = aggregate.parts();
                stats.entry(*bucket).or_default().insert(unit, s);
                distributions.entry(*bucket).or_default().insert(unit, d);
            }
        }
        let d = serde_json::to_string(&distributions).expect("distributions serialise");
        let mut out = V2.to_vec();
        out.extend_from_slice(b"\"b\":");
        out.extend(serde_json::to_vec(&stats).expect("statistics serialise"));
        out.extend_from_slice(b",\"d\":");
        out.extend(serde_json::to_vec(&d).expect("a string serialises"));
        out.push(b'}');
        out
    }

    /// The chunk in `kv`; without `distributions`, each aggregate's count, sum and extremes
    /// only (no percentiles from it).
    pub(crate) fn decode(kv: &KeyValue, distributions: bool) -> Result<Chunk, StoreError> {
        if !kv.value.starts_with(V2) {
            let legacy: Legacy = serde_json::from_slice(&kv.value).map_err(|e| corrupt(kv, e))?;
            return Ok(Chunk { buckets: legacy.b });
        }
        // `{"v":2,` … : the rest parses as an object once the version is skipped.
        let body = [b"{", &kv.value[V2.len()..]].concat();
        let stats_only = |b: BTreeMap<i64, BTreeMap<String, [f64; 4]>>| Chunk {
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
        };
        if !distributions {
            let s: StatsOnly = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
            return Ok(stats_only(s.b));
        }
        let whole: Whole = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
        let mut d: BTreeMap<i64, BTreeMap<String, Distribution>> =
            serde_json::from_str(&whole.d).map_err(|e| corrupt(kv, e))?;
        let buckets = whole
            .b
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
        Ok(Chunk { buckets })
    }
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

    #[test]
    fn chunks_round_trip_whole_and_as_statistics_and_old_records_read() {
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
            .entry(120)
            .or_default()
            .insert("None".into(), Aggregate::of_value(-1.0, 1.0));
        let bytes = chunk.encode();
        assert!(bytes.starts_with(V2));
        assert_eq!(Chunk::decode(&kv(bytes.clone()), true).unwrap(), chunk);
        let basic = Chunk::decode(&kv(bytes), false).unwrap();
        let b = &basic.buckets[&60]["Count"];
        assert_eq!(
            (b.sample_count, b.sum, b.minimum, b.maximum),
            (3.0, 11.0, 3.0, 5.0)
        );
        assert_eq!(b.percentile(50.0), None, "no distribution read");
        // The format before the split.
        #[derive(serde::Serialize)]
        struct Old<'a> {
            b: &'a BTreeMap<i64, BTreeMap<String, Aggregate>>,
        }
        let old = serde_json::to_vec(&Old { b: &chunk.buckets }).unwrap();
        assert_eq!(Chunk::decode(&kv(old.clone()), true).unwrap(), chunk);
        assert_eq!(
            Chunk::decode(&kv(old), false).unwrap().buckets[&60]["Count"].sum,
            11.0
        );
    }
}
