//! The cluster an instance joins, read from its user data as the ECS-optimized AMI's agent
//! reads `/etc/ecs/ecs.config`: the last `ECS_CLUSTER=name` in it (typically written by
//! `echo ECS_CLUSTER=name >> /etc/ecs/ecs.config`), else `default`.

use base64::Engine;

/// ECS's default cluster.
pub const DEFAULT_CLUSTER: &str = "default";

/// The cluster named in `user_data` (base64, as launch templates keep it; plain text is
/// read as it is).
pub fn ecs_cluster(user_data: Option<&str>) -> String {
    let Some(encoded) = user_data else {
        return DEFAULT_CLUSTER.to_string();
    };
    let text = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| encoded.to_string());
    text.lines()
        .rev()
        .find_map(cluster_on_line)
        .unwrap_or_else(|| DEFAULT_CLUSTER.to_string())
}

fn cluster_on_line(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    let at = line.find("ECS_CLUSTER=")?;
    // Not part of a longer variable name (`MY_ECS_CLUSTER=`).
    if line[..at]
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let value: String = line[at + "ECS_CLUSTER=".len()..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ';' | '>'))
        .collect();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn reads_the_cluster_from_the_ecs_config_line() {
        let script = "#!/bin/bash\necho ECS_CLUSTER=web-prod >> /etc/ecs/ecs.config\n";
        assert_eq!(ecs_cluster(Some(&b64(script))), "web-prod");
        let quoted = "#!/bin/bash\necho \"ECS_CLUSTER=batch\" >> /etc/ecs/ecs.config;";
        assert_eq!(ecs_cluster(Some(&b64(quoted))), "batch");
        assert_eq!(ecs_cluster(Some(&b64("ECS_CLUSTER=plain"))), "plain");
    }

    #[test]
    fn the_last_setting_wins_and_others_are_ignored() {
        let script = "ECS_CLUSTER=first\n# ECS_CLUSTER=commented\nMY_ECS_CLUSTER=no\necho ECS_CLUSTER=second>>/etc/ecs/ecs.config\n";
        assert_eq!(ecs_cluster(Some(&b64(script))), "second");
    }

    #[test]
    fn without_a_setting_the_cluster_is_default() {
        assert_eq!(ecs_cluster(None), "default");
        assert_eq!(ecs_cluster(Some(&b64("#!/bin/sh\necho hi\n"))), "default");
        assert_eq!(ecs_cluster(Some(&b64("ECS_CLUSTER=\n"))), "default");
    }

    #[test]
    fn user_data_not_in_base64_is_read_as_text() {
        assert_eq!(ecs_cluster(Some("echo ECS_CLUSTER=raw >> f")), "raw");
    }
}
