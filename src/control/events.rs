//! The one status/event stream: what changed, for the API, gRPC, logs and the dashboard.
//!
//! Producers (the service on commit; the data plane for VRRP transitions and health changes)
//! publish here; readers either subscribe (live, [`EventBus::watch`]) or read the recent
//! history. The history is also kept in the store (a bounded table), written by one task
//! ([`persist`]) in batches, so a restart keeps it and sequence numbers go on from the last one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch, Notify};
use utoipa::ToSchema;

/// How many past events the history keeps (in memory and in the store).
pub const HISTORY: usize = 10_000;
/// How far a live reader may fall behind before it is dropped as lagged.
pub const LIVE_BUFFER: usize = 1024;
/// How long the persister gathers events before one write: a burst of events is one
/// transaction (one fsync), not one per event.
const PERSIST_BATCH_WINDOW: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Increases by one per event; goes on from the stored history after a restart.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A configuration revision was committed.
    ConfigCommitted { revision: u64, changes: usize },
    /// The data plane changed the kernel's IPVS table (`drift`: to undo changes made behind
    /// lbd's back).
    DataplaneApplied {
        revision: u64,
        ops: usize,
        drift: bool,
    },
    /// The data plane cannot program the kernel.
    DataplaneDegraded { reason: String },
    /// A VRRP group on this director changed state.
    VrrpStateChanged {
        group: String,
        vrid: u8,
        from: VrrpState,
        to: VrrpState,
        reason: VrrpReason,
        /// The reason's particulars: the other master and its priority, or the interface.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A VRRP group on this director took an edit of its configuration: in place (its state
    /// unchanged), or by a restart (priority 0, then a new start) when the VRID, interface,
    /// version or address family changed.
    VrrpReconfigured {
        group: String,
        vrid: u8,
        in_place: bool,
        /// What changed, in words: "priority 100→50", "virtual addresses +192.0.2.1/32"; a
        /// restart's reasons come first.
        changes: Vec<String>,
    },
    /// A VRRP group's effective priority moved: a tracked object with a weight (interface,
    /// virtual server, script) changed.
    VrrpPriorityChanged {
        group: String,
        vrid: u8,
        from: u8,
        to: u8,
        /// The tracked object that changed: "interface eth1", "script chk".
        cause: String,
    },
    /// A VRRP group's track script changed its verdict (after `rise`/`fall`), or one of its
    /// notify commands ended.
    VrrpCommand {
        group: String,
        /// "script NAME", or "notify_master", "notify_backup", "notify_fault", "notify_stop",
        /// "notify".
        command: String,
        /// Exit 0.
        ok: bool,
        /// The exit code, "a signal", or why it did not run or end (timeout: killed).
        result: String,
        /// The first 512 bytes of its stdout and stderr.
        #[serde(skip_serializing_if = "String::is_empty")]
        output: String,
    },
    /// A real server's health check changed its verdict.
    HealthChanged {
        virtual_server_id: i64,
        real_server_id: i64,
        /// address:port that was checked
        target: String,
        state: crate::dataplane::health::state::HealthState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A virtual server gained or lost its quorum (keepalived's `quorum` with `hysteresis`).
    QuorumChanged {
        virtual_server_id: i64,
        up: bool,
        /// The total weight of its healthy real servers.
        alive_weight: u64,
    },
    /// A `quorum_up` / `quorum_down` command ended.
    QuorumCommand {
        virtual_server_id: i64,
        command: crate::dataplane::quorum::QuorumCommandKind,
        /// Why it ran.
        cause: crate::dataplane::quorum::QuorumCause,
        /// Exit 0.
        ok: bool,
        /// The exit code, "a signal", or why it did not run or end (timeout: killed).
        result: String,
        /// The first 512 bytes of its stdout and stderr.
        #[serde(skip_serializing_if = "String::is_empty")]
        output: String,
    },
    /// Peer sync: a link came up or went down, a peer was refused, or a peer's configuration
    /// was taken, refused, or lost or won a split edit (see `control::replication`).
    PeerSync {
        /// The peer's address as configured (`--peer`).
        peer: String,
        kind: PeerSyncKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A VRRP sync group (keepalived `vrrp_sync_group`) changed its whole state on this
    /// director: Fault when a member is, Master when every member is, Backup otherwise. Its
    /// notify commands run with it.
    VrrpSyncGroupChanged { sync_group: String, to: VrrpState },
    /// Connection sync's failback gate opened on this director: from now on its VRRP groups
    /// preempt a lower-priority master as configured.
    FailbackGateOpened {
        reason: crate::control::status::FailbackReason,
        /// How long it waited, from when VRRP started.
        waited_ms: u64,
        /// Connections that had come by sync when it opened.
        synced: u64,
    },
}

/// What happened on a peer link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerSyncKind {
    Connected,
    Disconnected,
    /// Authentication failed, one way or the other.
    Refused,
    /// This director took the peer's configuration (a fast-forward).
    Took,
    /// The peer's configuration does not parse or validate here.
    Rejected,
    /// A split edit this director won; the peer keeps its side as a conflict record.
    WonSplit,
    /// A split edit this director lost: it took the peer's configuration and kept its own as a
    /// conflict record.
    LostSplit,
}

/// RFC 5798 section 6.4 states, plus Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VrrpState {
    Initialize,
    Backup,
    Master,
    Fault,
}

/// Why a VRRP group changed state (RFC 6527's `vrrpv3StatisticsNewMasterReason`, and more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VrrpReason {
    /// Initialize -> Backup.
    Startup,
    /// -> Master at start-up: this node owns the addresses (priority 255).
    AddressOwner,
    /// No advert within the master-down interval (RFC 5798 section 6.4.2).
    MasterDown,
    /// The master sent priority 0.
    MasterStopped,
    /// This node preempted a lower-priority master.
    Preempted,
    /// Initial state MASTER.
    InitialStateMaster,
    /// An advert of higher priority (RFC 5798 section 6.4.3).
    HigherPriorityMaster,
    /// A tracked interface went down.
    InterfaceDown,
    /// The tracked interfaces are up again.
    InterfacesUp,
    Shutdown,
    /// A tracked object of weight 0 (virtual server, script) failed.
    TrackFailed,
    /// Another member of the group's sync group changed state (keepalived
    /// `vrrp_sync_group`); the detail names the sync group and the member.
    SyncGroup,
    /// A virtual address, route or rule this master added (not `no_track`) was deleted from
    /// the kernel by someone else; the detail says which. As keepalived, the master left for
    /// Backup with a priority-0 advert and comes back after Skew_Time, putting it back.
    ObjectDeleted,
}

