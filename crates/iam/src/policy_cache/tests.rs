//! The cache of parsed identity policies: every IAM write that can change a principal's
//! policies applies to the next call, through this `Iam` or another one on the same store
//! (another replica); a call with nothing changed reads one key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_store::{
    Compare, KeyValue, MemStore, Op, Revision, Store, StoreError, TxnOutcome, Watcher,
};

use super::{Holder, MAX_DOCUMENTS, MAX_SETS, PolicyCache, account_of};
use crate::policy::{Policy, PolicySet, PolicyType, Request, RequestPrincipal, evaluate};
use crate::{CreatePolicy, CreateRole, CreateUser, Holder as Of, Iam, Principal};

const ACCOUNT: &str = "000000000000";

/// A store that counts the reads made through it.
struct Counting {
    inner: MemStore,
    gets: AtomicUsize,
}

impl Store for Counting {
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.range(prefix, start_after, limit)
    }
    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        self.inner.txn(compares, ops)
    }
    fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision()
    }
    fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher, StoreError> {
        self.inner.watch(prefix, after)
    }
}

fn doc(action: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
    )
}

fn user(iam: &Iam, name: &str) -> Principal {
    let u = iam
        .create_user(
            ACCOUNT,
            CreateUser {
                user_name: name.into(),
                ..CreateUser::default()
            },
        )
        .unwrap();
    Principal::User {
        account: ACCOUNT.into(),
        name: u.user_name,
        id: u.user_id,
        arn: u.arn,
    }
}

fn policy(iam: &Iam, name: &str, action: &str) -> String {
    iam.create_policy(
        ACCOUNT,
        CreatePolicy {
            policy_name: name.into(),
            document: doc(action),
            ..CreatePolicy::default()
        },
    )
    .unwrap()
    .arn
}

/// Which of a few actions the principal's identity policies allow, by IAM's evaluation.
fn allowed(iam: &Iam, who: &Principal) -> Vec<&'static str> {
    let mut set = PolicySet::new();
    for policy in iam.parsed_identity_policies(who).unwrap().iter() {
        set = set.with_identity(policy.clone());
    }
    [
        "ecr:GetAuthorizationToken",
        "ecs:ListClusters",
        "ecs:RunTask",
        "ecs:StopTask",
    ]
    .into_iter()
    .filter(|action| {
        evaluate(
            &Request::new(RequestPrincipal::from(who), action, "*"),
            &set,
        )
        .is_allowed()
    })
    .collect()
}

#[test]
fn only_users_roles_groups_and_policies_change_an_accounts_generation() {
    assert_eq!(account_of("iam/000000000000/users/alice"), Some(ACCOUNT));
    assert_eq!(account_of("iam/000000000000/roles/r"), Some(ACCOUNT));
    assert_eq!(account_of("iam/000000000000/groups/g"), Some(ACCOUNT));
    assert_eq!(account_of("iam/000000000000/policies/p"), Some(ACCOUNT));
    assert_eq!(account_of("iam/000000000000/generation"), None);
    assert_eq!(account_of("iam/access-keys/AKIDEXAMPLE"), None);
    assert_eq!(account_of("iam/sessions/ASIAEXAMPLE"), None);
    assert_eq!(account_of("ecs/000000000000/us-east-1/clusters/c"), None);
}

#[test]
fn with_nothing_changed_a_call_reads_one_key_and_parses_nothing() {
    let store = Arc::new(Counting {
        inner: MemStore::new(),
        gets: AtomicUsize::new(0),
    });
    let iam = Iam::new(store.clone());
    let alice = user(&iam, "alice");
    for (i, action) in ["ecs:RunTask", "ecs:StopTask", "ecr:*"].iter().enumerate() {
        let arn = policy(&iam, &format!("p{i}"), action);
        iam.attach_policy(ACCOUNT, Of::User("alice"), &arn).unwrap();
    }
    let first = iam.parsed_identity_policies(&alice).unwrap();
    assert_eq!(first.len(), 3);
    let before = store.gets.load(Ordering::SeqCst);
    let again = iam.parsed_identity_policies(&alice).unwrap();
    assert_eq!(store.gets.load(Ordering::SeqCst) - before, 1);
    // The very same parsed policies.
    assert!(Arc::ptr_eq(&first, &again));
    // Root reads nothing at all.
    let before = store.gets.load(Ordering::SeqCst);
    let root = Principal::Root {
        account: ACCOUNT.into(),
    };
    assert!(iam.parsed_identity_policies(&root).unwrap().is_empty());
    assert_eq!(store.gets.load(Ordering::SeqCst), before);
}

