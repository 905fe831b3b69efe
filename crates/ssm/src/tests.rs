use std::sync::Arc;

use berth_kms::DataKey;
use berth_store::{MemStore, Store};

use super::*;

fn ssm() -> (Ssm, Arc<MemStore>) {
    let store = Arc::new(MemStore::new());
    let ssm = Ssm::new(store.clone(), Arc::new(DataKey::derive(&[3; 32])));
    (ssm, store)
}

fn scope() -> SsmScope {
    SsmScope::new("000000000000", "us-east-1")
}

fn put(name: &str, value: &str, kind: &str, overwrite: bool) -> PutParameter {
    PutParameter {
        name: name.into(),
        value: value.into(),
        kind: Some(kind.into()),
        overwrite,
        user: "arn:aws:iam::000000000000:root".into(),
        ..PutParameter::default()
    }
}

#[test]
fn versions_overwrite_and_selectors() {
    let (ssm, _) = ssm();
    let s = scope();
    assert_eq!(
        ssm.put_parameter(&s, put("/app/a", "one", "String", false))
            .unwrap()
            .version,
        1
    );
    assert!(matches!(
        ssm.put_parameter(&s, put("/app/a", "two", "String", false)),
        Err(SsmError::ParameterAlreadyExists)
    ));
    assert_eq!(
        ssm.put_parameter(&s, put("/app/a", "two", "String", true))
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        ssm.get_parameter(&s, "/app/a", false)
            .unwrap()
            .version
            .value,
        "two"
    );
    assert_eq!(
        ssm.get_parameter(&s, "/app/a:1", false)
            .unwrap()
            .version
            .value,
        "one"
    );
    assert!(matches!(
        ssm.get_parameter(&s, "/app/a:9", false),
        Err(SsmError::ParameterVersionNotFound(_))
    ));
    let labelled = ssm
        .label_parameter_version(&s, "/app/a", Some(1), &["prod".into(), "1bad".into()])
        .unwrap();
    assert_eq!(labelled.invalid_labels, vec!["1bad".to_string()]);
    assert_eq!(
        ssm.get_parameter(&s, "/app/a:prod", false)
            .unwrap()
            .version
            .value,
        "one"
    );
    // A label moves.
    ssm.label_parameter_version(&s, "/app/a", None, &["prod".into()])
        .unwrap();
    assert_eq!(
        ssm.get_parameter(&s, "/app/a:prod", false)
            .unwrap()
            .version
            .version,
        2
    );
    let (history, _) = ssm
        .parameter_history(&s, "/app/a", false, 50, None)
        .unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].version.labels.is_empty());
    let arn = "arn:aws:ssm:us-east-1:000000000000:parameter/app/a";
    assert_eq!(ssm.get_parameter(&s, arn, false).unwrap().name, "/app/a");
}

#[test]
fn the_store_holds_no_secure_string_plaintext() {
    let (ssm, store) = ssm();
    let s = scope();
    ssm.put_parameter(
        &s,
        put("/db/password", "hunter2-plain", "SecureString", false),
    )
    .unwrap();
    ssm.put_parameter(
        &s,
        put("/db/password", "second-plain", "SecureString", true),
    )
    .unwrap();
    for kv in store.range("", None, 0).unwrap() {
        let text = String::from_utf8_lossy(&kv.value);
        assert!(
            !text.contains("hunter2-plain") && !text.contains("second-plain"),
            "{text}"
        );
    }
    let hidden = ssm.get_parameter(&s, "/db/password", false).unwrap();
    assert_ne!(hidden.version.value, "second-plain");
    assert_eq!(hidden.version.key_id.as_deref(), Some("alias/aws/ssm"));
    let shown = ssm.get_parameter(&s, "/db/password:1", true).unwrap();
    assert_eq!(shown.version.value, "hunter2-plain");
}

#[test]
fn debug_output_shows_no_secure_string_value() {
    let (ssm, _) = ssm();
    let s = scope();
    let request = put("/db/debug", "plain-in-request", "SecureString", false);
    assert!(!format!("{request:?}").contains("plain-in-request"));
    ssm.put_parameter(&s, request).unwrap();
    let opened = ssm.get_parameter(&s, "/db/debug", true).unwrap();
    assert_eq!(opened.version.value, "plain-in-request");
    assert!(!format!("{opened:?}").contains("plain-in-request"));
    // A String parameter's value is no secret: Debug shows it.
    ssm.put_parameter(&s, put("/db/plain", "visible", "String", false))
        .unwrap();
    let plain = ssm.get_parameter(&s, "/db/plain", false).unwrap();
    assert!(format!("{plain:?}").contains("visible"));
}

