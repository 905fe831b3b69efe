//! Task-level `cpu` and `memory` as ECS accepts them: a plain integer (CPU units, MiB) or a
//! number with a unit ("1 vCPU", "0.25 vcpu", "2 GB", "512 MiB"). ECS converts them to
//! integers at registration, so we do too.

/// CPU units in a vCPU.
const UNITS_PER_VCPU: f64 = 1024.0;
/// MiB in a GB (ECS's "GB" is 1024 MiB).
const MIB_PER_GB: f64 = 1024.0;

/// Parses a task-level `cpu` value into CPU units: "1024", "1 vCPU", "0.25vcpu".
/// Returns `None` when the value is not a positive whole number of units.
pub fn parse_cpu(value: &str) -> Option<u32> {
    parse_with_units(
        value,
        &[("vcpus", UNITS_PER_VCPU), ("vcpu", UNITS_PER_VCPU)],
    )
}

/// Parses a task-level `memory` value into MiB: "2048", "2 GB", "0.5gb", "512 MiB".
/// Returns `None` when the value is not a positive whole number of MiB.
pub fn parse_memory(value: &str) -> Option<u32> {
    parse_with_units(
        value,
        &[
            ("gib", MIB_PER_GB),
            ("gb", MIB_PER_GB),
            ("mib", 1.0),
            ("mb", 1.0),
        ],
    )
}

fn parse_with_units(value: &str, units: &[(&str, f64)]) -> Option<u32> {
    let text = value.trim();
    let lower = text.to_ascii_lowercase();
    // A bare integer is the common case and must not go through floating point.
    if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0 && *n <= i32::MAX as u32);
    }
    let (number, scale) = units.iter().find_map(|(suffix, scale)| {
        lower
            .strip_suffix(suffix)
            .map(|rest| (rest.trim_end(), *scale))
    })?;
    // Digits with at most one decimal point; no signs, exponents, "inf" or "nan".
    let well_formed = !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && number.bytes().filter(|b| *b == b'.').count() <= 1
        && number != ".";
    if !well_formed {
        return None;
    }
    let amount = number.parse::<f64>().ok()? * scale;
    if amount <= 0.0 || amount.fract() != 0.0 || amount > f64::from(i32::MAX) {
        return None;
    }
    Some(amount as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_accepts_units_and_vcpus() {
        assert_eq!(parse_cpu("1024"), Some(1024));
        assert_eq!(parse_cpu(" 256 "), Some(256));
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu("1vcpu"), Some(1024));
        assert_eq!(parse_cpu(".25 vCPU"), Some(256));
        assert_eq!(parse_cpu("0.5 vcpu"), Some(512));
        assert_eq!(parse_cpu("16 vCPUs"), Some(16384));
    }

    #[test]
    fn cpu_rejects_garbage() {
        for bad in [
            "",
            "0",
            "-1",
            "1.5",
            "abc",
            "1 GB",
            "vcpu",
            "1e3 vcpu",
            "0.0001 vcpu",
            "x vcpu",
        ] {
            assert_eq!(parse_cpu(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn memory_accepts_mib_and_gb() {
        assert_eq!(parse_memory("512"), Some(512));
        assert_eq!(parse_memory("2 GB"), Some(2048));
        assert_eq!(parse_memory("2GB"), Some(2048));
        assert_eq!(parse_memory("0.5 gb"), Some(512));
        assert_eq!(parse_memory("3 GiB"), Some(3072));
        assert_eq!(parse_memory("700 MiB"), Some(700));
        assert_eq!(parse_memory("700MB"), Some(700));
    }

    #[test]
    fn memory_rejects_garbage() {
        for bad in ["", "0", "GB", "1 vCPU", "1.1 MB", "nan gb", "99999999999"] {
            assert_eq!(parse_memory(bad), None, "{bad:?}");
        }
    }
}