/// What a live reader gets: events, or the news that it fell too far behind.
#[derive(Debug, Clone, PartialEq)]
pub enum Watched {
    Event(Event),
    /// The reader fell more than [`LIVE_BUFFER`] events behind and was dropped; it may resume
    /// from `last_seq` (the last event it was given) while the history still has the rest.
    Lagged {
        missed: u64,
        last_seq: u64,
    },
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Event>,
    /// The last sequence number given out, and the history (oldest first).
    history: Mutex<(u64, VecDeque<Event>)>,
    /// Wakes the persister.
    published: Notify,
    /// Set at shutdown: live readers end.
    closed: watch::Sender<bool>,
    /// The last seq the store had at start: the persister writes what comes after it.
    stored_seq: u64,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::with_history(Vec::new(), 0)
    }
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl EventBus {
    /// A bus that goes on from a stored history (oldest first) and the last sequence number
    /// given out before.
    pub fn with_history(stored: Vec<Event>, last_seq: u64) -> Self {
        let last = stored.iter().map(|e| e.seq).fold(last_seq, u64::max);
        let mut history: VecDeque<Event> = stored.into();
        while history.len() > HISTORY {
            history.pop_front();
        }
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        EventBus {
            inner: Arc::new(Inner {
                tx,
                history: Mutex::new((last, history)),
                published: Notify::new(),
                closed: watch::Sender::new(false),
                stored_seq: last,
            }),
        }
    }

    pub fn publish(&self, kind: EventKind) {
        // A poisoned lock only means a panic elsewhere mid-push; the history is still usable.
        let mut h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        h.0 += 1;
        let ev = Event {
            seq: h.0,
            time_unix_ms: now_unix_ms(),
            kind,
        };
        if h.1.len() == HISTORY {
            h.1.pop_front();
        }
        h.1.push_back(ev.clone());
        // Sent under the lock, so that `watch` (which subscribes under it) sees every event
        // exactly once: either in the history it copies or on the channel. No subscribers is
        // fine.
        let _ = self.inner.tx.send(ev);
        drop(h);
        self.inner.published.notify_one();
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.tx.subscribe()
    }

    /// Events with `seq > since`, oldest first (at most the last [`HISTORY`]).
    pub fn recent(&self, since: u64) -> Vec<Event> {
        let h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        after(&h.1, since)
    }

    /// The last sequence number given out.
    pub fn last_seq(&self) -> u64 {
        self.inner
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// Ends every live reader (at shutdown: a stream never ends by itself, and the servers
    /// wait for their requests to finish).
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// The events after `since` from the history, then live ones as they are published. The
    /// stream ends at [`EventBus::close`], or after one [`Watched::Lagged`] when the reader does
    /// not keep up (a broadcast channel: a slow reader never holds up a publisher).
    pub fn watch(&self, since: u64) -> impl Stream<Item = Watched> + Send + 'static {
        let (rx, replay, since) = {
            let h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
            // A `since` beyond the last event is from numbers this history never kept (given out
            // just before a crash, unstored): such a reader gets every new event, not only those
            // numbered past its own.
            let since = since.min(h.0);
            (self.inner.tx.subscribe(), after(&h.1, since), since)
        };
        let state = WatchState {
            replay: replay.into(),
            rx,
            closed: self.inner.closed.subscribe(),
            last: since,
            done: false,
        };
        futures::stream::unfold(state, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        })
    }
}

