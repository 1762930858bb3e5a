//! The data-plane actor: the one task that owns runtime state and the kernel.
//!
//! Inputs: configuration snapshots (a watch channel from the service), commands from
//! [`DataplaneHandle`]s, and a periodic timer. On each, it computes the desired table, dumps the
//! kernel's, and applies only the difference. The periodic pass finds drift (someone ran
//! `ipvsadm` by hand) and repairs it. When the kernel is unavailable it reports `degraded` and
//! retries with a growing back-off: no crash, no busy loop. No message ends the loop; only the
//! end of its inputs (shutdown) does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::connsync::Step;
use super::desired::{alive_weight, desired_service, desired_table, quorum_next, Health};
use super::owned::{MemoryOwned, OwnedServices};
use super::quorum::{QuorumCause, QuorumCommandKind};
use super::reconcile::{reconcile, reconcile_keys};
use crate::control::events::{EventBus, EventKind};
use crate::control::status::{ConnectionSyncStatus, DataplaneState, DataplaneStatus, StatusBoard};
use crate::dataplane::health::state::HealthState;
use crate::dataplane::health::{Checkers, Report, Verdict};
use crate::dataplane::vrrp::engine::VrrpEngine;
use crate::dataplane::vrrp::TrackKey;
use crate::ipvs::table::{IpvsTable, ServiceKey, SyncDaemon, SyncRole};
use crate::kernel::{Kernel, KernelError};
use crate::model::config::VsChanges;
use crate::model::idmap::{IdMap, IdSet};
use crate::model::{ConnectionSync, Id, Snapshot, VirtualServer, VrrpGroup};

/// Applies of at most this many operations run on the actor's task (`with_kernel`); larger
/// ones (a cold load, a resync, a whole-config PUT) on a blocking thread.
const INLINE_OPS: usize = 64;

/// The health checkers' report queue; a full one makes the checkers wait, never drops.
const REPORTS_QUEUE: usize = 1024;

#[derive(Debug, Clone)]
pub struct ActorConfig {
    /// This director's node name: which entry of each VRRP group is ours.
    pub node_name: String,
    /// How often the kernel's table is compared with the desired one to find drift.
    pub resync_interval: Duration,
    /// First retry delay after a kernel error; doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Peer sync's start-up hold: while it reads `true`, the actor neither programs IPVS nor
    /// starts VRRP (see `crate::peer`). `None`: no hold.
    pub hold: Option<watch::Receiver<bool>>,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            node_name: String::new(),
            resync_interval: Duration::from_secs(10),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            hold: None,
        }
    }
}

enum Command {
    /// Converge now and report what it took.
    Resync(oneshot::Sender<Result<usize, KernelError>>),
    /// The kernel's table as lbd reads it.
    KernelTable(oneshot::Sender<Result<IpvsTable, KernelError>>),
    /// Zero the traffic counters (`ipvsadm -Z`) of every service, or of one.
    Zero(Option<ServiceKey>, oneshot::Sender<Result<(), KernelError>>),
    /// Graceful stop of VRRP (priority 0 from every master, addresses released), first thing
    /// on shutdown, so the peer takes over after Skew_Time alone.
    StopVrrp(oneshot::Sender<()>),
    /// keepalived's `omega` on shutdown: runs `quorum_down` of every virtual server with
    /// `omega` whose quorum is up, and answers when they have ended (each within its timeout).
    Omega(oneshot::Sender<()>),
    /// Answered at once from the actor's loop: the systemd watchdog's proof that the loop
    /// still turns (a wedged actor stops answering, and systemd restarts lbd).
    Ping(oneshot::Sender<()>),
    /// A peer's health verdicts to use instead of this director's own (see `crate::peer::link`
    /// for when), or `None` to stop using them.
    PeerVerdicts(PeerVerdicts),
}

/// A peer's verdicts, from its peer link.
#[derive(Debug, Clone)]
pub struct PeerVerdicts {
    /// The peer's configured address.
    pub peer: String,
    /// (virtual server id, real server id, down) for every real server the peer checks; `None`:
    /// use this director's own verdicts again.
    pub verdicts: Option<Vec<(Id, Id, bool)>>,
}

/// A cloneable way to talk to the actor.
#[derive(Clone)]
pub struct DataplaneHandle {
    tx: mpsc::Sender<Command>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("the data plane is not running")]
    Gone,
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// IPVS has no netlink command for the connection table; its /proc file could not be read.
    #[error("IPVS is unavailable: /proc/net/ip_vs_conn: {0}")]
    Connections(String),
}

