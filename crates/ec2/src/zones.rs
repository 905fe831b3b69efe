//! The region's availability zones and their ids.

/// The region's availability zones: `{region}a`, `b`, `c`.
pub fn availability_zones(region: &str) -> Vec<String> {
    ["a", "b", "c"]
        .iter()
        .map(|z| format!("{region}{z}"))
        .collect()
}

/// A zone's id as AWS writes them: `us-east-1b` → `use1-az2`, `ap-northeast-1a` →
/// `apne1-az1`.
pub fn zone_id(region: &str, zone: &str) -> String {
    let mut parts = region.split('-');
    let mut short = parts.next().unwrap_or_default().to_string();
    for part in parts {
        match part {
            "northeast" => short.push_str("ne"),
            "southeast" => short.push_str("se"),
            "northwest" => short.push_str("nw"),
            "southwest" => short.push_str("sw"),
            p if p.parse::<u32>().is_ok() => short.push_str(p),
            p => short.extend(p.chars().next()),
        }
    }
    let n = zone
        .strip_prefix(region)
        .and_then(|l| l.bytes().next())
        .map_or(1, |b| u32::from(b.saturating_sub(b'a')) + 1);
    format!("{short}-az{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_their_ids_follow_aws() {
        assert_eq!(
            availability_zones("eu-west-1"),
            ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        );
        assert_eq!(zone_id("us-east-1", "us-east-1b"), "use1-az2");
        assert_eq!(zone_id("eu-west-1", "eu-west-1a"), "euw1-az1");
    }
}