fn after(h: &VecDeque<Event>, since: u64) -> Vec<Event> {
    // The history is in seq order: skip to the first newer event without a scan.
    let start = h.partition_point(|e| e.seq <= since);
    h.range(start..).cloned().collect()
}

struct WatchState {
    replay: VecDeque<Event>,
    rx: broadcast::Receiver<Event>,
    closed: watch::Receiver<bool>,
    /// The last seq given to the reader.
    last: u64,
    done: bool,
}

impl WatchState {
    async fn next(&mut self) -> Option<Watched> {
        if self.done || *self.closed.borrow() {
            return None;
        }
        if let Some(e) = self.replay.pop_front() {
            self.last = e.seq;
            return Some(Watched::Event(e));
        }
        loop {
            let r = tokio::select! {
                r = self.rx.recv() => r,
                _ = self.closed.wait_for(|c| *c) => return None,
            };
            match r {
                Ok(e) if e.seq <= self.last => continue,
                Ok(e) => {
                    self.last = e.seq;
                    return Some(Watched::Event(e));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.done = true;
                    return Some(Watched::Lagged {
                        missed,
                        last_seq: self.last,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Writes the bus's events to the store until `stop`, then writes what is left. The only writer
/// of the events table: it wakes on publish, waits [`PERSIST_BATCH_WINDOW`] for more, and writes
/// the batch in one transaction, off the commit path and the data plane's.
pub async fn persist(
    bus: EventBus,
    store: crate::control::store::Store,
    mut stop: watch::Receiver<bool>,
) {
    // From what the store had, not from `last_seq`: events published before this task first
    // runs are not stored yet.
    let mut written = bus.inner.stored_seq;
    loop {
        let stopping = tokio::select! {
            _ = bus.inner.published.notified() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if !stopping {
            tokio::select! {
                _ = tokio::time::sleep(PERSIST_BATCH_WINDOW) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        let batch = bus.recent(written);
        if let Some(last) = batch.last().map(|e| e.seq) {
            match store.append_events(&batch, HISTORY).await {
                Ok(()) => written = last,
                // Kept in memory; the next batch tries again with these in it.
                Err(e) => tracing::warn!(error = %e, events = batch.len(), "cannot store events"),
            }
        }
        if stopping || *stop.borrow() {
            return;
        }
    }
}

impl From<crate::dataplane::vrrp::instance::State> for VrrpState {
    fn from(s: crate::dataplane::vrrp::instance::State) -> Self {
        use crate::dataplane::vrrp::instance::State;
        match s {
            State::Initialize => VrrpState::Initialize,
            State::Backup => VrrpState::Backup,
            State::Master => VrrpState::Master,
            State::Fault => VrrpState::Fault,
        }
    }
}

impl VrrpReason {
    /// The reason in words, with its particulars (`detail` from [`VrrpReason::of`]): what the
    /// log and `lbd ctl status` say.
    pub fn describe(self, detail: Option<&str>) -> String {
        let d = detail.unwrap_or("?");
        match self {
            VrrpReason::Startup => "startup".into(),
            VrrpReason::AddressOwner => "address owner (priority 255)".into(),
            VrrpReason::MasterDown => "no advert within the master-down interval".into(),
            VrrpReason::MasterStopped => "the master sent priority 0".into(),
            VrrpReason::Preempted => "preempted a lower-priority master".into(),
            VrrpReason::InitialStateMaster => "initial state MASTER".into(),
            VrrpReason::HigherPriorityMaster => format!("higher-priority master {d}"),
            VrrpReason::InterfaceDown => format!("interface {d} down"),
            VrrpReason::InterfacesUp => "interfaces up".into(),
            VrrpReason::Shutdown => "shutdown".into(),
            VrrpReason::TrackFailed => format!("tracked {d} failed"),
            VrrpReason::SyncGroup => format!("sync group {d}"),
            VrrpReason::ObjectDeleted => format!("{d} deleted from the kernel"),
        }
    }

    /// The reason and its particulars.
    pub fn of(r: &crate::dataplane::vrrp::instance::Reason) -> (VrrpReason, Option<String>) {
        use crate::dataplane::vrrp::instance::Reason;
        match r {
            Reason::Startup => (VrrpReason::Startup, None),
            Reason::AddressOwner => (VrrpReason::AddressOwner, None),
            Reason::MasterDown => (VrrpReason::MasterDown, None),
            Reason::MasterStopped => (VrrpReason::MasterStopped, None),
            Reason::Preempted => (VrrpReason::Preempted, None),
            Reason::InitialStateMaster => (VrrpReason::InitialStateMaster, None),
            Reason::HigherPriorityMaster { src, priority } => (
                VrrpReason::HigherPriorityMaster,
                Some(format!("{src} (priority {priority})")),
            ),
            Reason::InterfaceDown(i) => (VrrpReason::InterfaceDown, Some(i.clone())),
            Reason::InterfacesUp => (VrrpReason::InterfacesUp, None),
            Reason::Shutdown => (VrrpReason::Shutdown, None),
            Reason::TrackFailed(k) => (VrrpReason::TrackFailed, Some(k.clone())),
            Reason::SyncGroup(s) => (VrrpReason::SyncGroup, Some(s.clone())),
            Reason::ObjectDeleted(o) => (VrrpReason::ObjectDeleted, Some(o.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn committed(revision: u64) -> EventKind {
        EventKind::ConfigCommitted {
            revision,
            changes: 1,
        }
    }

    #[tokio::test]
    async fn watch_replays_then_goes_live_without_gaps_or_repeats() {
        let bus = EventBus::default();
        for r in 1..=3 {
            bus.publish(committed(r));
        }
        let mut w = Box::pin(bus.watch(1));
        bus.publish(committed(4));
        let mut seqs = Vec::new();
        for _ in 0..3 {
            match w.next().await {
                Some(Watched::Event(e)) => seqs.push(e.seq),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seqs, vec![2, 3, 4]);
        bus.close();
        assert_eq!(w.next().await, None);
    }

    #[tokio::test]
    async fn a_since_beyond_the_last_event_still_gets_the_next_one() {
        let bus = EventBus::default();
        bus.publish(committed(1));
        let mut w = Box::pin(bus.watch(50));
        bus.publish(committed(2));
        match w.next().await {
            Some(Watched::Event(e)) => assert_eq!(e.seq, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_gets_lagged_once_then_the_end() {
        let bus = EventBus::default();
        let mut w = Box::pin(bus.watch(0));
        for r in 0..(LIVE_BUFFER as u64 + 10) {
            bus.publish(committed(r));
        }
        match w.next().await {
            Some(Watched::Lagged { missed, last_seq }) => {
                assert_eq!(missed, 10);
                assert_eq!(last_seq, 0);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(w.next().await, None);
    }

    #[test]
    fn vrrp_reasons_keep_their_particulars_and_events_read_back_as_written() {
        use crate::dataplane::vrrp::instance::Reason;
        let src: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            VrrpReason::of(&Reason::HigherPriorityMaster { src, priority: 200 }),
            (
                VrrpReason::HigherPriorityMaster,
                Some("192.0.2.7 (priority 200)".into())
            )
        );
        assert_eq!(
            VrrpReason::of(&Reason::InterfaceDown("eth1".into())),
            (VrrpReason::InterfaceDown, Some("eth1".into()))
        );
        let e = Event {
            seq: 9,
            time_unix_ms: 1,
            kind: EventKind::VrrpStateChanged {
                group: "VI_1".into(),
                vrid: 1,
                from: VrrpState::Backup,
                to: VrrpState::Master,
                reason: VrrpReason::MasterDown,
                detail: None,
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains(r#""reason":"master_down""#), "{text}");
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }

    #[test]
    fn reasons_in_words_are_the_ones_the_status_used_to_carry() {
        use crate::dataplane::vrrp::instance::Reason;
        let src: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        for (r, words) in [
            (Reason::Startup, "startup"),
            (Reason::AddressOwner, "address owner (priority 255)"),
            (
                Reason::MasterDown,
                "no advert within the master-down interval",
            ),
            (Reason::MasterStopped, "the master sent priority 0"),
            (Reason::Preempted, "preempted a lower-priority master"),
            (Reason::InitialStateMaster, "initial state MASTER"),
            (
                Reason::HigherPriorityMaster { src, priority: 200 },
                "higher-priority master 192.0.2.7 (priority 200)",
            ),
            (Reason::InterfaceDown("eth1".into()), "interface eth1 down"),
            (Reason::InterfacesUp, "interfaces up"),
            (Reason::Shutdown, "shutdown"),
        ] {
            let (reason, detail) = VrrpReason::of(&r);
            assert_eq!(reason.describe(detail.as_deref()), words);
        }
    }

    #[test]
    fn seq_goes_on_from_the_stored_history_and_the_history_is_bounded() {
        let stored: Vec<Event> = (1..=(HISTORY as u64 + 5))
            .map(|seq| Event {
                seq,
                time_unix_ms: 0,
                kind: committed(seq),
            })
            .collect();
        let bus = EventBus::with_history(stored, 3);
        bus.publish(committed(0));
        assert_eq!(bus.last_seq(), HISTORY as u64 + 6);
        let all = bus.recent(0);
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all.first().map(|e| e.seq), Some(7));
    }
}
