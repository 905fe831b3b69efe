//! Replicas: any number of `berth server` processes on one etcd serve the whole API; the
//! controllers that must act once (the service scheduler, reaping, lifecycle policies,
//! garbage collection, agent expiry) run on the one replica that holds the leader key.
//!
//! Election is etcd's lease pattern. Each replica keeps a lease alive (TTL [`LEASE_TTL`],
//! renewed every second) and, while no one leads, creates the leader key attached to it;
//! the key's create revision is the term's fencing token. A leader that dies stops renewing:
//! etcd expires the lease and deletes the key, and a follower takes over within the TTL.
//!
//! Fencing, twice over. (1) A leader stops acting before its lease can expire in etcd: it
//! counts the lease's life from when it *sent* the last successful renewal (etcd counts
//! from when it received it, later), and steps down [`STEP_DOWN_MARGIN`] before that runs
//! out, checked by a watchdog thread that no blocked call can hold up. (2) Every controller
//! write goes through a `FencedStore`: etcd refuses it unless the leader key is still the
//! incarnation this term created, so even a paused process that wakes up late cannot write.
//!
//! With the embedded store there is one process: it leads from the start, unfenced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_store::{EtcdStore, LeaseId, Revision, Store};
use tokio::sync::watch;

/// The leader key (under the store's prefix).
pub const LEADER_KEY: &str = "berth/leader";
/// Seconds a leader's lease lives without a renewal: the bound on failover.
pub const LEASE_TTL: u64 = 3;
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// A leader steps down this long before its lease could expire in etcd.
pub const STEP_DOWN_MARGIN: Duration = Duration::from_millis(700);
/// How often a follower looks for a vacant lead.
const POLL: Duration = Duration::from_millis(150);

/// One term of leadership of this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The leader key's create revision: every controller write is fenced on it (0: the
    /// embedded store, one process, nothing to fence).
    pub token: Revision,
}

impl Term {
    /// The store this term's controllers write through.
    pub fn store(&self, store: &Arc<dyn Store>) -> Arc<dyn Store> {
        if self.token == 0 {
            return store.clone();
        }
        Arc::new(berth_store::FencedStore::new(
            store.clone(),
            LEADER_KEY,
            self.token,
        ))
    }
}

/// `Some(term)` while this replica leads.
pub type Role = watch::Receiver<Option<Term>>;

/// One process on its own store: it leads for as long as it runs.
pub fn single() -> Role {
    let (tx, rx) = watch::channel(Some(Term { token: 0 }));
    // The receiver keeps the value; the sender may go.
    drop(tx);
    rx
}

struct State {
    lease: Option<LeaseId>,
    /// Until when the lease surely lives (counted from the renewal's sending).
    valid_until: Instant,
    leading: bool,
}

struct Shared {
    state: Mutex<State>,
    role: watch::Sender<Option<Term>>,
    /// The name of the replica that leads when it is another one (`None` while this one
    /// leads or no one does): where the API sends what must run on the leader.
    other_leader: watch::Sender<Option<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Steps down if leading (the controllers end with their term) and gives up the lease:
    /// a lease kept alive after stepping down would keep the leader key from everyone.
    fn step_down(&self, state: &mut State, why: &str) {
        if state.leading {
            state.leading = false;
            self.role.send_replace(None);
            tracing::warn!(reason = why, "stepped down as leader");
        }
        state.lease = None;
    }
}

