//! A chunk record: one resolution's buckets of one metric over a chunk's span, bucket start
//! (seconds) → unit → aggregate (data put with different units stays apart, as in
//! CloudWatch).
//!
//! Stored as two records: the statistics `{"v":3,"b":{bucket:{unit:[count,sum,min,max]}}}`
//! under the chunk's data key, and the distributions (for percentiles) as JSON of bucket →
//! unit → distribution under its `cloudwatch/dist/…` twin (`keys::dist_of`). A read of the
//! basic statistics reads only the first: four numbers a bucket, where the distributions
//! (an hour bucket keeps up to 64 distinct values exactly) are most of the bytes. Records
//! of the earlier formats are still read: `{"v":2,"b":…,"d":"<distributions as a string>"}`
//! and `{"b":{bucket:{unit:{"n","s","lo","hi","d"}}}}`; the next write splits them.

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

impl Chunk {
    /// The statistics record and the distributions record.
    pub(crate) fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let mut stats: BTreeMap<i64, BTreeMap<&str, [f64; 4]>> = BTreeMap::new();
        let mut distributions: BTreeMap<i64, BTreeMap<&str, &Distribution>> = BTreeMap::new();
        for (bucket, units) in &self.buckets {
            for (unit, aggregate) in units {
                let (s, d) = aggregate.parts();
                stats.entry(*bucket).or_default().insert(unit, s);
                distributions.entry(*bucket).or_default().insert(unit, d);
            }
        }
        let mut out = V3.to_vec();
        out.extend_from_slice(b"\"b\":");
        out.extend(serde_json::to_vec(&stats).expect("statistics serialise"));
        out.push(b'}');
        let d = serde_json::to_vec(&distributions).expect("distributions serialise");
        (out, d)
    }

    /// The chunk whose statistics record is `kv`. `distributions`: `None` for the basic
    /// statistics only (no percentiles from them), else the distributions record as read
    /// (absent: none kept).
    pub(crate) fn decode(
        kv: &KeyValue,
        distributions: Option<Option<&KeyValue>>,
    ) -> Result<Chunk, StoreError> {
        let want = distributions.is_some();
        if kv.value.starts_with(V3) {
            let body = [b"{", &kv.value[V3.len()..]].concat();
            let s: Stats = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
            return match distributions.flatten() {
                Some(dkv) => {
                    let d: Distributions =
                        serde_json::from_slice(&dkv.value).map_err(|e| corrupt(dkv, e))?;
                    Ok(with_distributions(s.b, d))
                }
                None if want => Ok(with_distributions(s.b, Distributions::new())),
                None => Ok(stats_only(s.b)),
            };
        }
        if !kv.value.starts_with(V2) {
            let legacy: Legacy = serde_json::from_slice(&kv.value).map_err(|e| corrupt(kv, e))?;
            return Ok(Chunk { buckets: legacy.b });
        }
        let body = [b"{", &kv.value[V2.len()..]].concat();
        if !want {
            let s: StatsOnly = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
            return Ok(stats_only(s.b));
        }
        let whole: Whole = serde_json::from_slice(&body).map_err(|e| corrupt(kv, e))?;
        let d: Distributions = serde_json::from_str(&whole.d).map_err(|e| corrupt(kv, e))?;
        Ok(with_distributions(whole.b, d))
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
        let (stats, dists) = chunk.encode();
        assert!(stats.starts_with(V3));
        let (stats, dists) = (kv(stats), kv(dists));
        assert_eq!(Chunk::decode(&stats, Some(Some(&dists))).unwrap(), chunk);
        let basic = Chunk::decode(&stats, None).unwrap();
        let b = &basic.buckets[&60]["Count"];
        assert_eq!(
            (b.sample_count, b.sum, b.minimum, b.maximum),
            (3.0, 11.0, 3.0, 5.0)
        );
        assert_eq!(b.percentile(50.0), None, "no distribution read");
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
        // Version 2: the distributions as a string in the record.
        let v2 = format!(
            "{{\"v\":2,\"b\":{},\"d\":{}}}",
            String::from_utf8(stats.value[V3.len() + 4..stats.value.len() - 1].to_vec()).unwrap(),
            serde_json::to_string(&String::from_utf8(dists.value.clone()).unwrap()).unwrap()
        );
        let v2 = kv(v2.into_bytes());
        assert_eq!(Chunk::decode(&v2, Some(None)).unwrap(), chunk);
        assert_eq!(
            Chunk::decode(&v2, None).unwrap().buckets[&60]["Count"].maximum,
            5.0
        );
    }
}
