//! Agent presence across replicas: each replica publishes which agents it hears
//! (`presence/…` records), and the leader's expiry forgets the record of an instance that
//! was deregistered, so the records do not pile up.

use berth_store::Store;

#[test]
fn a_deregistered_instance_leaves_no_presence_record() {
    let w = berth_ecs::testing::World::new();
    let kept = w.instance(1024, 1024);
    let gone = w.instance(1024, 1024);
    for instance in [&kept, &gone] {
        w.ecs
            .agent_connected(&w.scope, "default", &instance.id)
            .unwrap();
    }
    assert_eq!(w.ecs.publish_presence("replica-a", 60.0).unwrap(), 2);
    let records = || w.store.range("presence/", None, 0).unwrap();
    assert_eq!(records().len(), 2);

    w.ecs
        .deregister_container_instance(&w.scope, None, &gone.id, true)
        .unwrap();
    // Neither heard from since: the registered one is marked disconnected and keeps its
    // record; the deregistered one's record goes.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(w.ecs.expire_agents(0.001).unwrap(), 1);
    let left = records();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].key.ends_with(&kept.id), "{}", left[0].key);
}
