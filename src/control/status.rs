//! What `/api/v1/status` and gRPC `GetStatus` report: this node, the committed revision, and what
//! the data plane says about itself.
//!
//! The data plane publishes its [`DataplaneStatus`] on a watch channel; until one runs, the status
//! says so plainly rather than pretending the kernel is programmed.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::control::events::{VrrpReason, VrrpState};
use crate::dataplane::health::metrics::HealthMetrics;
use crate::dataplane::health::state::RealServerHealth;
use crate::dataplane::health::HealthMap;

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
    /// IPVS connection sync: the kernel's sync daemons and the connections that came by sync.
    pub connection_sync: ConnectionSyncStatus,
}

/// The kernel's connection-sync daemons as the data plane last saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ConnectionSyncStatus {
    /// Whether lbd runs the daemons (`connection_sync` is configured). Otherwise they are
    /// shown as the kernel has them, and left alone.
    pub managed: bool,
    /// The master and the backup daemon, in that order (empty until the first look).
    pub daemons: Vec<SyncDaemonStatus>,
    /// The connections in this director's IPVS table and how many came by sync
    /// (/proc/net/ip_vs_conn_sync), read when the status is asked for; absent when lbd does not
    /// manage the daemons or the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<crate::ipvs::conn::OriginCounts>,
    /// The failback gate (absent when VRRP started without connection sync): this director
    /// preempts a lower-priority master only once it has received the connections by sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback: Option<FailbackStatus>,
}

/// Connection sync's failback gate (see `lbd::dataplane::failback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct FailbackStatus {
    pub state: FailbackState,
    /// Why it opened (absent while waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailbackReason>,
    /// Connections that came by sync: now while waiting, at the opening once open.
    pub synced: u64,
    /// How long it waited (so far, while waiting), from when VRRP started.
    pub waited_ms: u64,
    /// It opens at this wait whatever the stream does.
    pub bound_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailbackState {
    /// Preemption is held: the backup sync daemon is still receiving.
    Waiting,
    /// This director preempts as VRRP says.
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailbackReason {
    /// The backup daemon ran for the hold and no new connection arrived by sync for the hold.
    StreamReceived,
    /// The bound ran out first.
    Bound,
}

/// One sync daemon: its state and, when running, its settings as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncDaemonStatus {
    pub role: crate::ipvs::table::SyncRole,
    pub state: SyncDaemonState,
    /// Why it is stopped or in error (absent when running as lbd wants it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<SyncDaemonReason>,
    /// The kernel's message, with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxlen: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncDaemonState {
    Running,
    Stopped,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncDaemonReason {
    /// `connection_sync` is not configured: lbd leaves the kernel's daemons alone.
    NotConfigured,
    /// Running, but not with the configured settings (lbd is about to replace it, or does not
    /// manage it).
    OtherSettings,
    /// The kernel refused to start it (an interface it does not have, for instance).
    StartRefused,
    /// The kernel could not be asked (no IPVS, no CAP_NET_ADMIN, a netlink error).
    KernelUnavailable,
}

impl SyncDaemonStatus {
    /// The status of a daemon the kernel runs (`reason` when not as lbd wants it).
    pub fn running(d: &crate::ipvs::table::SyncDaemon, reason: Option<SyncDaemonReason>) -> Self {
        SyncDaemonStatus {
            role: d.role,
            state: SyncDaemonState::Running,
            reason,
            detail: None,
            interface: Some(d.interface.clone()),
            sync_id: Some(d.sync_id),
            maxlen: d.maxlen,
            group: d.group,
            port: d.port,
            ttl: d.ttl,
        }
    }

    /// A daemon that does not run, or that could not be asked about.
    pub fn not_running(
        role: crate::ipvs::table::SyncRole,
        state: SyncDaemonState,
        reason: SyncDaemonReason,
        detail: Option<String>,
    ) -> Self {
        SyncDaemonStatus {
            role,
            state,
            reason: Some(reason),
            detail,
            interface: None,
            sync_id: None,
            maxlen: None,
            group: None,
            port: None,
            ttl: None,
        }
    }
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
    /// VRRP on this director.
    pub vrrp: VrrpStatus,
    /// Health of every checked real server.
    pub health: Vec<RealServerHealth>,
    /// Peer sync: the peers, whether each is in sync, and the kept conflicts.
    pub sync: SyncStatus,
    /// Whether the API asks for tokens (filled in by the front end that answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::control::auth::AuthStatus>,
}

/// What the VRRP thread reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct VrrpStatus {
    pub scheduling: VrrpScheduling,
    pub groups: Vec<VrrpGroupStatus>,
}