#[test]
fn every_kind_of_iam_write_applies_to_the_next_call() {
    let iam = Iam::new(Arc::new(MemStore::new()));
    let alice = user(&iam, "alice");
    assert!(allowed(&iam, &alice).is_empty());
    let run = policy(&iam, "run", "ecs:RunTask");

    iam.attach_policy(ACCOUNT, Of::User("alice"), &run).unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:RunTask"]);

    iam.put_inline_policy(ACCOUNT, Of::User("alice"), "stop", &doc("ecs:StopTask"))
        .unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:RunTask", "ecs:StopTask"]);

    // A new default version; then the old one made default again.
    iam.create_policy_version(ACCOUNT, &run, &doc("ecs:ListClusters"), true)
        .unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:ListClusters", "ecs:StopTask"]);
    iam.set_default_policy_version(ACCOUNT, &run, "v1").unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:RunTask", "ecs:StopTask"]);

    iam.delete_inline_policy(ACCOUNT, Of::User("alice"), "stop")
        .unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:RunTask"]);

    iam.detach_policy(ACCOUNT, Of::User("alice"), &run).unwrap();
    assert!(allowed(&iam, &alice).is_empty());

    // A user deleted and made again under the same name is another user: the old one's
    // principal gets nothing, even from the new one's policies.
    iam.attach_policy(ACCOUNT, Of::User("alice"), &run).unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:RunTask"]);
    iam.detach_policy(ACCOUNT, Of::User("alice"), &run).unwrap();
    iam.delete_user(ACCOUNT, "alice").unwrap();
    assert!(allowed(&iam, &alice).is_empty());
    let alice_again = user(&iam, "Alice");
    iam.put_inline_policy(ACCOUNT, Of::User("alice"), "ecr", &doc("ecr:*"))
        .unwrap();
    assert_eq!(allowed(&iam, &alice_again), ["ecr:GetAuthorizationToken"]);
    assert!(allowed(&iam, &alice).is_empty());

    // A managed policy deleted (once detached and with one version left).
    iam.delete_policy_version(ACCOUNT, &run, "v2").unwrap();
    iam.attach_policy(ACCOUNT, Of::User("alice"), &run).unwrap();
    assert_eq!(
        allowed(&iam, &alice_again),
        ["ecr:GetAuthorizationToken", "ecs:RunTask"]
    );
}

#[test]
fn a_roles_sessions_see_the_roles_policies_change_at_once() {
    let iam = Iam::new(Arc::new(MemStore::new()));
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam
        .create_role(
            ACCOUNT,
            CreateRole {
                role_name: "deployer".into(),
                assume_role_policy_document: trust.into(),
                ..CreateRole::default()
            },
        )
        .unwrap();
    let session = Principal::AssumedRole {
        account: ACCOUNT.into(),
        role_name: role.role_name.clone(),
        role_arn: role.arn.clone(),
        role_id: role.role_id.clone(),
        session_name: "s".into(),
        session_policies: Vec::new(),
        session_tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
    };
    assert!(allowed(&iam, &session).is_empty());
    iam.put_inline_policy(ACCOUNT, Of::Role("deployer"), "run", &doc("ecs:RunTask"))
        .unwrap();
    assert_eq!(allowed(&iam, &session), ["ecs:RunTask"]);
    iam.delete_inline_policy(ACCOUNT, Of::Role("deployer"), "run")
        .unwrap();
    iam.delete_role(ACCOUNT, "deployer").unwrap();
    assert!(allowed(&iam, &session).is_empty());
}