impl DataplaneHandle {
    /// Converges now; returns the number of kernel operations it took.
    pub async fn resync(&self) -> Result<usize, HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Resync(tx))
            .await
            .map_err(|_| HandleError::Gone)?;
        Ok(rx.await.map_err(|_| HandleError::Gone)??)
    }

    /// Hands the actor a peer's verdicts (see [`Command::PeerVerdicts`]).
    pub async fn peer_verdicts(&self, v: PeerVerdicts) -> Result<(), HandleError> {
        self.tx
            .send(Command::PeerVerdicts(v))
            .await
            .map_err(|_| HandleError::Gone)
    }

    /// Stops VRRP gracefully (see [`Command::StopVrrp`]); the IPVS table is left as it is.
    pub async fn stop_vrrp(&self) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::StopVrrp(tx))
            .await
            .map_err(|_| HandleError::Gone)?;
        rx.await.map_err(|_| HandleError::Gone)
    }

    /// Runs the `omega` quorum commands of a stopping lbd (see [`Command::Omega`]).
    pub async fn omega(&self) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Omega(tx))
            .await
            .map_err(|_| HandleError::Gone)?;
        rx.await.map_err(|_| HandleError::Gone)
    }

    /// Answers once the actor's loop has come round to this request (see [`Command::Ping`]).
    pub async fn ping(&self) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Ping(tx))
            .await
            .map_err(|_| HandleError::Gone)?;
        rx.await.map_err(|_| HandleError::Gone)
    }

    /// Zeroes the kernel's traffic counters (`ipvsadm -Z`) of every service (`None`) or of one
    /// (any service the kernel has, lbd's or not).
    pub async fn zero(&self, service: Option<ServiceKey>) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Zero(service, tx))
            .await
            .map_err(|_| HandleError::Gone)?;
        Ok(rx.await.map_err(|_| HandleError::Gone)??)
    }

    /// The kernel's whole IPVS table (services lbd does not manage included), read now, as
    /// both APIs show it.
    pub async fn ipvs_view(&self) -> Result<super::view::IpvsTableView, HandleError> {
        Ok(super::view::view(&self.kernel_table().await?))
    }

    /// The kernel's IPVS connection table (`ipvsadm -Lnc`), read now. It comes from a /proc
    /// file, not the actor's netlink socket, so the read runs on a blocking thread of its own.
    pub async fn connections(&self) -> Result<Vec<super::view::Connection>, HandleError> {
        tokio::task::spawn_blocking(crate::ipvs::conn::read)
            .await
            .map_err(|e| HandleError::Connections(e.to_string()))?
            .map_err(|e| HandleError::Connections(e.to_string()))
    }

    pub async fn kernel_table(&self) -> Result<IpvsTable, HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::KernelTable(tx))
            .await
            .map_err(|_| HandleError::Gone)?;
        Ok(rx.await.map_err(|_| HandleError::Gone)??)
    }
}

/// Why a convergence pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Start,
    Config,
    Health,
    Periodic,
    Requested,
}

/// How long a stop waits for the VRRP notify commands it started (`notify_stop`).
const NOTIFY_DRAIN: Duration = Duration::from_secs(10);

struct Actor {
    kernel: Option<Box<dyn Kernel>>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    board: StatusBoard,
    events: EventBus,
    cfg: ActorConfig,
    health: Health,
    checkers: Checkers,
    /// Every checker task's round reports (see `crate::dataplane::health`).
    reports: mpsc::Receiver<Report>,
    /// Where `owned` is kept across restarts.
    record: Box<dyn OwnedServices>,
    /// The kernel's table as last dumped, with what lbd applied since.
    kernel_cache: Option<IpvsTable>,
    /// Services lbd created: the only ones it may delete.
    owned: BTreeSet<ServiceKey>,
    /// The desired table of the last successful pass, and which virtual server (as shared by
    /// the snapshot) gave which service: a change is applied by recomputing only the virtual
    /// servers that are not the same `Arc` any more, or whose real servers changed health.
    desired: Option<IpvsTable>,
    desired_from: IdMap<(Arc<VirtualServer>, Option<ServiceKey>)>,
    /// Virtual servers whose real servers changed health since the last pass.
    health_dirty: IdSet,
    /// This director's own verdicts: the real servers its checks consider down. `health.down`
    /// is what the table uses: these, or a peer's where `peer_views` has one.
    own_down: HashSet<Id>,
    /// Peers' verdicts in use, by peer address: real server -> (virtual server, down).
    peer_views: BTreeMap<String, HashMap<Id, (Id, bool)>>,
    /// The owned set differs from what `record` holds (starts as loaded: no write at start-up
    /// unless the first pass changes it).
    owned_dirty: bool,
    status: DataplaneStatus,
    backoff: Duration,
    /// VRRP runs on a thread of its own (see `crate::dataplane::vrrp::engine`), started with the first
    /// VRRP group, with a kernel handle of its own.
    vrrp: Option<VrrpEngine>,
    vrrp_kernel: Option<Box<dyn Kernel>>,
    /// The VRRP groups last handed to the engine.
    vrrp_sent: Option<Vec<VrrpGroup>>,
    /// The VRRP sync groups last handed to the engine.
    vrrp_settings_sent: Option<crate::model::VrrpSettings>,
    /// What the engine was last told of the virtual servers VRRP groups track (`true`:
    /// failing).
    vrrp_tracked: BTreeMap<TrackKey, bool>,
    /// The VRRP groups' track scripts, one task each (see `crate::dataplane::vrrp_commands`).
    vrrp_scripts: super::vrrp_commands::Scripts,
    /// The task that runs the engine's notify commands; it ends after the engine.
    vrrp_notifier: Option<JoinHandle<()>>,
    /// The connection-sync setting of the last pass (to stop lbd's daemons when it goes), and
    /// the daemons lbd itself started since it runs (see `super::connsync`).
    sync_prev: Option<ConnectionSync>,
    sync_started: BTreeMap<SyncRole, SyncDaemon>,
    /// Connection sync's failback gate while VRRP runs with it (see `super::failback`), and
    /// when to look next while it is closed.
    failback: Option<super::failback::FailbackGate>,
    failback_next: Option<Instant>,
}

/// Starts the actor, with its owned services recorded in memory only. It runs until every
/// handle and the snapshot sender are gone.
pub fn spawn(
    kernel: Box<dyn Kernel>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    board: StatusBoard,
    events: EventBus,
    cfg: ActorConfig,
) -> (DataplaneHandle, JoinHandle<()>) {
    spawn_with_owned(
        kernel,
        snapshots,
        board,
        events,
        cfg,
        Box::new(MemoryOwned::default()),
    )
}