impl VrrpStatus {
    /// Whether this director is VRRP master of at least one group (peer sync's health rule).
    pub fn master_of_any(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.state == VrrpGroupState::Master)
    }
}

/// How the VRRP advert thread is scheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VrrpScheduling {
    /// Real time: adverts leave on time on a busy machine.
    Fifo,
    /// No permission for real time (see the log).
    Normal,
    #[default]
    NotRunning,
}

/// A VRRP group's state as the status shows it: the protocol's, or `disabled`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VrrpGroupState {
    Initialize,
    Backup,
    Master,
    Fault,
    /// Not run on this node: see the group's `error`.
    #[default]
    Disabled,
}

impl From<VrrpState> for VrrpGroupState {
    fn from(s: VrrpState) -> Self {
        match s {
            VrrpState::Initialize => VrrpGroupState::Initialize,
            VrrpState::Backup => VrrpGroupState::Backup,
            VrrpState::Master => VrrpGroupState::Master,
            VrrpState::Fault => VrrpGroupState::Fault,
        }
    }
}

/// One VRRP group as this director runs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct VrrpGroupStatus {
    pub name: String,
    pub vrid: u8,
    pub version: u8,
    pub state: VrrpGroupState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// This node's effective priority: the configured one moved by tracked weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// This node's configured priority (before tracked weights).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured_priority: Option<u8>,
    /// The weighted or non-interface tracked objects and what is known of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracked: Vec<VrrpTrackedStatus>,
    /// This node's advert source address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_address: Option<String>,
    pub advert_interval_ms: u32,
    /// The current master as this node knows it (itself when master).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_priority: Option<u8>,
    pub virtual_addresses: Vec<String>,
    pub counters: VrrpCounters,
    /// The latest transitions, oldest first.
    pub transitions: Vec<VrrpTransition>,
    /// Why the group is disabled, or the last failed kernel or socket call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The sync group this group fails over with (`vrrp_settings.sync_groups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_group: Option<String>,
    /// A backup whose takeover came due but whose sync group keeps it in Backup, because
    /// another member does not want to be master (keepalived's "prefer backup"): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_waiting: Option<String>,
}

/// A tracked object of a VRRP group (see the group's `track_*` fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VrrpTrackedStatus {
    /// "interface eth1", "virtual server tcp 192.0.2.1:80", "script chk".
    pub object: String,
    pub weight: i32,
    /// `up`, `failing`, or `unknown` (no verdict or result yet: counts neither way).
    pub state: VrrpTrackedState,
    /// A script's last result: "exit 0", "exit 1: OUTPUT", "timed out after 1s" (output: at
    /// most 512 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VrrpTrackedState {
    Up,
    Failing,
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct VrrpCounters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// RFC 3768 section 7.1: wrong password or auth type.
    pub auth_errors: u64,
    pub checksum_errors: u64,
    /// TTL other than 255.
    pub ttl_errors: u64,
    /// Advert interval other than configured.
    pub interval_errors: u64,
    pub version_errors: u64,
    /// Length, type, destination and other malformed packets.
    pub packet_errors: u64,
    pub address_list_errors: u64,
    /// Adverts that could not be sent.
    pub send_errors: u64,
    /// Address and gratuitous-ARP calls the kernel refused.
    pub kernel_errors: u64,
    pub garps_sent: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VrrpTransition {
    pub time_unix_ms: u64,
    pub from: VrrpState,
    pub to: VrrpState,
    pub reason: VrrpReason,
    /// The reason's particulars: the other master and its priority, or the interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Peer sync as a director sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct SyncStatus {
    pub mode: SyncMode,
    /// Whether this director holds back from programming IPVS and from preempting until it has
    /// caught up with its peers (at start-up, for at most the catch-up bound).
    pub catching_up: bool,
    pub peers: Vec<PeerStatus>,
    /// Split edits that lost here and are kept (`GET /api/v1/conflicts`).
    pub conflicts: usize,
}

