//! The one status/event stream: what changed, for the API, gRPC, logs and (later) the dashboard.
//!
//! Producers (the service on commit; the data plane for VRRP transitions and health changes)
//! publish here; readers either subscribe (live) or read the recent history.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// How many past events `recent` keeps.
const HISTORY: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Event {
    /// Increases by one per event, from 1 at start-up.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
        from: String,
        to: String,
        reason: String,
    },
    /// A real server's health check changed its verdict.
    HealthChanged {
        virtual_server_id: i64,
        real_server_id: i64,
        /// address:port that was checked
        target: String,
        state: crate::health::state::HealthState,
        #[serde(skip_serializing_if = "Option::is_none")]
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
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Event>,
    history: Mutex<(u64, VecDeque<Event>)>,
}

impl Default for EventBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventBus {
            inner: Arc::new(Inner {
                tx,
                history: Mutex::new((0, VecDeque::with_capacity(HISTORY))),
            }),
        }
    }
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl EventBus {
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
        // No subscribers is fine.
        let _ = self.inner.tx.send(ev);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.tx.subscribe()
    }

    /// Events with `seq > since`, oldest first (at most the last 256).
    pub fn recent(&self, since: u64) -> Vec<Event> {
        let h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        h.1.iter().filter(|e| e.seq > since).cloned().collect()
    }
}