/// Like [`spawn`], remembering in `record` which services lbd created, so that a restart can
/// still delete one whose removal had not reached the kernel before lbd stopped.
pub fn spawn_with_owned(
    kernel: Box<dyn Kernel>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    board: StatusBoard,
    events: EventBus,
    cfg: ActorConfig,
    record: Box<dyn OwnedServices>,
) -> (DataplaneHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let (rtx, reports) = mpsc::channel(REPORTS_QUEUE);
    let checkers = Checkers::new(board.health_publisher(), board.health_metrics(), rtx);
    let backoff = cfg.retry_min;
    let vrrp_kernel = Some(kernel.sibling());
    let actor = Actor {
        kernel: Some(kernel),
        snapshots,
        board,
        events,
        cfg,
        health: Health::default(),
        checkers,
        reports,
        owned: BTreeSet::new(),
        desired: None,
        desired_from: IdMap::default(),
        health_dirty: IdSet::default(),
        own_down: HashSet::new(),
        peer_views: BTreeMap::new(),
        owned_dirty: false,
        kernel_cache: None,
        record,
        status: DataplaneStatus {
            state: DataplaneState::NotRunning,
            reason: Some("starting".into()),
            ..DataplaneStatus::default()
        },
        backoff,
        vrrp: None,
        vrrp_kernel,
        vrrp_sent: None,
        vrrp_settings_sent: None,
        vrrp_tracked: BTreeMap::new(),
        vrrp_scripts: super::vrrp_commands::Scripts::default(),
        vrrp_notifier: None,
        sync_prev: None,
        sync_started: BTreeMap::new(),
        failback: None,
        failback_next: None,
    };
    (DataplaneHandle { tx }, tokio::spawn(actor.run(rx)))
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        match self.record.load().await {
            Ok(owned) => self.owned = owned,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the owned IPVS services; only this run's are known")
            }
        }
        if let Some(mut hold) = self.cfg.hold.clone() {
            if *hold.borrow() {
                tracing::info!("the data plane waits for the peers' configuration");
                let _ = hold.wait_for(|h| !*h).await;
            }
        }
        self.sync_checkers();
        self.sync_vrrp();
        let mut next = Instant::now() + self.pass(Reason::Start).await;
        loop {
            tokio::select! {
                changed = self.snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.sync_checkers();
                    self.sync_vrrp();
                    let wait = self.pass(Reason::Config).await;
                    next = self.next_after(next, wait);
                }
                Some(r) = self.reports.recv() => {
                    // Reports that arrived meanwhile are folded in at once, and their verdicts
                    // go into the same pass.
                    let mut batch = vec![r];
                    while batch.len() < REPORTS_QUEUE {
                        match self.reports.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    let verdicts = self.checkers.apply(batch);
                    if !verdicts.is_empty() {
                        for v in verdicts {
                            self.on_verdict(v);
                        }
                        let wait = self.pass(Reason::Health).await;
                        next = self.next_after(next, wait);
                    }
                }
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(Command::Resync(reply)) => {
                        let before = self.status.ops_applied;
                        next = Instant::now() + self.pass(Reason::Requested).await;
                        let r = match &self.status.last_error {
                            Some(e) if self.status.state != DataplaneState::Running => {
                                Err(KernelError::Io(e.clone()))
                            }
                            _ => Ok((self.status.ops_applied - before) as usize),
                        };
                        let _ = reply.send(r);
                    }
                    Some(Command::KernelTable(reply)) => {
                        let _ = reply.send(self.dump().await);
                    }
                    Some(Command::Zero(service, reply)) => {
                        // One small netlink request: on the actor's own task.
                        let r = self
                            .with_kernel(true, move |k| k.ipvs_zero(service.as_ref()))
                            .await;
                        match (&r, service) {
                            (Ok(()), Some(k)) => tracing::info!(service = %k, "IPVS counters zeroed"),
                            (Ok(()), None) => tracing::info!("IPVS counters of every service zeroed"),
                            (Err(e), _) => tracing::warn!(error = %e, "zeroing the IPVS counters failed"),
                        }
                        let _ = reply.send(r);
                    }
                    Some(Command::StopVrrp(reply)) => {
                        self.vrrp_scripts.stop();
                        if let Some(e) = self.vrrp.take() {
                            let _ = tokio::task::spawn_blocking(move || e.stop()).await;
                        }
                        self.drain_notifier().await;
                        // No restart from a later snapshot: this is the way out.
                        self.vrrp_kernel = None;
                        self.vrrp_sent = None;
                        let _ = reply.send(());
                    }
                    Some(Command::Ping(reply)) => {
                        let _ = reply.send(());
                    }
                    Some(Command::PeerVerdicts(v)) => {
                        if self.on_peer_verdicts(v) {
                            let wait = self.pass(Reason::Health).await;
                            next = self.next_after(next, wait);
                        }
                    }
                    Some(Command::Omega(reply)) => {
                        let tasks = self.omega_on_shutdown();
                        // Answered from a task of its own: the actor keeps serving meanwhile.
                        tokio::spawn(async move {
                            for t in tasks {
                                let _ = t.await;
                            }
                            let _ = reply.send(());
                        });
                    }
                },
                _ = tokio::time::sleep_until(next) => {
                    next = Instant::now() + self.pass(Reason::Periodic).await;
                }
                _ = tokio::time::sleep_until(self.failback_next.unwrap_or(next)),
                    if self.failback_next.is_some() => {
                    self.look_failback().await;
                }
            }
        }
        self.vrrp_scripts.stop();
        if let Some(e) = self.vrrp.take() {
            // Priority 0 from every master, addresses released (RFC 5798 section 6.4.3).
            let _ = tokio::task::spawn_blocking(move || e.stop()).await;
        }
        self.drain_notifier().await;
        tracing::info!("data plane stopped; the kernel table is left as it is");
    }

    /// Hands the VRRP groups of the current snapshot to the engine when they changed.
    fn sync_vrrp(&mut self) {
        let snap = self.snapshots.borrow().clone();
        let groups = &snap.config.vrrp_groups;
        self.send_vrrp_settings(&snap.config.vrrp_settings);
        if self.vrrp_sent.as_ref() == Some(groups) {
            return;
        }
        if self.vrrp.is_none() {
            if groups.is_empty() {
                return;
            }
            let Some(k) = self.vrrp_kernel.take() else {
                return;
            };
            // Notify commands run on tasks of the data plane, never on the VRRP thread.
            let (ntx, nrx) = mpsc::unbounded_channel();
            self.vrrp_notifier = Some(super::vrrp_commands::spawn_notifier(
                nrx,
                self.events.clone(),
            ));
            // Connection sync's failback gate, as configured when VRRP starts (see
            // `super::failback`): closed with a hold, until the backup daemon has received.
            let hold = snap
                .config
                .connection_sync
                .as_ref()
                .map_or(Duration::ZERO, |c| {
                    Duration::from_millis(u64::from(c.failback_hold_ms))
                });
            match VrrpEngine::start(
                k,
                self.cfg.node_name.clone(),
                self.board.clone(),
                self.events.clone(),
                Some(ntx),
                !hold.is_zero(),
            ) {
                Ok(e) => {
                    self.vrrp = Some(e);
                    if !hold.is_zero() {
                        let now = Instant::now();
                        self.failback =
                            Some(super::failback::FailbackGate::new(hold, now.into_std()));
                        self.failback_next = Some(now);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the VRRP thread");
                    return;
                }
            }
        }
        self.send_vrrp_settings(&snap.config.vrrp_settings);
        if let Some(e) = &self.vrrp {
            e.configure(groups.clone());
            self.vrrp_sent = Some(groups.clone());
            self.vrrp_scripts
                .sync(groups, &self.cfg.node_name, &e.track_sender(), &self.events);
        }
    }

    /// Hands the engine the VRRP settings (sync groups, strict mode) when they changed (before
    /// the groups, so that members start synchronised and strict).
    fn send_vrrp_settings(&mut self, settings: &crate::model::VrrpSettings) {
        if let Some(e) = &self.vrrp {
            if self.vrrp_settings_sent.as_ref() != Some(settings) {
                e.configure_settings(settings.clone());
                self.vrrp_settings_sent = Some(settings.clone());
            }
        }
    }

    /// After the engine stopped: lets the notify commands of the stop (`notify_stop`) end,
    /// for at most [`NOTIFY_DRAIN`].
    async fn drain_notifier(&mut self) {
        if let Some(h) = self.vrrp_notifier.take() {
            if tokio::time::timeout(NOTIFY_DRAIN, h).await.is_err() {
                tracing::warn!(
                    "VRRP notify commands still running at the stop are left to be killed"
                );
            }
        }
    }

    /// Tells the VRRP engine which tracked virtual servers changed: one fails while none of
    /// its real servers is healthy, or, with a `quorum`, while its quorum is lost.
    fn sync_vrrp_tracking(&mut self) {
        let Some(engine) = &self.vrrp else {
            return;
        };
        let snap = self.snapshots.borrow().clone();
        let wanted: BTreeSet<String> = snap
            .config
            .vrrp_groups
            .iter()
            .flat_map(|g| g.track_virtual_servers.iter())
            .map(|t| t.virtual_server.clone())
            .collect();
        let mut changes = Vec::new();
        let mut now = BTreeMap::new();
        for name in wanted {
            let Some(key) = crate::model::VsKey::parse(&name) else {
                continue;
            };
            let Some(vs) = snap
                .config
                .virtual_servers
                .iter()
                .find(|v| v.key() == Some(key))
            else {
                continue;
            };
            let failing = vs_failing(vs, &self.health);
            let k = TrackKey::VirtualServer(name);
            if self.vrrp_tracked.get(&k) != Some(&failing) {
                changes.push((k.clone(), Some(failing)));
            }
            now.insert(k, failing);
        }
        // Gone (removed, or no longer tracked): not known any more.
        for k in self.vrrp_tracked.keys() {
            if !now.contains_key(k) {
                changes.push((k.clone(), None));
            }
        }
        self.vrrp_tracked = now;
        engine.track(changes);
    }

    /// Writes the owned set to its record when it changed.
    async fn persist_owned(&mut self) {
        if !self.owned_dirty {
            return;
        }
        match self.record.save(&self.owned).await {
            Ok(()) => self.owned_dirty = false,
            Err(e) => tracing::error!(error = %e, "cannot record the owned IPVS services"),
        }
    }

    /// After an event-driven pass the periodic drift check keeps its schedule (frequent changes
    /// must not postpone it forever); a failed pass retries after its back-off.
    fn next_after(&self, next: Instant, wait: Duration) -> Instant {
        if self.status.state == DataplaneState::Running {
            next
        } else {
            Instant::now() + wait
        }
    }

    /// Starts, restarts and stops health checkers for the current snapshot; forgets the health of
    /// real servers that are no longer checked.
    fn sync_checkers(&mut self) {
        let snap = self.snapshots.borrow().clone();
        for id in self.checkers.sync(&snap.config) {
            self.own_down.remove(&id);
            self.health.weights.remove(&id);
            self.refresh_down(id);
        }
        // `alpha`: these start as down, without a verdict to say so.
        for (vs, rs) in self.checkers.take_started_down() {
            self.own_down.insert(rs);
            self.refresh_down(rs);
            self.health_dirty.insert(vs);
        }
    }

    /// Sets `health.down` for `rs` from the verdict in use: the first peer view that has one,
    /// else this director's own. Returns whether it changed.
    fn refresh_down(&mut self, rs: Id) -> bool {
        let down = self
            .peer_views
            .values()
            .find_map(|v| v.get(&rs).map(|&(_, d)| d))
            .unwrap_or_else(|| self.own_down.contains(&rs));
        if down {
            self.health.down.insert(rs)
        } else {
            self.health.down.remove(&rs)
        }
    }

    /// Takes a peer's verdicts (or stops using them); true if the table must be recomputed.
    fn on_peer_verdicts(&mut self, v: PeerVerdicts) -> bool {
        let old = self.peer_views.remove(&v.peer).unwrap_or_default();
        let new: HashMap<Id, (Id, bool)> = v
            .verdicts
            .unwrap_or_default()
            .into_iter()
            .map(|(vs, rs, down)| (rs, (vs, down)))
            .collect();
        let using = !new.is_empty();
        let touched: Vec<(Id, Id)> = old
            .iter()
            .chain(new.iter())
            .map(|(&rs, &(vs, _))| (vs, rs))
            .collect();
        if using {
            self.peer_views.insert(v.peer.clone(), new);
        }
        let mut changed = false;
        for (vs, rs) in touched {
            if self.refresh_down(rs) {
                self.health_dirty.insert(vs);
                changed = true;
            }
        }
        if changed {
            tracing::info!(
                peer = %v.peer,
                using,
                down = self.health.down.len(),
                "health: the table follows {}",
                if using { "the master peer's verdicts" } else { "this director's own verdicts" }
            );
        }
        changed
    }

    /// Judges `vs`'s quorum with its hysteresis (keepalived's check/ipwrapper.c); on a change
    /// publishes it and starts `quorum_up` or `quorum_down`.
    fn judge_quorum(&mut self, vs: &VirtualServer) {
        let alive = alive_weight(vs, &self.health);
        let was = self.health.quorum_up.get(&vs.id).copied();
        let up = quorum_next(was, alive, vs.quorum.unwrap_or(1), vs.hysteresis);
        self.health.quorum_up.insert(vs.id, up);
        // The first judgement (start-up, a new virtual server) is a state, not a change: no
        // command runs, as keepalived runs none when it starts.
        if was.is_none_or(|w| w == up) {
            return;
        }
        tracing::info!(
            virtual_server_id = vs.id,
            up,
            alive_weight = alive,
            "quorum changed"
        );
        self.events.publish(EventKind::QuorumChanged {
            virtual_server_id: vs.id,
            up,
            alive_weight: alive,
        });
        let kind = if up {
            QuorumCommandKind::QuorumUp
        } else {
            QuorumCommandKind::QuorumDown
        };
        // Detached: the task ends within the command's timeout and reports by an event.
        let _ = super::quorum::spawn(vs, kind, QuorumCause::Health, &self.events);
    }

    /// A virtual server is gone: forget its quorum, and with `omega` run `quorum_down` if the
    /// quorum was up (keepalived does on removal).
    fn quorum_removed(&mut self, vs: &VirtualServer) {
        if self.health.quorum_up.remove(&vs.id) == Some(true) && vs.omega {
            let _ = super::quorum::spawn(
                vs,
                QuorumCommandKind::QuorumDown,
                QuorumCause::Removed,
                &self.events,
            );
        }
    }

    /// `omega` at shutdown: `quorum_down` of each virtual server whose quorum is up.
    fn omega_on_shutdown(&mut self) -> Vec<JoinHandle<()>> {
        let snap = self.snapshots.borrow().clone();
        let mut tasks = Vec::new();
        for vs in &snap.config.virtual_servers {
            if !vs.omega {
                continue;
            }
            // A virtual server committed just before the stop may not have been judged yet.
            let up = match self.health.quorum_up.get(&vs.id) {
                Some(up) => *up,
                None => quorum_next(
                    None,
                    alive_weight(vs, &self.health),
                    vs.quorum.unwrap_or(1),
                    vs.hysteresis,
                ),
            };
            if up {
                // Down now: a second request runs nothing again.
                self.health.quorum_up.insert(vs.id, false);
                tasks.extend(super::quorum::spawn(
                    vs,
                    QuorumCommandKind::QuorumDown,
                    QuorumCause::Shutdown,
                    &self.events,
                ));
            }
        }
        tasks
    }

    fn on_verdict(&mut self, v: Verdict) {
        self.health_dirty.insert(v.virtual_server_id);
        match v.state {
            HealthState::Down => self.own_down.insert(v.real_server_id),
            HealthState::Up => self.own_down.remove(&v.real_server_id),
        };
        self.refresh_down(v.real_server_id);
        match v.weight {
            Some(w) => self.health.weights.insert(v.real_server_id, w),
            None => self.health.weights.remove(&v.real_server_id),
        };
        match &v.error {
            Some(error) => {
                tracing::info!(real_server = %v.target, state = %v.state, %error, "health changed")
            }
            None => tracing::info!(real_server = %v.target, state = %v.state, "health changed"),
        }
        self.events.publish(EventKind::HealthChanged {
            virtual_server_id: v.virtual_server_id,
            real_server_id: v.real_server_id,
            target: v.target.to_string(),
            state: v.state,
            error: v.error,
        });
    }

    /// Runs a kernel call. A short one (`inline`: a handful of operations, one netlink round
    /// trip of microseconds) runs on the actor's own task: handing it to a blocking thread and
    /// back would cost a change two thread wake-ups, more than the call itself. Anything larger
    /// (a dump, a cold load, a resync) runs on a blocking thread, which hands the kernel back.
    async fn with_kernel<T: Send + 'static>(
        &mut self,
        inline: bool,
        f: impl FnOnce(&mut dyn Kernel) -> Result<T, KernelError> + Send + 'static,
    ) -> Result<T, KernelError> {
        let Some(mut k) = self.kernel.take() else {
            return Err(KernelError::Io("kernel handle lost".into()));
        };
        if inline {
            let r = f(k.as_mut());
            self.kernel = Some(k);
            return r;
        }
        match tokio::task::spawn_blocking(move || {
            let r = f(k.as_mut());
            (k, r)
        })
        .await
        {
            Ok((k, r)) => {
                self.kernel = Some(k);
                r
            }
            // The closure panicked; the kernel object went with it.
            Err(e) => Err(KernelError::Io(format!("kernel call failed: {e}"))),
        }
    }

    async fn dump(&mut self) -> Result<IpvsTable, KernelError> {
        self.with_kernel(false, |k| k.ipvs_dump()).await
    }

    /// Brings `desired` up to `cfg` by recomputing only what changed since the last pass;
    /// returns the services that may differ.
    fn update_desired(
        &mut self,
        cfg: &crate::model::Config,
        desired: &mut IpvsTable,
    ) -> BTreeSet<ServiceKey> {
        let mut keys = BTreeSet::new();
        let VsChanges { changed, removed } = cfg.changes_since(
            &self.desired_from,
            |(a, _)| a,
            |id| self.health_dirty.contains(&id),
        );
        // Old services out first (a key may move from one virtual server to another).
        for id in removed {
            let Some((vs, key)) = self.desired_from.remove(&id) else {
                continue;
            };
            self.quorum_removed(&vs);
            if let Some(k) = key {
                desired.services.remove(&k);
                keys.insert(k);
            }
        }
        for vs in &changed {
            if let Some((_, Some(k))) = self.desired_from.get(&vs.id) {
                desired.services.remove(k);
                keys.insert(*k);
            }
        }
        for vs in changed {
            self.judge_quorum(&vs);
            let new = desired_service(&vs, &self.health);
            let key = new.as_ref().map(|(k, _)| *k);
            if let Some((k, svc)) = new {
                desired.services.insert(k, svc);
                keys.insert(k);
            }
            self.desired_from.insert(vs.id, (vs, key));
        }
        keys
    }

    /// One convergence pass, then the news for VRRP's tracked virtual servers. Returns how
    /// long until the next periodic pass.
    async fn pass(&mut self, reason: Reason) -> Duration {
        let wait = self.converge(reason).await;
        self.sync_vrrp_tracking();
        wait
    }

    /// One convergence pass. Returns how long until the next periodic pass.
    async fn converge(&mut self, reason: Reason) -> Duration {
        let snap = self.snapshots.borrow_and_update().clone();
        // A change of configuration or health is diffed against lbd's picture of the kernel as of
        // its last dump plus what it applied since (no dump of a large table per change), and
        // only for the services it touched; the periodic pass, an explicit resync and any
        // failure dump the kernel for real and compare everything.
        let incremental = matches!(reason, Reason::Config | Reason::Health)
            && self.kernel_cache.is_some()
            && self.desired.is_some();
        let (desired, keys) = match (incremental, self.desired.take()) {
            (true, Some(mut d)) => {
                let keys = self.update_desired(&snap.config, &mut d);
                (d, Some(keys))
            }
            _ => {
                let live: IdSet = snap.config.virtual_servers.iter().map(|v| v.id).collect();
                let gone: Vec<Arc<VirtualServer>> = self
                    .desired_from
                    .iter()
                    .filter(|(id, _)| !live.contains(id))
                    .map(|(_, (vs, _))| vs.clone())
                    .collect();
                for vs in gone {
                    self.quorum_removed(&vs);
                }
                for vs in &snap.config.virtual_servers {
                    self.judge_quorum(vs);
                }
                self.desired_from = snap
                    .config
                    .virtual_servers
                    .iter()
                    .map(|vs| {
                        let key = super::desired::service_key(vs);
                        (vs.id, (vs.clone(), key))
                    })
                    .collect();
                (desired_table(&snap.config, &self.health), None)
            }
        };
        self.health_dirty.clear();
        let cached = if incremental {
            self.kernel_cache.take()
        } else {
            None
        };
        let mut kernel = match cached {
            Some(t) => t,
            None => match self.dump().await {
                Ok(t) => t,
                Err(e) => return self.failed(e),
            },
        };
        // Ownership: what lbd wanted before (it may have to delete it) and wants now; written
        // down before the kernel is touched, so a crash mid-apply forgets nothing.
        for k in desired_keys(&desired, keys.as_ref()) {
            self.owned_dirty |= self.owned.insert(k);
        }
        self.persist_owned().await;
        let ops = match &keys {
            Some(keys) => reconcile_keys(&desired, &kernel, &self.owned, keys),
            None => reconcile(&desired, &kernel, &self.owned),
        };
        if !ops.is_empty() {
            let n = ops.len();
            let r = self
                .with_kernel(n <= INLINE_OPS, move |k| {
                    k.ipvs_apply(&ops).map(|rep| (rep, ops))
                })
                .await;
            match r {
                Ok((report, ops)) if report.refused.is_empty() => {
                    for op in &ops {
                        // Mirrors what the kernel just accepted.
                        let _ = kernel.apply(op);
                    }
                    self.status.ops_applied += report.applied as u64;
                    if reason == Reason::Periodic {
                        self.status.drift_repairs += report.applied as u64;
                        tracing::warn!(ops = n, "the kernel's IPVS table drifted; repaired");
                    }
                    self.events.publish(EventKind::DataplaneApplied {
                        revision: snap.revision,
                        ops: report.applied,
                        drift: reason == Reason::Periodic,
                    });
                }
                Ok((report, _)) => {
                    self.status.ops_applied += report.applied as u64;
                    let msg = format!(
                        "the kernel refused {} of {n} operations; first: {}",
                        report.refused.len(),
                        report.refused[0]
                    );
                    return self.failed(KernelError::Refused {
                        op: "apply".into(),
                        message: msg,
                    });
                }
                Err(e) => return self.failed(e),
            }
        }
        if let Err(e) = self.converge_timeouts(&snap, &mut kernel, reason).await {
            return self.failed(e);
        }
        if reason != Reason::Health {
            self.converge_sync(&snap, reason).await;
        }
        self.kernel_cache = Some(kernel);
        match &keys {
            Some(keys) => {
                for k in keys {
                    if !desired.services.contains_key(k) {
                        self.owned_dirty |= self.owned.remove(k);
                    }
                }
            }
            None => {
                let now: BTreeSet<ServiceKey> = desired.services.keys().copied().collect();
                if now != self.owned {
                    self.owned = now;
                    self.owned_dirty = true;
                }
            }
        }
        self.persist_owned().await;
        self.backoff = self.cfg.retry_min;
        let was = self.status.state;
        self.status.state = DataplaneState::Running;
        self.status.reason = None;
        self.status.applied_revision = Some(snap.revision);
        self.status.services = desired.services.len();
        self.status.destinations = desired.dest_count();
        self.desired = Some(desired);
        self.board.set_dataplane(self.status.clone());
        if was != DataplaneState::Running {
            tracing::info!(revision = snap.revision, "data plane running");
        }
        self.cfg.resync_interval
    }

    /// Sets the IPVS timeouts the configuration asks for when the kernel's (as `kernel` has
    /// them: dumped with IPVS_CMD_GET_CONFIG, or as lbd last set them) differ; a timeout of 0,
    /// and timeouts the configuration does not have, are left as the kernel has them.
    async fn converge_timeouts(
        &mut self,
        snap: &Snapshot,
        kernel: &mut IpvsTable,
        reason: Reason,
    ) -> Result<(), KernelError> {
        let Some(want) = snap.config.ipvs_timeouts else {
            return Ok(());
        };
        if kernel.timeouts.is_some_and(|k| want.satisfied_by(&k)) {
            return Ok(());
        }
        let t = want.kernel();
        self.with_kernel(true, move |k| k.ipvs_set_timeouts(&t))
            .await?;
        // Mirrors what the kernel just did (ip_vs_set_timeout leaves a 0 as it was).
        let mut now = kernel.timeouts.unwrap_or_default();
        for (to, v) in [
            (&mut now.tcp_secs, t.tcp_secs),
            (&mut now.tcp_fin_secs, t.tcp_fin_secs),
            (&mut now.udp_secs, t.udp_secs),
        ] {
            if v != 0 {
                *to = v;
            }
        }
        kernel.timeouts = Some(now);
        self.status.ops_applied += 1;
        let drift = reason == Reason::Periodic;
        if drift {
            self.status.drift_repairs += 1;
            tracing::warn!(timeouts = ?t, "the kernel's IPVS timeouts drifted; repaired");
        } else {
            tracing::info!(timeouts = ?t, "IPVS timeouts set");
        }
        self.events.publish(EventKind::DataplaneApplied {
            revision: snap.revision,
            ops: 1,
            drift,
        });
        Ok(())
    }

    /// Runs the connection-sync daemons the configuration asks for (see `super::connsync`) and
    /// records what runs in the status. A failure here is the daemons' own (their status says
    /// it, the next pass retries) and does not hold back the IPVS table.
    async fn converge_sync(&mut self, snap: &Snapshot, reason: Reason) {
        let want = snap.config.connection_sync.clone();
        if reason == Reason::Config && want == self.sync_prev {
            // The setting did not change: nothing to do (repairing drift is the periodic
            // pass's work). Never configured: the periodic pass reports what runs.
            if want.is_none() {
                self.status.connection_sync.managed = false;
            }
            return;
        }
        let have = match self.with_kernel(true, |k| k.sync_daemons()).await {
            Ok(h) => h,
            Err(e) => {
                self.status.connection_sync = ConnectionSyncStatus {
                    managed: want.is_some(),
                    daemons: super::connsync::unavailable(&e.to_string()),
                    connections: None,
                    failback: self.failback_status(),
                };
                return;
            }
        };
        let steps = super::connsync::plan(
            want.as_ref(),
            self.sync_prev.as_ref(),
            &self.sync_started,
            &have,
        );
        let mut now = have;
        let mut refused = BTreeMap::new();
        let mut applied = 0usize;
        for step in steps {
            match step {
                Step::Stop(role) => {
                    match self
                        .with_kernel(true, move |k| k.sync_daemon_stop(role))
                        .await
                    {
                        Ok(_) => {
                            applied += 1;
                            now.retain(|d| d.role != role);
                            self.sync_started.remove(&role);
                            tracing::info!(%role, "connection sync daemon stopped");
                        }
                        Err(e) => {
                            refused.insert(role, e.to_string());
                        }
                    }
                }
                Step::Start(d) => {
                    let role = d.role;
                    let start = d.clone();
                    match self
                        .with_kernel(true, move |k| k.sync_daemon_start(&start))
                        .await
                    {
                        Ok(()) => {
                            applied += 1;
                            if reason == Reason::Periodic {
                                self.status.drift_repairs += 1;
                                tracing::warn!(%role, interface = %d.interface, sync_id = d.sync_id,
                                    "the connection sync daemon was not running as configured; restarted");
                            } else {
                                tracing::info!(%role, interface = %d.interface, sync_id = d.sync_id,
                                    "connection sync daemon started");
                            }
                            now.retain(|h| h.role != role);
                            now.push(d.clone());
                            self.sync_started.insert(role, d);
                        }
                        Err(e) => {
                            tracing::warn!(%role, error = %e, "connection sync daemon not started");
                            refused.insert(role, e.to_string());
                        }
                    }
                }
            }
        }
        if applied > 0 {
            self.status.ops_applied += applied as u64;
            self.events.publish(EventKind::DataplaneApplied {
                revision: snap.revision,
                ops: applied,
                drift: reason == Reason::Periodic,
            });
            // What the kernel chose for what lbd left out (max length, defaults): read back.
            if let Ok(h) = self.with_kernel(true, |k| k.sync_daemons()).await {
                now = h;
            }
        }
        if want.is_none() {
            self.sync_started.clear();
        }
        self.status.connection_sync = ConnectionSyncStatus {
            managed: want.is_some(),
            daemons: super::connsync::status(want.as_ref(), &now, &refused),
            connections: None,
            failback: self.failback_status(),
        };
        self.sync_prev = want;
    }

    fn failback_status(&self) -> Option<crate::control::status::FailbackStatus> {
        self.failback
            .as_ref()
            .map(|g| g.status(Instant::now().into_std()))
    }

    /// One look for the failback gate while it is closed: whether the backup sync daemon runs
    /// (one small netlink request), and how many connections came by sync
    /// (/proc/net/ip_vs_conn_sync, read line by line on a blocking thread: the table can be
    /// large). Opens the VRRP engine's gate when the rule says so.
    async fn look_failback(&mut self) {
        let running = match self.with_kernel(true, |k| k.sync_daemons()).await {
            Ok(h) => h.iter().any(|d| d.role == SyncRole::Backup),
            Err(_) => false,
        };
        let synced = tokio::task::spawn_blocking(crate::ipvs::conn::read_origins)
            .await
            .ok()
            .and_then(Result::ok)
            .map(|c| c.synced);
        let now = Instant::now();
        let Some(gate) = self.failback.as_mut() else {
            self.failback_next = None;
            return;
        };
        match gate.observe(now.into_std(), running, synced) {
            Some(o) => {
                self.failback_next = None;
                if let Some(e) = &self.vrrp {
                    e.open_failback();
                }
                let waited_ms = u64::try_from(o.waited.as_millis()).unwrap_or(u64::MAX);
                tracing::info!(reason = ?o.reason, waited_ms, synced = o.synced,
                    "connection sync: failback gate open; VRRP may preempt");
                self.events.publish(EventKind::FailbackGateOpened {
                    reason: o.reason,
                    waited_ms,
                    synced: o.synced,
                });
            }
            None => self.failback_next = Some(now + super::failback::FAILBACK_LOOK_EVERY),
        }
        self.status.connection_sync.failback = self.failback_status();
        self.board.set_dataplane(self.status.clone());
    }

    fn failed(&mut self, e: KernelError) -> Duration {
        // Whatever happened, the next pass reads the kernel afresh and compares everything.
        self.kernel_cache = None;
        self.desired = None;
        let msg = e.to_string();
        self.status.errors += 1;
        let state = DataplaneState::Degraded;
        if self.status.state != state || self.status.last_error.as_deref() != Some(&msg) {
            // Logged once per distinct failure, not once per retry.
            tracing::warn!(error = %msg, retry_in = ?self.backoff, "data plane degraded");
            self.events.publish(EventKind::DataplaneDegraded {
                reason: msg.clone(),
            });
        }
        // The pass stopped before the sync daemons were looked at. A setting they were never
        // seen for (or one added or removed meanwhile) says so rather than what it said before.
        let configured = self.snapshots.borrow().config.connection_sync.is_some();
        let cs = &self.status.connection_sync;
        if cs.managed != configured || (configured && cs.daemons.is_empty()) {
            self.status.connection_sync = ConnectionSyncStatus {
                managed: configured,
                daemons: if configured {
                    super::connsync::unavailable(&msg)
                } else {
                    Vec::new()
                },
                connections: None,
                failback: self.failback_status(),
            };
        }
        self.status.state = state;
        self.status.reason = Some(msg.clone());
        self.status.last_error = Some(msg);
        self.board.set_dataplane(self.status.clone());
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.cfg.retry_max);
        wait
    }
}

/// The services of `desired` among `keys` (all of them when `keys` is `None`).
/// A tracked virtual server fails while none of its real servers is healthy, or, with a
/// `quorum`, while its quorum is lost.
fn vs_failing(vs: &VirtualServer, health: &Health) -> bool {
    match (vs.quorum, health.quorum_up.get(&vs.id)) {
        (Some(_), Some(up)) => !up,
        _ => vs
            .real_servers
            .iter()
            .all(|rs| health.down.contains(&rs.id)),
    }
}

fn desired_keys(desired: &IpvsTable, keys: Option<&BTreeSet<ServiceKey>>) -> Vec<ServiceKey> {
    match keys {
        Some(keys) => keys
            .iter()
            .filter(|k| desired.services.contains_key(k))
            .copied()
            .collect(),
        None => desired.services.keys().copied().collect(),
    }
}