#[test]
fn a_change_through_one_replica_applies_to_the_next_call_on_another() {
    // Two replicas: one store, an `Iam` (and so a cache) each.
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let (here, there) = (Iam::new(store.clone()), Iam::new(store));
    let alice = user(&here, "alice");
    let run = policy(&here, "run", "ecs:RunTask");
    here.attach_policy(ACCOUNT, Of::User("alice"), &run)
        .unwrap();
    // Both replicas have it cached.
    assert_eq!(allowed(&here, &alice), ["ecs:RunTask"]);
    assert_eq!(allowed(&there, &alice), ["ecs:RunTask"]);
    here.create_policy_version(ACCOUNT, &run, &doc("ecs:StopTask"), true)
        .unwrap();
    assert_eq!(allowed(&there, &alice), ["ecs:StopTask"]);
    there
        .detach_policy(ACCOUNT, Of::User("alice"), &run)
        .unwrap();
    assert!(allowed(&here, &alice).is_empty());
}

#[test]
fn writes_elsewhere_in_iam_and_other_accounts_leave_the_cache_alone() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let iam = Iam::new(store.clone());
    let alice = user(&iam, "alice");
    iam.put_inline_policy(ACCOUNT, Of::User("alice"), "run", &doc("ecs:RunTask"))
        .unwrap();
    let first = iam.parsed_identity_policies(&alice).unwrap();
    // Another account's user, and a session record: not alice's account's generation.
    iam.create_user(
        "111111111111",
        CreateUser {
            user_name: "bob".into(),
            ..CreateUser::default()
        },
    )
    .unwrap();
    store.put("iam/sessions/ASIAEXAMPLE", b"{}").unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &iam.parsed_identity_policies(&alice).unwrap()
    ));
}

#[test]
fn the_cache_holds_at_most_its_caps() {
    let cache = PolicyCache::default();
    let policy = Arc::new(Policy::parse(&doc("ecs:RunTask"), PolicyType::Identity).unwrap());
    for i in 0..MAX_SETS + 10 {
        cache.keep_set(
            Holder {
                account: ACCOUNT.into(),
                role: false,
                name: format!("u{i}"),
                id: format!("AIDA{i}"),
            },
            1,
            Arc::new([policy.clone()]),
        );
        assert!(cache.sizes().0 <= MAX_SETS);
    }
    for i in 0..MAX_DOCUMENTS + 10 {
        let parsed = cache
            .parsed(&doc(&format!("ecs:Action{i}")), PolicyType::Identity)
            .unwrap();
        assert!(cache.sizes().1 <= MAX_DOCUMENTS);
        // Content-addressed: the same text gives the same parsed policy.
        let again = cache
            .parsed(&doc(&format!("ecs:Action{i}")), PolicyType::Identity)
            .unwrap();
        assert!(Arc::ptr_eq(&parsed, &again));
    }
}

#[test]
fn a_set_made_at_an_older_generation_does_not_replace_a_newer_one() {
    let cache = PolicyCache::default();
    let holder = Holder {
        account: ACCOUNT.into(),
        role: false,
        name: "alice".into(),
        id: "AIDA1".into(),
    };
    let newer: Arc<[Arc<Policy>]> = Arc::new([]);
    cache.keep_set(holder.clone(), 7, newer.clone());
    cache.keep_set(holder.clone(), 5, Arc::new([]));
    assert!(cache.set(&holder, 5).is_none());
    assert!(Arc::ptr_eq(&cache.set(&holder, 7).unwrap(), &newer));
}

