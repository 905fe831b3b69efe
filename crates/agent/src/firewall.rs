//! Security groups enforced in an awsvpc task's network namespace, with nftables: the
//! control plane sends each interface's rules already resolved to addresses (a source group
//! becomes its members' `/32`s; `berthFirewall` on the ACS interface), and the agent turns
//! them into one nftables table, `inet berth_security_groups`, loaded atomically (`nft -f`
//! replaces the whole table in one transaction, so a change never opens a gap) inside the
//! namespace of the task's infra container.
//!
//! As on EC2: security groups are stateful (answers to allowed traffic pass, and ICMP errors
//! about it), what no rule allows is dropped, loopback inside the task is not filtered.
//! Link-local 169.254.170.2 (the credentials and metadata endpoint) stays reachable whatever
//! the egress rules say, as it does on ECS.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use berth_agent_protocol::acs::{Firewall, FirewallRule};

/// The table the agent owns in a task's namespace.
pub const TABLE: &str = "berth_security_groups";

/// A rule the control plane sent that cannot be enforced as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirewallError {
    #[error("security group rule protocol {0:?} is not tcp, udp, icmp, -1 or a number 0-255")]
    Protocol(String),
    #[error("security group rule port range {0}..{1} is not within 0-65535")]
    Ports(i64, i64),
    #[error("security group rule peer {0:?} is not an IPv4 CIDR")]
    Cidr(String),
}

/// The nftables script that makes the task's namespace enforce `firewall`: deletes any
/// earlier table of ours and creates the new one, in one transaction.
pub fn render(firewall: &Firewall) -> Result<String, FirewallError> {
    let mut script = String::new();
    // `add` then `delete` never fails, whether or not the table was there.
    let _ = writeln!(script, "add table inet {TABLE}");
    let _ = writeln!(script, "delete table inet {TABLE}");
    let _ = writeln!(script, "table inet {TABLE} {{");
    let chains = [
        ("ingress", "input", "iif", "saddr", &firewall.ingress),
        ("egress", "output", "oif", "daddr", &firewall.egress),
    ];
    for (name, hook, interface, peer, rules) in chains {
        let _ = writeln!(script, "  chain {name} {{");
        let _ = writeln!(
            script,
            "    type filter hook {hook} priority filter; policy drop;"
        );
        let _ = writeln!(script, "    ct state established,related accept");
        let _ = writeln!(script, "    {interface} lo accept");
        if name == "egress" {
            let _ = writeln!(script, "    ip daddr 169.254.170.2 accept");
        }
        for rule in rules.iter().flatten() {
            if let Some(line) = rule_line(rule, peer)? {
                let _ = writeln!(script, "    {line}");
            }
        }
        let _ = writeln!(script, "  }}");
    }
    let _ = writeln!(script, "}}");
    Ok(script)
}

/// Loads `script` (from [`render`]) into the network namespace of host process `pid` (the
/// task's infra container), with `nsenter` and Debian's `nft`, in one transaction.
pub async fn load(pid: i64, script: &str) -> Result<(), LoadError> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(LoadError::Spawn)?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(script.as_bytes())
        .await
        .map_err(LoadError::Spawn)?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(LoadError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LoadError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// Why the rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot run nsenter/nft (apt-get install nftables): {0}")]
    Spawn(std::io::Error),
    #[error("nft refused the security group rules: {0}")]
    Refused(String),
}