/// Campaigns for the lead on `etcd` as `replica` until `stop` turns true (then hands the
/// lead over at once by revoking the lease). `other_leader` is kept naming the replica that
/// leads while it is another one.
pub fn elect(
    etcd: Arc<EtcdStore>,
    replica: String,
    other_leader: watch::Sender<Option<String>>,
    mut stop: watch::Receiver<bool>,
) -> Role {
    let (role, rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            lease: None,
            valid_until: Instant::now(),
            leading: false,
        }),
        role,
        other_leader,
        stop: AtomicBool::new(false),
    });
    let watchdog = shared.clone();
    std::thread::Builder::new()
        .name("leader-watchdog".into())
        .spawn(move || {
            while !watchdog.stop.load(Ordering::SeqCst) {
                {
                    let mut state = watchdog.lock();
                    if state.leading && Instant::now() + STEP_DOWN_MARGIN >= state.valid_until {
                        watchdog.step_down(&mut state, "the lease could not be renewed in time");
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .expect("starting the leader watchdog");
    let campaigner = shared.clone();
    std::thread::Builder::new()
        .name("leader-election".into())
        .spawn(move || campaign(&etcd, &replica, &campaigner))
        .expect("starting the leader election");
    tokio::spawn(async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        shared.stop.store(true, Ordering::SeqCst);
    });
    rx
}

fn campaign(etcd: &EtcdStore, replica: &str, shared: &Shared) {
    let mut next_renewal = Instant::now();
    // The lease this thread renews; given up when the state no longer names it.
    let mut held: Option<LeaseId> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let lease = {
            let mut state = shared.lock();
            if state.lease.is_some() && now + STEP_DOWN_MARGIN >= state.valid_until {
                shared.step_down(&mut state, "the lease expired");
            }
            state.lease
        };
        if let Some(old) = held.filter(|h| Some(*h) != lease) {
            // Hand the leader key over now rather than when etcd expires the lease.
            let _ = etcd.revoke_lease(old);
            held = None;
        }
        let lease = match lease {
            Some(lease) => lease,
            None => match etcd.grant_lease(LEASE_TTL) {
                Ok((lease, ttl)) => {
                    held = Some(lease);
                    let mut state = shared.lock();
                    state.lease = Some(lease);
                    state.valid_until = now + Duration::from_secs(ttl);
                    next_renewal = now + RENEW_EVERY;
                    lease
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot get a lease from etcd");
                    std::thread::sleep(POLL);
                    continue;
                }
            },
        };
        if now >= next_renewal {
            let sent = Instant::now();
            match etcd.keep_alive(lease) {
                Ok(0) => {
                    let mut state = shared.lock();
                    if state.lease == Some(lease) {
                        shared.step_down(&mut state, "etcd expired the lease");
                    }
                    continue;
                }
                Ok(ttl) => {
                    let mut state = shared.lock();
                    if state.lease == Some(lease) {
                        state.valid_until = state.valid_until.max(sent + Duration::from_secs(ttl));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "lease renewal failed; retrying"),
            }
            next_renewal = sent + RENEW_EVERY;
        }
        let leading = shared.lock().leading;
        if !leading {
            match etcd.get(LEADER_KEY) {
                // No one leads: until someone does, this replica acts for itself.
                Ok(None) => {
                    shared
                        .other_leader
                        .send_if_modified(|known| replace_if_changed(known, None));
                    try_to_lead(etcd, replica, lease, shared);
                }
                Ok(Some(kv)) => {
                    let name = String::from_utf8_lossy(&kv.value).into_owned();
                    let other = (name != replica).then_some(name);
                    shared
                        .other_leader
                        .send_if_modified(|known| replace_if_changed(known, other));
                }
                Err(e) => tracing::debug!(error = %e, "cannot read the leader key"),
            }
        }
        std::thread::sleep(POLL.min(next_renewal.saturating_duration_since(Instant::now())));
    }
    {
        let mut state = shared.lock();
        shared.step_down(&mut state, "the server stops");
    }
    if let Some(lease) = held
        && let Err(e) = etcd.revoke_lease(lease)
    {
        tracing::warn!(error = %e, "cannot hand the lead over (revoking the lease)");
    }
}

/// Creates the leader key on `lease`; this replica leads if it did so while the lease surely
/// lives.
fn try_to_lead(etcd: &EtcdStore, replica: &str, lease: LeaseId, shared: &Shared) {
    match etcd.create_with_lease(LEADER_KEY, replica.as_bytes(), lease) {
        Ok(Some(token)) => {
            let mut state = shared.lock();
            if state.lease == Some(lease) && Instant::now() + STEP_DOWN_MARGIN < state.valid_until {
                state.leading = true;
                shared.role.send_replace(Some(Term { token }));
                tracing::info!(replica, token, "elected leader");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "campaign failed"),
    }
}

/// Sets `known` to `new`: whether it changed.
fn replace_if_changed(known: &mut Option<String>, new: Option<String>) -> bool {
    if *known == new {
        return false;
    }
    *known = new;
    true
}

/// Waits for this replica's next term: `None` when the server stops first.
pub async fn next_term(role: &mut Role, shutdown: &mut watch::Receiver<bool>) -> Option<Term> {
    loop {
        if *shutdown.borrow() {
            return None;
        }
        if let Some(term) = role.borrow_and_update().clone() {
            return Some(term);
        }
        tokio::select! {
            changed = role.changed() => if changed.is_err() { return role.borrow().clone() },
            _ = shutdown.changed() => {}
        }
    }
}

/// Resolves when the term ends (the lead is lost) or the server stops.
pub async fn term_ended(role: &mut Role, shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() || role.borrow_and_update().is_none() {
            return;
        }
        tokio::select! {
            changed = role.changed() => if changed.is_err() {
                // The sender is gone: the role stays what it is (`single`) until shutdown.
                let _ = shutdown.changed().await;
                return;
            },
            _ = shutdown.changed() => {}
        }
    }
}
