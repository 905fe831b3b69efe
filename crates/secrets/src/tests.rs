use std::sync::Arc;

use berth_store::{MemStore, Store};

use super::*;

fn secrets() -> (Arc<MemStore>, Secrets) {
    let store = Arc::new(MemStore::new());
    let key = Arc::new(DataKey::derive(&[9; 32]));
    (store.clone(), Secrets::new(store, key))
}

fn scope() -> SecretScope {
    SecretScope {
        account: "000000000000".into(),
        region: "us-east-1".into(),
    }
}

fn create(s: &Secrets, name: &str, value: &str) -> Secret {
    s.create(
        &scope(),
        CreateSecret {
            name: name.into(),
            value: Some(SecretValue::String(value.into())),
            ..Default::default()
        },
    )
    .unwrap()
    .0
}

#[test]
fn names_full_and_partial_arns_find_a_secret() {
    let (_, s) = secrets();
    let secret = create(&s, "db/pass-word", "hunter2");
    let suffix = secret.arn.rsplit('-').next().unwrap();
    assert_eq!(suffix.len(), 6);
    let partial = secret.arn.strip_suffix(&format!("-{suffix}")).unwrap();
    for id in ["db/pass-word", secret.arn.as_str(), partial] {
        let v = s.get_value(&scope(), id, None, None).unwrap();
        assert_eq!(v.value, SecretValue::String("hunter2".into()), "{id}");
    }
    let other = secret.arn.replace("us-east-1", "eu-west-1");
    let e = s.get_value(&scope(), &other, None, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Secrets Manager can't find the specified secret."
    );
}

#[test]
fn a_new_value_moves_current_and_previous() {
    let (_, s) = secrets();
    create(&s, "app", "one");
    let (_, v2) = s
        .put_value(
            &scope(),
            "app",
            None,
            &SecretValue::String("two".into()),
            None,
        )
        .unwrap();
    let (secret, v3) = s
        .put_value(
            &scope(),
            "app",
            None,
            &SecretValue::String("three".into()),
            None,
        )
        .unwrap();
    let stages = secret.versions_to_stages();
    assert_eq!(stages[&v3], [AWSCURRENT]);
    assert_eq!(stages[&v2], [AWSPREVIOUS]);
    assert_eq!(stages.len(), 2, "the first version has no label left");
    let previous = s
        .get_value(&scope(), "app", None, Some(AWSPREVIOUS))
        .unwrap();
    assert_eq!(previous.value, SecretValue::String("two".into()));
    // A pending version does not become current; moving it does.
    let (_, pending) = s
        .put_value(
            &scope(),
            "app",
            None,
            &SecretValue::String("four".into()),
            Some(&[AWSPENDING.to_string()]),
        )
        .unwrap();
    assert_eq!(
        s.get_value(&scope(), "app", None, None).unwrap().version_id,
        v3
    );
    let e = s
        .update_version_stage(&scope(), "app", AWSCURRENT, None, Some(&pending))
        .unwrap_err();
    assert!(matches!(e, SecretsError::InvalidParameter(_)));
    let secret = s
        .update_version_stage(&scope(), "app", AWSCURRENT, Some(&v3), Some(&pending))
        .unwrap();
    let stages = secret.versions_to_stages();
    assert_eq!(stages[&pending], [AWSPENDING, AWSCURRENT]);
    assert_eq!(stages[&v3], [AWSPREVIOUS]);
    // Idempotent retries, refused changes of a version.
    let token = "a".repeat(32);
    let value = SecretValue::String("five".into());
    s.put_value(&scope(), "app", Some(&token), &value, None)
        .unwrap();
    s.put_value(&scope(), "app", Some(&token), &value, None)
        .unwrap();
    let e = s
        .put_value(
            &scope(),
            "app",
            Some(&token),
            &SecretValue::String("six".into()),
            None,
        )
        .unwrap_err();
    assert!(matches!(e, SecretsError::ResourceExists(_)));
}