/// One rule as an nftables statement; `None` for a rule with no peers (it allows nothing).
fn rule_line(rule: &FirewallRule, peer: &str) -> Result<Option<String>, FirewallError> {
    let cidrs = rule
        .cidrs
        .iter()
        .flatten()
        .map(|c| check_cidr(c))
        .collect::<Result<Vec<_>, _>>()?;
    if cidrs.is_empty() {
        return Ok(None);
    }
    let mut line = if cidrs.iter().any(|c| c == "0.0.0.0/0") {
        String::from("meta nfproto ipv4")
    } else {
        format!("ip {peer} {{ {} }}", cidrs.join(", "))
    };
    let protocol = rule.ip_protocol.as_deref().unwrap_or("-1");
    let ports = port_range(rule)?;
    match protocol.to_ascii_lowercase().as_str() {
        "-1" | "all" => {}
        p @ ("tcp" | "udp" | "6" | "17") => {
            let name = if matches!(p, "tcp" | "6") {
                "tcp"
            } else {
                "udp"
            };
            match ports {
                Some((from, to)) if from == to => {
                    let _ = write!(line, " {name} dport {from}");
                }
                Some((from, to)) => {
                    let _ = write!(line, " {name} dport {from}-{to}");
                }
                None => {
                    let _ = write!(line, " meta l4proto {name}");
                }
            }
        }
        // ICMP: EC2 keeps the type in `fromPort` and the code in `toPort` (-1: all).
        "icmp" | "1" => match (rule.from_port, rule.to_port) {
            (Some(kind @ 0..=255), code) => {
                let _ = write!(line, " icmp type {kind}");
                if let Some(code @ 0..=255) = code {
                    let _ = write!(line, " icmp code {code}");
                }
            }
            _ => line.push_str(" meta l4proto icmp"),
        },
        number => match number.parse::<u8>() {
            Ok(n) => {
                let _ = write!(line, " meta l4proto {n}");
            }
            Err(_) => return Err(FirewallError::Protocol(protocol.to_owned())),
        },
    }
    line.push_str(" accept");
    Ok(Some(line))
}

/// `fromPort`..`toPort`, or `None` for every port (absent, or EC2's `-1`).
fn port_range(rule: &FirewallRule) -> Result<Option<(u16, u16)>, FirewallError> {
    match (rule.from_port, rule.to_port) {
        (None, None) | (Some(-1), _) | (_, Some(-1)) => Ok(None),
        (from, to) => {
            let from = from.or(to).unwrap_or(0);
            let to = to.unwrap_or(from);
            match (u16::try_from(from), u16::try_from(to)) {
                (Ok(f), Ok(t)) if f <= t => Ok(Some((f, t))),
                _ => Err(FirewallError::Ports(from, to)),
            }
        }
    }
}

