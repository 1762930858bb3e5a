//! What `/api/v1/status` and gRPC `GetStatus` report: this node, the committed revision, and what
//! the data plane says about itself.
//!
//! The data plane publishes its [`DataplaneStatus`] on a watch channel; until one runs, the status
//! says so plainly rather than pretending the kernel is programmed.

use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::health::state::RealServerHealth;
use crate::health::HealthBoard;

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct DataplaneStatus {
    /// `not_running`, `degraded` or `running`.
    pub state: DataplaneState,
    /// Why it is not running or degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The configuration revision the kernel was last converged to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<u64>,
    /// Services and destinations lbd programs.
    pub services: usize,
    pub destinations: usize,
    /// Kernel operations applied since start.
    pub ops_applied: u64,
    /// Operations that repaired drift (changes made behind lbd's back).
    pub drift_repairs: u64,
    /// Failed kernel calls since start.
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataplaneState {
    #[default]
    NotRunning,
    Degraded,
    Running,
}

impl DataplaneStatus {
    pub fn not_running(reason: impl Into<String>) -> Self {
        DataplaneStatus {
            state: DataplaneState::NotRunning,
            reason: Some(reason.into()),
            ..DataplaneStatus::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Status {
    /// This director's node name (`--node-name`).
    pub node: String,
    pub version: String,
    /// The last committed configuration revision.
    pub revision: u64,
    pub uptime_secs: u64,
    pub virtual_servers: usize,
    pub real_servers: usize,
    pub vrrp_groups: usize,
    pub dataplane: DataplaneStatus,
    /// Health of every checked real server.
    pub health: Vec<RealServerHealth>,
}

/// The data plane's half of the status: a watch channel it writes and the API reads.
#[derive(Clone)]
pub struct StatusBoard {
    started: Instant,
    dataplane: watch::Sender<DataplaneStatus>,
    health: HealthBoard,
}

impl StatusBoard {
    pub fn new(initial: DataplaneStatus) -> Self {
        StatusBoard {
            started: Instant::now(),
            dataplane: watch::Sender::new(initial),
            health: HealthBoard::default(),
        }
    }

    pub fn set_dataplane(&self, s: DataplaneStatus) {
        self.dataplane.send_replace(s);
    }

    pub fn dataplane(&self) -> DataplaneStatus {
        self.dataplane.borrow().clone()
    }

    /// Where the health checkers write, and the API reads.
    pub fn health(&self) -> HealthBoard {
        self.health.clone()
    }

    pub fn health_list(&self) -> Vec<RealServerHealth> {
        let b = self.health.lock().unwrap_or_else(|p| p.into_inner());
        b.values().cloned().collect()
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