#[test]
fn paths_filters_and_pages() {
    let (ssm, _) = ssm();
    let s = scope();
    for name in ["/p/a", "/p/b", "/p/c/d", "/q/x", "flat"] {
        ssm.put_parameter(&s, put(name, "v", "String", false))
            .unwrap();
    }
    ssm.put_parameter(&s, put("/p/e", "v", "SecureString", false))
        .unwrap();
    let names = |page: &Page<Parameter>| {
        page.items
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    let one = ssm
        .parameters_by_path(&s, "/p", false, &[], false, None, None)
        .unwrap();
    assert_eq!(names(&one), ["/p/a", "/p/b", "/p/e"]);
    let all = ssm
        .parameters_by_path(&s, "/p/", true, &[], false, None, None)
        .unwrap();
    assert_eq!(names(&all), ["/p/a", "/p/b", "/p/c/d", "/p/e"]);
    let first = ssm
        .parameters_by_path(&s, "/p", true, &[], false, Some(3), None)
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let rest = ssm
        .parameters_by_path(
            &s,
            "/p",
            true,
            &[],
            false,
            Some(3),
            first.next_token.as_deref(),
        )
        .unwrap();
    assert_eq!(names(&rest), ["/p/e"]);
    assert_eq!(rest.next_token, None);
    let typed = vec![Filter {
        key: "Type".into(),
        option: None,
        values: vec!["SecureString".into()],
    }];
    let secure = ssm
        .parameters_by_path(&s, "/p", true, &typed, false, None, None)
        .unwrap();
    assert_eq!(names(&secure), ["/p/e"]);
    let path = vec![Filter {
        key: "Path".into(),
        option: Some("Recursive".into()),
        values: vec!["/p".into()],
    }];
    let described = ssm.describe_parameters(&s, &[], &path, None, None).unwrap();
    assert_eq!(described.items.len(), 4);
    let bad = vec![Filter {
        key: "Label".into(),
        option: None,
        values: vec!["x".into()],
    }];
    assert!(matches!(
        ssm.describe_parameters(&s, &[], &bad, None, None),
        Err(SsmError::InvalidFilterKey(_))
    ));
}

#[test]
fn tiers_patterns_and_tags() {
    let (ssm, _) = ssm();
    let s = scope();
    let big = "x".repeat(5000);
    assert!(matches!(
        ssm.put_parameter(&s, put("/big", &big, "String", false)),
        Err(SsmError::Validation(_))
    ));
    let mut req = put("/big", &big, "String", false);
    req.tier = Some("Intelligent-Tiering".into());
    assert_eq!(ssm.put_parameter(&s, req).unwrap().tier, Tier::Advanced);
    let mut req = put("/num", "abc", "String", false);
    req.allowed_pattern = Some("^\\d+$".into());
    assert!(matches!(
        ssm.put_parameter(&s, req),
        Err(SsmError::ParameterPatternMismatch(_))
    ));
    let mut req = put("/tagged", "v", "String", true);
    req.tags = vec![("team".into(), "a".into())];
    assert!(matches!(
        ssm.put_parameter(&s, req.clone()),
        Err(SsmError::Validation(_))
    ));
    req.overwrite = false;
    ssm.put_parameter(&s, req).unwrap();
    ssm.add_tags(&s, "Parameter", "/tagged", &[("env".into(), "dev".into())])
        .unwrap();
    ssm.remove_tags(&s, "Parameter", "/tagged", &["team".into()])
        .unwrap();
    assert_eq!(
        ssm.list_tags(&s, "Parameter", "/tagged").unwrap(),
        vec![("env".to_string(), "dev".to_string())]
    );
    assert!(matches!(
        ssm.list_tags(&s, "Parameter", "/none"),
        Err(SsmError::InvalidResourceId)
    ));
}

#[test]
fn the_oldest_version_goes_unless_labelled() {
    let (ssm, _) = ssm();
    let s = scope();
    ssm.put_parameter(&s, put("/v", "0", "String", false))
        .unwrap();
    for i in 1..MAX_VERSIONS {
        ssm.put_parameter(&s, put("/v", &i.to_string(), "String", true))
            .unwrap();
    }
    ssm.put_parameter(&s, put("/v", "new", "String", true))
        .unwrap();
    let (history, token) = ssm.parameter_history(&s, "/v", false, 50, None).unwrap();
    assert_eq!(history[0].version.version, 2);
    let (_, token) = ssm
        .parameter_history(&s, "/v", false, 50, token.as_deref())
        .unwrap();
    assert_eq!(token, None);
    ssm.label_parameter_version(&s, "/v", Some(2), &["keep".into()])
        .unwrap();
    assert!(matches!(
        ssm.put_parameter(&s, put("/v", "more", "String", true)),
        Err(SsmError::ParameterMaxVersionLimitExceeded(_))
    ));
}