/// `a.b.c.d/n` (or a bare address, as `/32`), normalised.
fn check_cidr(cidr: &str) -> Result<String, FirewallError> {
    let bad = || FirewallError::Cidr(cidr.to_owned());
    let (address, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = Ipv4Addr::from(u32::from(address) & mask);
    Ok(format!("{network}/{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules really load into a namespace and allow only what they say: a process in a
    /// fresh network namespace (`unshare -n`) loads them, then lists them back.
    #[tokio::test]
    async fn rendered_rules_load_into_a_namespace_and_replace_the_last_ones() {
        let tools = ["unshare", "nsenter", "nft"];
        if !tools.iter().all(|t| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        }) || !nix_is_root()
        {
            eprintln!("skipped: needs root, unshare, nsenter and nft (apt-get install nftables)");
            return;
        }
        let mut holder = tokio::process::Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = i64::from(holder.id().unwrap());
        // unshare execs sleep once the namespace is made.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let first = Firewall {
            ingress: Some(vec![rule("tcp", Some((80, 80)), &["10.1.0.0/16"])]),
            egress: Some(vec![rule("-1", None, &["0.0.0.0/0"])]),
        };
        load(pid, &render(&first).unwrap()).await.unwrap();
        let second = Firewall {
            ingress: Some(vec![rule("udp", Some((53, 53)), &["10.9.9.9"])]),
            egress: None,
        };
        load(pid, &render(&second).unwrap()).await.unwrap();
        let listed = std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "nft", "list", "ruleset"])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("udp dport 53 accept"), "{listed}");
        assert!(
            !listed.contains("tcp dport 80"),
            "the old rules stayed: {listed}"
        );
        assert_eq!(
            listed.matches("table inet berth_security_groups").count(),
            1
        );
        // A script nft refuses is an error that quotes nft.
        let refused = load(pid, "table inet x { chain c { nonsense } }").await;
        assert!(
            matches!(refused, Err(LoadError::Refused(ref m)) if !m.is_empty()),
            "{refused:?}"
        );
        holder.kill().await.unwrap();
    }

    fn nix_is_root() -> bool {
        std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
                .unwrap_or(false)
        })
    }

    fn rule(protocol: &str, ports: Option<(i64, i64)>, cidrs: &[&str]) -> FirewallRule {
        FirewallRule {
            ip_protocol: Some(protocol.to_owned()),
            from_port: ports.map(|p| p.0),
            to_port: ports.map(|p| p.1),
            cidrs: Some(cidrs.iter().map(|c| (*c).to_owned()).collect()),
        }
    }

    #[test]
    fn a_group_becomes_one_table_with_stateful_drop_by_default_chains() {
        let firewall = Firewall {
            ingress: Some(vec![
                rule("tcp", Some((80, 80)), &["10.1.0.0/16", "10.192.3.7"]),
                rule("udp", Some((5000, 5010)), &["10.2.3.4/32"]),
                rule("icmp", Some((-1, -1)), &["10.1.0.0/16"]),
                // Echo requests only (type 8, any code), then destination unreachable code 4.
                rule("icmp", Some((8, -1)), &["10.3.0.0/16"]),
                rule("icmp", Some((3, 4)), &["10.4.0.0/16"]),
            ]),
            egress: Some(vec![rule("-1", None, &["0.0.0.0/0"])]),
        };
        let script = render(&firewall).unwrap();
        let expected = "\
add table inet berth_security_groups
delete table inet berth_security_groups
table inet berth_security_groups {
  chain ingress {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif lo accept
    ip saddr { 10.1.0.0/16, 10.192.3.7/32 } tcp dport 80 accept
    ip saddr { 10.2.3.4/32 } udp dport 5000-5010 accept
    ip saddr { 10.1.0.0/16 } meta l4proto icmp accept
    ip saddr { 10.3.0.0/16 } icmp type 8 accept
    ip saddr { 10.4.0.0/16 } icmp type 3 icmp code 4 accept
  }
  chain egress {
    type filter hook output priority filter; policy drop;
    ct state established,related accept
    oif lo accept
    ip daddr 169.254.170.2 accept
    meta nfproto ipv4 accept
  }
}
";
        assert_eq!(script, expected);
    }

    #[test]
    fn no_rules_allow_nothing_but_answers_loopback_and_the_credentials_endpoint() {
        let script = render(&Firewall::default()).unwrap();
        assert!(script.contains("chain ingress"), "{script}");
        assert_eq!(script.matches(" accept").count(), 5, "{script}");
        // A rule whose group has no members allows nothing.
        let empty = Firewall {
            ingress: Some(vec![rule("tcp", Some((80, 80)), &[])]),
            egress: None,
        };
        assert!(!render(&empty).unwrap().contains("dport"));
    }

    #[test]
    fn hosts_inside_a_cidr_are_masked_and_bad_rules_are_refused() {
        let masked = render(&Firewall {
            ingress: Some(vec![rule("6", Some((22, 22)), &["10.1.2.3/16"])]),
            egress: None,
        })
        .unwrap();
        assert!(masked.contains("ip saddr { 10.1.0.0/16 } tcp dport 22 accept"));
        let refuse = |r: FirewallRule| {
            render(&Firewall {
                ingress: Some(vec![r]),
                egress: None,
            })
            .unwrap_err()
        };
        assert_eq!(
            refuse(rule("sctp", None, &["10.0.0.0/8"])),
            FirewallError::Protocol("sctp".into())
        );
        assert_eq!(
            refuse(rule("tcp", Some((90, 80)), &["10.0.0.0/8"])),
            FirewallError::Ports(90, 80)
        );
        assert_eq!(
            refuse(rule("tcp", None, &["10.0.0.0/33"])),
            FirewallError::Cidr("10.0.0.0/33".into())
        );
        // A protocol by number other than the named ones.
        let gre = render(&Firewall {
            ingress: Some(vec![rule("47", None, &["10.0.0.0/8"])]),
            egress: None,
        })
        .unwrap();
        assert!(gre.contains("meta l4proto 47 accept"), "{gre}");
    }
}