/// How the peer link is authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// No `--peer`: this director runs alone.
    #[default]
    Alone,
    /// A shared secret (`--peer-secret-file`) authenticates every message.
    SharedSecret,
    /// Mutual TLS (`--peer-ca`, `--peer-cert`, `--peer-key`): both ends prove themselves with a
    /// certificate from the pair's CA, and the link is encrypted (a secret, if also given,
    /// still authenticates every message).
    MutualTls,
}

/// One configured peer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct PeerStatus {
    /// As configured (`--peer`).
    pub address: String,
    /// Its node name, once heard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The link to it is up and its messages authenticate.
    pub reachable: bool,
    /// Its last message authenticated (false also before the first one).
    pub authenticated: bool,
    /// Why the last attempt failed (refused authentication, unreachable, a bad message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact_unix_ms: Option<u64>,
    /// This director's revision, and the peer's as last heard.
    pub local_revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_revision: Option<u64>,
    /// Both hold the same revision of the same history.
    pub in_sync: bool,
    /// The peer is VRRP master of at least one group.
    pub master: bool,
    /// The peer follows this director (its stream to us is open).
    pub following_us: bool,
    /// Why this director last refused the peer's own connection, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Real servers whose health the two directors see differently: one of them cannot reach it.
    pub health_disagreements: Vec<HealthDisagreement>,
}

/// A real server that one director sees up and the other down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthDisagreement {
    pub virtual_server_id: i64,
    pub real_server_id: i64,
    /// This director's own check says it is up.
    pub local_up: bool,
    /// The peer's check says it is up.
    pub peer_up: bool,
}

/// The data plane's half of the status: watch channels it writes and the API reads (the data
/// plane's own state, VRRP's, and the health checkers'), and the checks' counters for
/// `/metrics`.
#[derive(Clone)]
pub struct StatusBoard {
    started: Instant,
    dataplane: watch::Sender<DataplaneStatus>,
    vrrp: watch::Sender<VrrpStatus>,
    health: watch::Sender<HealthMap>,
    sync: watch::Sender<SyncStatus>,
    health_metrics: HealthMetrics,
}

impl StatusBoard {
    pub fn new(initial: DataplaneStatus) -> Self {
        StatusBoard {
            started: Instant::now(),
            dataplane: watch::Sender::new(initial),
            vrrp: watch::Sender::new(VrrpStatus {
                scheduling: VrrpScheduling::NotRunning,
                groups: Vec::new(),
            }),
            health: watch::Sender::new(HealthMap::new()),
            sync: watch::Sender::new(SyncStatus::default()),
            health_metrics: HealthMetrics::default(),
        }
    }

    pub fn set_dataplane(&self, s: DataplaneStatus) {
        self.dataplane.send_replace(s);
    }

    pub fn dataplane(&self) -> DataplaneStatus {
        self.dataplane.borrow().clone()
    }

    pub fn set_vrrp(&self, s: VrrpStatus) {
        self.vrrp.send_replace(s);
    }

    pub fn vrrp(&self) -> VrrpStatus {
        self.vrrp.borrow().clone()
    }

    /// The sending end of the health map, for its one writer (the actor's
    /// [`crate::dataplane::health::Checkers`]).
    pub fn health_publisher(&self) -> watch::Sender<HealthMap> {
        self.health.clone()
    }

    /// A receiver of the health map as the checkers' owner publishes it.
    pub fn health_watch(&self) -> watch::Receiver<HealthMap> {
        self.health.subscribe()
    }

    /// The checks' attempts and latency: the checkers' owner counts into it (a shared handle),
    /// `/metrics` reads it.
    pub fn health_metrics(&self) -> HealthMetrics {
        self.health_metrics.clone()
    }

    pub fn health_list(&self) -> Vec<RealServerHealth> {
        self.health.borrow().values().cloned().collect()
    }

    /// A receiver of VRRP's status (the peer link tells its peers whether this director is
    /// master).
    pub fn vrrp_watch(&self) -> watch::Receiver<VrrpStatus> {
        self.vrrp.subscribe()
    }

    /// The sending end of the peer-sync status, for its one writer (`crate::peer`).
    pub fn sync_publisher(&self) -> watch::Sender<SyncStatus> {
        self.sync.clone()
    }

    pub fn sync(&self) -> SyncStatus {
        self.sync.borrow().clone()
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
