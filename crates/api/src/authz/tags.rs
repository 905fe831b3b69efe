//! The tag condition keys of a request (access_tags.html):
//!
//! - `aws:RequestTag/KEY` and `aws:TagKeys`: the tags a request asks to put on a resource
//!   (CreateCluster's `tags`, CreateRepository's, TagResource's, CreateLogGroup's,
//!   IAM's `Tags.member.N`), read from the request before its handler runs;
//! - `aws:ResourceTag/KEY`, and the services' own `ecs:ResourceTag/KEY` and
//!   `ecr:ResourceTag/KEY`: the tags of the one existing resource a request acts on, looked
//!   up in the store (a request on several resources, or on `*`, gives none).

use serde_json::Value;

/// The tags a JSON request of `service` asks for: ECS `tags: [{key, value}]`, ECR
/// `tags: [{Key, Value}]`, CloudWatch Logs `tags: {KEY: VALUE}`.
pub fn json_request_tags(service: &str, body: &[u8]) -> Vec<(String, String)> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // SSM's and Secrets Manager's members are capitalised (`Tags: [{Key, Value}]`).
    let field = if matches!(service, "ssm" | "secretsmanager") {
        "Tags"
    } else {
        "tags"
    };
    let Some(tags) = body.get(field) else {
        return Vec::new();
    };
    let (k, v) = match service {
        "ecs" => ("key", "value"),
        "ecr" | "ssm" | "secretsmanager" => ("Key", "Value"),
        "logs" => {
            return tags
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
        }
        _ => return Vec::new(),
    };
    tags.as_array()
        .map(|list| {
            list.iter()
                .filter_map(|t| {
                    let key = t.get(k)?.as_str()?;
                    let value = t.get(v).and_then(Value::as_str).unwrap_or("");
                    Some((key.to_string(), value.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The tags a Query request asks for (`Tags.member.N.Key` / `.Value`).
pub fn query_request_tags(request: &crate::protocol::query::QueryRequest) -> Vec<(String, String)> {
    request
        .structs("Tags")
        .iter()
        .filter_map(|t| {
            let key = t.get("Key")?;
            Some((key.to_string(), t.get("Value").unwrap_or(&"").to_string()))
        })
        .collect()
}

/// `aws:RequestTag/KEY` for each tag asked for, and `aws:TagKeys` (one value per key).
pub fn request_tag_keys(tags: &[(String, String)]) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (format!("aws:RequestTag/{k}"), v.clone()))
        .collect();
    keys.extend(
        tags.iter()
            .map(|(k, _)| ("aws:TagKeys".to_string(), k.clone())),
    );
    keys
}

/// `aws:ResourceTag/KEY` and `SERVICE:ResourceTag/KEY` (ECS and ECR name their own) for each
/// tag of the resource a request acts on.
pub fn resource_tag_keys(service: &str, tags: &[(String, String)]) -> Vec<(String, String)> {
    let own = matches!(service, "ecs" | "ecr" | "secretsmanager");
    let mut keys = Vec::with_capacity(tags.len() * 2);
    for (k, v) in tags {
        keys.push((format!("aws:ResourceTag/{k}"), v.clone()));
        if own {
            keys.push((format!("{service}:ResourceTag/{k}"), v.clone()));
        }
    }
    keys
}

/// The one resource whose tags a request's conditions may test: its only resource, when
/// that is an ARN (not `*`, not a pattern such as every revision of a family).
pub fn tagged_resource(resources: &[String]) -> Option<&str> {
    match resources {
        [one] if one.starts_with("arn:") && !one.contains('*') => Some(one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tags_of_each_service() {
        let ecs = br#"{"clusterName":"c","tags":[{"key":"team","value":"a"},{"key":"env"}]}"#;
        let tags = json_request_tags("ecs", ecs);
        assert_eq!(
            tags,
            vec![("team".into(), "a".into()), ("env".into(), String::new())]
        );
        assert_eq!(
            request_tag_keys(&tags),
            vec![
                ("aws:RequestTag/team".to_string(), "a".to_string()),
                ("aws:RequestTag/env".to_string(), String::new()),
                ("aws:TagKeys".to_string(), "team".to_string()),
                ("aws:TagKeys".to_string(), "env".to_string()),
            ]
        );
        let ecr = br#"{"repositoryName":"r","tags":[{"Key":"team","Value":"b"}]}"#;
        assert_eq!(
            json_request_tags("ecr", ecr),
            vec![("team".into(), "b".into())]
        );
        let logs = br#"{"logGroupName":"g","tags":{"team":"c"}}"#;
        assert_eq!(
            json_request_tags("logs", logs),
            vec![("team".into(), "c".into())]
        );
        assert!(json_request_tags("ecs", b"{}").is_empty());
    }

    #[test]
    fn resource_tags_name_the_service_key_too() {
        let tags = [("team".to_string(), "a".to_string())];
        assert_eq!(
            resource_tag_keys("ecr", &tags),
            vec![
                ("aws:ResourceTag/team".to_string(), "a".to_string()),
                ("ecr:ResourceTag/team".to_string(), "a".to_string()),
            ]
        );
        assert_eq!(resource_tag_keys("logs", &tags).len(), 1);
        let one = ["arn:aws:ecs:us-east-1:0:cluster/a".to_string()];
        assert_eq!(tagged_resource(&one), Some(one[0].as_str()));
        assert_eq!(tagged_resource(&["*".to_string()]), None);
        let family = ["arn:aws:ecs:us-east-1:0:task-definition/f:*".to_string()];
        assert_eq!(tagged_resource(&family), None);
    }
}