#[test]
fn deletion_refuses_reads_until_restored_and_force_purges() {
    let (store, s) = secrets();
    create(&s, "gone", "x");
    let e = s.delete(&scope(), "gone", Some(6), false).unwrap_err();
    assert!(matches!(e, SecretsError::InvalidParameter(_)));
    let deleted = s.delete(&scope(), "gone", Some(7), false).unwrap();
    let window = deleted.deletion_date.unwrap() - deleted.deleted_date.unwrap();
    assert!((window - 7.0 * 86_400.0).abs() < 1.0);
    let e = s.get_value(&scope(), "gone", None, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "You can't perform this operation on the secret because it was marked for deletion."
    );
    assert!(s.list(&scope(), &[], false, None, 10).unwrap().0.is_empty());
    assert_eq!(s.list(&scope(), &[], true, None, 10).unwrap().0.len(), 1);
    s.restore(&scope(), "gone").unwrap();
    s.get_value(&scope(), "gone", None, None).unwrap();
    s.delete(&scope(), "gone", None, true).unwrap();
    assert!(matches!(
        s.describe(&scope(), "gone"),
        Err(SecretsError::ResourceNotFound(_))
    ));
    assert!(store.range("secretsmanager/", None, 0).unwrap().is_empty());
}

#[test]
fn the_store_holds_no_plaintext() {
    let (store, s) = secrets();
    create(&s, "plain", "correct horse battery staple");
    s.put_value(
        &scope(),
        "plain",
        None,
        &SecretValue::Binary(b"\x00binary-bytes".to_vec()),
        None,
    )
    .unwrap();
    for kv in store.range("", None, 0).unwrap() {
        let text = String::from_utf8_lossy(&kv.value);
        assert!(!text.contains("correct horse"), "{}", kv.key);
        assert!(!text.contains("binary-bytes"), "{}", kv.key);
    }
    // A sealed value copied into another version's record does not open.
    let versions = store
        .range("secretsmanager/000000000000/us-east-1/version/", None, 0)
        .unwrap();
    assert_eq!(versions.len(), 2);
    store.put(&versions[1].key, &versions[0].value).unwrap();
    assert!(
        s.get_value(&scope(), "plain", None, None).is_err()
            || s.get_value(&scope(), "plain", None, Some(AWSPREVIOUS))
                .is_err()
    );
}

#[test]
fn filters_match_as_the_reference_says() {
    let (_, s) = secrets();
    for name in ["prod/db", "prod/api", "dev/db"] {
        create(&s, name, "v");
    }
    s.tag(
        &scope(),
        "dev/db",
        &[Tag {
            key: "team".into(),
            value: "Payments".into(),
        }],
    )
    .unwrap();
    let names = |filters: &[Filter]| -> Vec<String> {
        s.list(&scope(), filters, false, None, 100)
            .unwrap()
            .0
            .into_iter()
            .map(|x| x.name)
            .collect()
    };
    let f = |key, v: &str| Filter {
        key,
        values: vec![v.to_string()],
    };
    assert_eq!(
        names(&[f(FilterKey::Name, "prod/")]),
        ["prod/api", "prod/db"]
    );
    assert_eq!(names(&[f(FilterKey::Name, "!prod/")]), ["dev/db"]);
    assert_eq!(names(&[f(FilterKey::TagValue, "Pay")]), ["dev/db"]);
    assert!(names(&[f(FilterKey::TagValue, "pay")]).is_empty());
    assert_eq!(names(&[f(FilterKey::All, "payments")]), ["dev/db"]);
    // Pages follow the name order.
    let (page, token) = s.list(&scope(), &[], false, None, 2).unwrap();
    assert_eq!(page.len(), 2);
    let (rest, none) = s.list(&scope(), &[], false, token.as_deref(), 2).unwrap();
    assert_eq!((rest.len(), none), (1, None));
}

#[test]
fn secrets_past_their_window_are_purged_by_the_sweep_and_on_access() {
    let (store, s) = secrets();
    for name in ["old", "older"] {
        create(&s, name, "v");
        s.delete(&scope(), name, Some(7), false).unwrap();
        // The window ends: as if seven days had passed.
        let key = scope().secret_key(name);
        let mut secret: Secret = berth_store::decode(&store.get(&key).unwrap().unwrap()).unwrap();
        secret.deletion_date = Some(now() - 1.0);
        store.put(&key, &berth_store::encode(&secret)).unwrap();
    }
    assert!(matches!(
        s.describe(&scope(), "old"),
        Err(SecretsError::ResourceNotFound(_))
    ));
    assert_eq!(s.purge_expired().unwrap(), 1);
    assert!(store.range("secretsmanager/", None, 0).unwrap().is_empty());
    // The name is free again, with a new ARN suffix.
    create(&s, "old", "new");
}