/// The embedded store's process: the generation is its own write count. Other tests in this
/// process write too (they only make a cached set be refused more often), so this one
/// asserts what must always hold: a set from memory is never stale.
#[test]
fn a_sole_writer_checks_its_cache_in_memory_and_never_serves_a_stale_set() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let iam = Iam::new(store.clone()).sole_writer();
    let alice = user(&iam, "alice");
    let root = Principal::Root {
        account: ACCOUNT.into(),
    };
    assert!(iam.cached_identity_policies(&root).unwrap().is_empty());
    let from_memory = |iam: &Iam| -> Option<Vec<&'static str>> {
        iam.cached_identity_policies(&alice)?;
        Some(allowed(iam, &alice))
    };
    let run = policy(&iam, "run", "ecs:RunTask");
    iam.attach_policy(ACCOUNT, Of::User("alice"), &run).unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:RunTask"]);
    assert!(matches!(
        from_memory(&iam).as_deref(),
        None | Some(["ecs:RunTask"])
    ));
    iam.put_inline_policy(ACCOUNT, Of::User("alice"), "stop", &doc("ecs:StopTask"))
        .unwrap();
    // Refused from memory (or, had it been reloaded meanwhile, the new set).
    match iam.cached_identity_policies(&alice) {
        None => {}
        Some(set) => assert_eq!(set.len(), 2),
    }
    assert_eq!(allowed(&iam, &alice), ["ecs:RunTask", "ecs:StopTask"]);
    iam.create_policy_version(ACCOUNT, &run, &doc("ecs:ListClusters"), true)
        .unwrap();
    assert_eq!(allowed(&iam, &alice), ["ecs:ListClusters", "ecs:StopTask"]);
    // Another `Iam` of the same process (a leader's controllers) writes: this one sees it.
    let other = Iam::new(store);
    other
        .detach_policy(ACCOUNT, Of::User("alice"), &run)
        .unwrap();
    match iam.cached_identity_policies(&alice) {
        None => {}
        Some(set) => assert_eq!(set.len(), 1),
    }
    assert_eq!(allowed(&iam, &alice), ["ecs:StopTask"]);
}

#[test]
fn without_sole_writer_memory_alone_never_answers_for_a_user() {
    let iam = Iam::new(Arc::new(MemStore::new()));
    let alice = user(&iam, "alice");
    iam.parsed_identity_policies(&alice).unwrap();
    assert!(iam.cached_identity_policies(&alice).is_none());
}

#[test]
fn a_sole_writers_signing_key_lookups_follow_every_access_key_change() {
    let iam = Iam::new(Arc::new(MemStore::new())).sole_writer();
    let alice = user(&iam, "alice");
    let key = iam.create_access_key(ACCOUNT, "alice").unwrap();
    let id = key.access_key_id.clone();
    let owner = |iam: &Iam| iam.signing_key(&id).unwrap().map(|(_, who)| who);
    assert_eq!(owner(&iam), Some(alice.clone()));
    assert_eq!(owner(&iam), Some(alice.clone()));
    iam.update_access_key(ACCOUNT, "alice", &id, crate::AccessKeyStatus::Inactive)
        .unwrap();
    assert_eq!(owner(&iam), None);
    iam.update_access_key(ACCOUNT, "alice", &id, crate::AccessKeyStatus::Active)
        .unwrap();
    assert_eq!(owner(&iam), Some(alice.clone()));
    iam.delete_access_key(ACCOUNT, "alice", &id).unwrap();
    assert_eq!(owner(&iam), None);
    // An unknown key is no one's.
    assert!(iam.signing_key("AKIANOSUCHKEY0000000").unwrap().is_none());
}

#[test]
fn a_groups_policies_and_membership_apply_to_the_next_call_of_its_members() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let (writer, reader) = (Iam::new(store.clone()), Iam::new(store));
    let bob = user(&writer, "bob");
    writer.create_group(ACCOUNT, "ops", None).unwrap();
    writer
        .put_inline_policy(ACCOUNT, Of::Group("ops"), "list", &doc("ecs:ListClusters"))
        .unwrap();
    assert!(allowed(&reader, &bob).is_empty());
    writer.add_user_to_group(ACCOUNT, "ops", "bob").unwrap();
    assert_eq!(allowed(&reader, &bob), ["ecs:ListClusters"]);
    let arn = policy(&writer, "run", "ecs:RunTask");
    writer
        .attach_policy(ACCOUNT, Of::Group("ops"), &arn)
        .unwrap();
    assert_eq!(allowed(&reader, &bob), ["ecs:ListClusters", "ecs:RunTask"]);
    writer
        .remove_user_from_group(ACCOUNT, "ops", "bob")
        .unwrap();
    assert!(allowed(&reader, &bob).is_empty());
}
