//! One VRRP virtual router on this director: a sans-IO state machine.
//!
//! The driver (socket layer) feeds [`Input`]s with the current time and carries out the
//! returned [`Action`]s in order; the instance reads no clock and does no I/O. It keeps its own
//! timer deadlines, so a [`Input::TimerExpired`] that arrives for a cancelled or re-armed timer
//! is ignored.
//!
//! States and transitions follow RFC 5798 section 6.4 (VRRPv3) and RFC 3768 section 6.4
//! (VRRPv2), with keepalived's additions where the RFCs are silent:
//!
//! - **Startup** (RFC 5798 section 6.4.1): the address owner (priority 255) becomes Master at
//!   once; everyone else becomes Backup with Master_Down_Timer = Master_Down_Interval.
//!   An instance configured with initial state MASTER (keepalived `state MASTER`) also starts
//!   as Backup, but waits only Master_Adver_Interval + the minimum skew (1/256 of the interval
//!   for v3, 1/256 s for v2) before taking over, exactly as keepalived 2.2.7 does
//!   (`vrrp_init_state`): long enough to hear a higher-priority master that is already there.
//!   As in keepalived, initial state MASTER turns nopreempt and preempt_delay off.
//! - **Fault**: a tracked interface (or the VRRP interface itself) is down. A master leaving
//!   for Fault sends a priority-0 advert first, as keepalived does. When every tracked
//!   interface is up again the instance goes through Startup again.
//! - **preempt_delay** (keepalived 2.x semantics): when a Backup with preempt on first hears a
//!   lower-priority master, it starts the delay and keeps accepting that master's adverts until
//!   the delay ends; an advert of higher or equal priority cancels the delay. When the delay
//!   ends while the master is still of lower priority, the Backup takes over at once
//!   (keepalived instead starts discarding and takes over one Master_Down_Interval later).
//! - **In-place edits** ([`Input::Reconfigure`]): priority, interval, preempt and its delay,
//!   addresses, gratuitous-ARP settings, tracked interfaces and the password change without a
//!   state change. A master keeps advertising on its rhythm with the new values (RFC 5798
//!   section 6.4.3: with a lower priority it stays master until it hears a higher one); a
//!   backup recomputes Master_Down_Interval and Skew_Time from when its timer started. Added
//!   addresses of a master are added and announced like on a takeover, removed ones deleted,
//!   the others left alone. A new VRID, interface, version or address family is refused
//!   ([`Action::RestartRequired`]): the driver restarts the instance.
//! - **A master's object deleted** ([`Input::ObjectDeleted`], keepalived's tracking of its
//!   VIPs, virtual routes and rules): the master sends priority 0, removes everything and is
//!   Backup for Skew_Time, then master again with everything back unless a peer took over.
//! - **Two masters meet**: the one that wins the comparison of RFC 5798 section 6.4.3 sends an
//!   advert and a gratuitous-ARP burst at once (keepalived's "forcing new election"), so the
//!   network converges on it without waiting for the next Adver_Timer.

use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::change::Change;
use super::packet::{
    self, multicast_group, validate_ip_header, AuthPass, AuthType, DecodeError, IpHeaderError,
    PacketKind, Version, VrrpPacket, IP_PROTOCOL_VRRP, MAX_V3_ADVER_INT,
};
use super::timer::{master_down_interval, skew_min, skew_time, ProtocolVersion, Timer};
use super::track::{self, TrackKey, TrackState, Tracker};
use crate::model::{
    Centiseconds, GarpSettings, InitialState, Priority, VirtualAddress, Vrid, VrrpGroup, VrrpNode,
};

/// The address owner's priority (RFC 5798 section 5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// How many transitions [`Instance::transitions`] keeps.
pub const TRANSITION_HISTORY: usize = 32;

/// Everything one instance needs, resolved from the model for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub name: String,
    pub vrid: Vrid,
    pub version: ProtocolVersion,
    pub priority: Priority,
    /// Advertisement_Interval (RFC 5798 section 6.1). Whole seconds for v2.
    pub advert_interval: Centiseconds,
    /// VRRPv2 simple password; `None` sends and expects auth type 0.
    pub auth: Option<AuthPass>,
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Preempt_Mode (RFC 5798 section 6.1).
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub initial_state: InitialState,
    /// This director's primary address on the VRRP interface: the advert source and the
    /// tie-breaker of RFC 5798 section 6.4.3.
    pub primary_address: IpAddr,
    /// Unicast peers; empty means multicast to the VRRP group.
    pub unicast_peers: Vec<IpAddr>,
    pub garp: GarpSettings,
    /// The VRRP interface.
    pub interface: String,
    /// Further interfaces whose loss means Fault.
    pub track_interfaces: Vec<String>,
    /// Weighted (and weight-0 non-interface) trackers: see [`super::track`].
    pub trackers: Vec<Tracker>,
    /// The failback gate of connection sync: while closed, this director does not preempt a
    /// lower-priority master (with preempt on or initial state MASTER), so that one that comes
    /// back takes the addresses only once its backup sync daemon has had the master's
    /// connections. [`Input::FailbackOpen`] opens it; the data plane decides when
    /// (`crate::dataplane::connsync::FailbackGate`). Taking over from no master (a master that
    /// went silent or stopped) is never held. Open without connection sync.
    pub failback_closed: bool,
    /// A master discards a lower-priority advert without answering it, as RFC 5798 section
    /// 6.4.3 says (keepalived's `lower_prio_no_advert`, on in strict mode). Off, a master
    /// answers at once with an advert and gratuitous ARPs so that the other master yields and
    /// the hosts learn where the addresses are (keepalived's default).
    pub lower_prio_no_advert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("VRRP version {0} is not supported (2 or 3)")]
    Version(u8),
    #[error("advertisement interval {ms} ms is not valid for VRRPv{version}")]
    Interval { version: u8, ms: u32 },
    #[error(transparent)]
    AuthPass(#[from] packet::AuthPassTooLong),
    #[error("authentication is VRRPv2 only")]
    AuthOnV3,
    #[error("VRRPv2 runs over IPv4 only, primary address {0} is IPv6")]
    V2OverIpv6(IpAddr),
    #[error("no virtual address of the primary address's family ({0})")]
    NoAddresses(IpAddr),
}

impl InstanceConfig {
    /// Resolves a group and this node's entry. `primary_address` is the node's source address:
    /// `unicast_src` when set, otherwise the interface's primary address, which only the
    /// socket layer knows.
    pub fn from_model(
        group: &VrrpGroup,
        node: &VrrpNode,
        primary_address: IpAddr,
    ) -> Result<Self, ConfigError> {
        let version = match group.version {
            2 => ProtocolVersion::V2,
            3 => ProtocolVersion::V3,
            v => return Err(ConfigError::Version(v)),
        };
        let ms = group.advert_interval_ms;
        let bad_interval = ConfigError::Interval {
            version: version.number(),
            ms,
        };
        let advert_interval = Centiseconds::from_millis(ms).ok_or(bad_interval.clone())?;
        let ok = match version {
            ProtocolVersion::V2 => ms.is_multiple_of(1000) && (1..=255).contains(&(ms / 1000)),
            ProtocolVersion::V3 => (1..=MAX_V3_ADVER_INT).contains(&advert_interval.0),
        };
        if !ok {
            return Err(bad_interval);
        }
        let auth = match (&group.auth_pass, version) {
            (None, _) => None,
            (Some(p), ProtocolVersion::V2) => Some(AuthPass::new(p)?),
            (Some(_), ProtocolVersion::V3) => return Err(ConfigError::AuthOnV3),
        };
        if version == ProtocolVersion::V2 && primary_address.is_ipv6() {
            return Err(ConfigError::V2OverIpv6(primary_address));
        }
        let cfg = InstanceConfig {
            name: group.name.clone(),
            vrid: group.vrid,
            version,
            priority: node.priority,
            advert_interval,
            auth,
            virtual_addresses: group.virtual_addresses.clone(),
            preempt: group.preempt,
            preempt_delay: Duration::from_millis(u64::from(group.preempt_delay_ms)),
            initial_state: node.initial_state,
            primary_address,
            unicast_peers: group.unicast_peers.clone(),
            garp: group.garp.clone(),
            interface: node.interface.clone(),
            track_interfaces: group.track_interfaces.clone(),
            trackers: Vec::new(),
            failback_closed: false,
            lower_prio_no_advert: false,
        };
        let mut cfg = cfg;
        for t in &group.track_interfaces_weighted {
            if t.weight == 0 {
                if !cfg.track_interfaces.contains(&t.interface) {
                    cfg.track_interfaces.push(t.interface.clone());
                }
            } else {
                cfg.trackers.push(Tracker {
                    key: TrackKey::Interface(t.interface.clone()),
                    weight: t.weight,
                });
            }
        }
        cfg.trackers
            .extend(group.track_virtual_servers.iter().map(|t| Tracker {
                key: TrackKey::VirtualServer(t.virtual_server.clone()),
                weight: t.weight,
            }));
        cfg.trackers
            .extend(group.track_scripts.iter().map(|t| Tracker {
                key: TrackKey::Script(t.name.clone()),
                weight: t.weight,
            }));
        if cfg.advertised_addresses().is_empty() {
            return Err(ConfigError::NoAddresses(primary_address));
        }
        Ok(cfg)
    }

    /// Starts the instance with the failback gate closed (see
    /// [`InstanceConfig::failback_closed`]).
    pub fn with_failback_closed(mut self, closed: bool) -> Self {
        self.failback_closed = closed;
        self
    }

    /// Sets [`InstanceConfig::lower_prio_no_advert`] (strict mode).
    pub fn with_lower_prio_no_advert(mut self, on: bool) -> Self {
        self.lower_prio_no_advert = on;
        self
    }

    /// The virtual addresses of the primary address's family: what the adverts list.
    pub fn advertised_addresses(&self) -> Vec<IpAddr> {
        self.virtual_addresses
            .iter()
            .map(|v| v.address)
            .filter(|a| a.is_ipv4() == self.primary_address.is_ipv4())
            .collect()
    }
}

/// How long a stopped master holds its addresses at most, in advert intervals: the new master
/// takes over Skew_Time (less than one interval) after our priority-0 advert, so three
/// intervals leave room for a lost advert.
pub const RELEASE_BOUND_ADVERTS: u32 = 3;
/// The hold's ceiling whatever the interval, so that a stop is never held up for long
/// (VRRPv2 intervals go up to 255 s).
pub const RELEASE_BOUND_MAX: Duration = Duration::from_secs(10);

/// RFC 5798 section 6.4 states, plus Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

/// Why a transition happened; the reasons of RFC 6527's `vrrpv3StatisticsNewMasterReason` and
/// more.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Initialize -> Backup.
    Startup,
    /// -> Master at startup because we own the addresses (priority 255).
    AddressOwner,
    /// Backup -> Master: Master_Down_Timer expired with no advert (RFC 5798 section 6.4.2).
    MasterDown,
    /// Backup -> Master: the master sent priority 0 and Skew_Time passed.
    MasterStopped,
    /// Backup -> Master: we discarded a lower-priority master's adverts (preempt), or its
    /// preempt delay ended.
    Preempted,
    /// Backup -> Master after the short startup wait of initial state MASTER.
    InitialStateMaster,
    /// Master -> Backup: an advert of higher priority, or of equal priority from a higher
    /// address (RFC 5798 section 6.4.3).
    HigherPriorityMaster { src: IpAddr, priority: u8 },
    /// -> Fault.
    InterfaceDown(String),
    /// -> Fault: a tracked object of weight 0 failed (its [`TrackKey`] in words).
    TrackFailed(String),
    /// Fault -> Backup.
    InterfacesUp,
    /// -> Initialize.
    Shutdown,
    /// Another member of this group's sync group changed state (keepalived
    /// `vrrp_sync_group`): what happened, e.g. `VG_1: VI_2 fault`.
    SyncGroup(String),
    /// Master -> Backup: someone deleted one of the objects this master added (see
    /// [`Input::ObjectDeleted`]); and Backup -> Master Skew_Time later, when no one else took
    /// over (everything is put back).
    ObjectDeleted(Deleted),
}

/// One of the objects a master adds, as the log and the status name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Deleted {
    /// A virtual address ("192.0.2.10/32 on eth0").
    Address(String),
    /// A virtual route (its keepalived line).
    Route(String),
    /// A virtual rule (its keepalived line).
    Rule(String),
}

impl std::fmt::Display for Deleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Deleted::Address(a) => write!(f, "virtual address {a}"),
            Deleted::Route(r) => write!(f, "virtual route {r}"),
            Deleted::Rule(r) => write!(f, "virtual rule {r}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub at: Instant,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

/// What happened; the driver feeds these in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start (RFC 5798 section 6.4.1, "Startup event").
    Startup,
    /// Graceful stop (RFC 5798 section 6.4.3, "Shutdown event"): a master sends priority 0.
    /// It keeps its addresses (and so keeps receiving and forwarding for them) until it hears
    /// the new master's advert, or for at most [`RELEASE_BOUND_ADVERTS`] advert intervals
    /// (never more than [`RELEASE_BOUND_MAX`]); then it removes them. The RFC removes them at
    /// once, which leaves the address nowhere for the new master's Skew_Time: every request
    /// sent then fails. Held, the address is always somewhere.
    Shutdown,
    /// Removes at once the addresses a stopped master still holds (see [`Input::Shutdown`]):
    /// the group is being removed or restarted, not handed over.
    ReleaseNow,
    /// A raw VRRP message (IP payload) with its IP header fields; the instance decodes it and
    /// counts every reason for dropping it. Route datagrams with [`packet::peek_vrid`].
    Datagram {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: Vec<u8>,
    },
    /// An advert the driver decoded itself.
    AdvertReceived {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        packet: VrrpPacket,
    },
    TimerExpired(Timer),
    InterfaceUp(String),
    InterfaceDown(String),
    /// What a tracked object is now (`failing` or up); see [`super::track`]. Objects the
    /// instance does not track are ignored. An interface's link is fed as
    /// [`Input::InterfaceUp`] / [`Input::InterfaceDown`], which also count for a weighted one.
    Track {
        key: TrackKey,
        failing: bool,
    },
    /// Nothing is known of a tracked object any more (a tracked virtual server was removed,
    /// a script restarted): it counts neither way until the next [`Input::Track`].
    TrackUnknown(TrackKey),
    /// Connection sync's failback gate opened (see [`InstanceConfig::failback_closed`]): a
    /// backup that has been hearing a lower-priority master preempts it now (once its own
    /// preempt delay, if any, has run out).
    FailbackOpen,
    /// An edited configuration for the running instance. Everything but a change of VRID,
    /// interface, version or address family is taken in place, without leaving the state
    /// (RFC 5798 section 6.4.3: a master that learns a lower priority of its own stays master
    /// until it hears a higher one); timers are recomputed from when they were started. A
    /// change that needs a restart is refused with [`Action::RestartRequired`].
    Reconfigure(Box<InstanceConfig>),
    /// Sync group (see [`super::sync_group`]): `Some(why)` holds the instance in Fault
    /// (a master hands over with a priority-0 advert, as on its own Fault) because another
    /// member is faulty; `None` lets it go (it starts again unless faulty itself).
    SyncHold(Option<String>),
    /// Sync group: another member became master; a Backup becomes master at once.
    SyncMaster(String),
    /// Sync group: another member left Master for Backup; a Master becomes Backup (no
    /// priority-0 advert, as keepalived) and waits Master_Down_Interval like any backup.
    SyncBackup(String),
    /// Sync group, keepalived's "prefer backup" rule: `Some(why)` while another member does
    /// not want to be master (it hears a master that outranks it). Meanwhile a backup whose
    /// Master_Down_Timer runs out (or whose preemption comes due) stays Backup, notes that it
    /// wants to be master (see [`Instance::wants_master`]) and waits Master_Down_Interval
    /// again. The whole group goes master only when every member wants to, so members whose
    /// priorities disagree across the two directors stay where they are instead of
    /// flapping. `None` lifts the wait: the next expiry takes over.
    SyncWait(Option<String>),
    /// Someone else deleted one of the objects this master added (a virtual address, route
    /// or rule not marked `no_track`; the driver watches the kernel and never feeds its own
    /// removals). As keepalived 2.2.7 (`set_vrrp_backup`): a master sends a priority-0 advert,
    /// removes its rules, routes and addresses, becomes Backup and sets its Master_Down_Timer
    /// to Skew_Time, so that, unless a peer takes over first, it is master again at once with
    /// everything put back. Ignored in any other state.
    ObjectDeleted(Deleted),
    /// Sync group: another member left Master because one of its objects was deleted
    /// ([`Input::ObjectDeleted`]). As keepalived (`set_vrrp_backup`): a Master leaves too, with
    /// a priority-0 advert, and sets its Master_Down_Timer to Skew_Time, so that the whole
    /// group is back at once unless a peer takes over first.
    SyncRestart(String),
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Encode `packet` (from `src`) once per destination: the VRRP multicast group, or each
    /// unicast peer. TTL 255, protocol 112.
    SendAdvert {
        packet: VrrpPacket,
        src: IpAddr,
        destinations: Vec<IpAddr>,
    },
    /// Arm `timer` for `at`, replacing any earlier deadline of the same timer.
    StartTimer {
        timer: Timer,
        at: Instant,
    },
    CancelTimer(Timer),
    AddVips(Vec<VirtualAddress>),
    RemoveVips(Vec<VirtualAddress>),
    /// `count` gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6) for each
    /// address, sent back to back.
    SendGarp {
        addresses: Vec<VirtualAddress>,
        count: u32,
    },
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
    /// The configuration was changed in place (first of the actions of an
    /// [`Input::Reconfigure`]); the state is unchanged.
    Reconfigured {
        changes: Vec<Change>,
    },
    /// The effective priority moved (a tracked object changed, see [`super::track`]); the
    /// state is unchanged. A master's next advert carries it; a backup's timers follow it.
    PriorityChanged {
        from: u8,
        to: u8,
        cause: TrackKey,
    },
    /// The only action of an [`Input::Reconfigure`] the instance cannot take in place: nothing
    /// changed. The driver stops this instance ([`Input::Shutdown`]) and starts a new one.
    RestartRequired {
        changes: Vec<Change>,
    },
}

/// Statistics (in the spirit of RFC 6527's vrrpv3StatisticsTable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub adverts_sent: u64,
    pub priority_zero_sent: u64,
    pub adverts_received: u64,
    pub priority_zero_received: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// TTL / hop limit other than 255 (RFC 5798 section 7.1).
    pub ttl_errors: u64,
    /// Destination neither the VRRP group nor our unicast address.
    pub destination_errors: u64,
    pub checksum_errors: u64,
    /// Too short, or length not matching Count IPvX Addr.
    pub length_errors: u64,
    /// Version other than configured, or not 2/3.
    pub version_errors: u64,
    /// Packet type other than ADVERTISEMENT.
    pub type_errors: u64,
    /// Any other malformed packet (VRID 0, family, zero interval).
    pub packet_errors: u64,
    /// Auth type or password not matching the configuration (RFC 3768 section 7.1).
    pub auth_errors: u64,
    /// Advert interval other than configured: dropped in v2 (RFC 3768 section 7.1), only
    /// counted in v3.
    pub interval_errors: u64,
    /// Address list not matching the configuration (RFC 5798 section 7.1: logged, accepted).
    pub address_list_errors: u64,
    /// Another VRID on the shared group: not ours, ignored.
    pub other_vrid: u64,
    /// Unicast mode: a source that is not a configured peer.
    pub unknown_peer: u64,
    /// Our own advert looped back.
    pub own_adverts: u64,
    /// We own the addresses (priority 255) and another router claims to as well.
    pub owner_conflicts: u64,
    /// As master: a lower-priority advert from another master (answered at once).
    pub lower_priority_master: u64,
    /// Adverts received while Initialize or Fault.
    pub ignored_inactive: u64,
    /// Takeovers held back in Backup by the sync group's "prefer backup" rule (see
    /// [`Input::SyncWait`]).
    pub sync_waits: u64,
    /// Timer expiries for a timer not armed or not yet due.
    pub stale_timers: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreemptDelay {
    Idle,
    Running,
    Elapsed,
}

/// One VRRP instance. See the module documentation.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    /// Master_Adver_Interval (RFC 5798 section 6.1): learned from the master in v3.
    master_adver_int: Centiseconds,
    timers: [Option<Instant>; Timer::ALL.len()],
    /// When each armed timer was started: a reconfiguration recomputes its deadline from there.
    armed_at: [Option<Instant>; Timer::ALL.len()],
    /// The addresses the pending second gratuitous-ARP burst is for: all of them after a
    /// takeover, only the added ones after an in-place edit.
    garp_repeat: Vec<VirtualAddress>,
    down_interfaces: BTreeSet<String>,
    /// What is known of the tracked objects (see [`super::track`]).
    tracked: TrackState,
    /// The master we last accepted (source, priority).
    master: Option<(IpAddr, u8)>,
    /// What a Master_Down_Timer expiry would mean.
    pending_reason: Reason,
    preempt_delay: PreemptDelay,
    /// Connection sync's failback gate (see [`InstanceConfig::failback_closed`]); it only
    /// ever opens.
    failback_closed: bool,
    /// The addresses a stopped master still holds until it hears the new master.
    releasing: Vec<VirtualAddress>,
    counters: Counters,
    transitions: VecDeque<Transition>,
    /// Held in Fault by its sync group (why), see [`Input::SyncHold`].
    sync_hold: Option<String>,
    /// Kept from taking over by its sync group (why), see [`Input::SyncWait`].
    sync_wait: Option<String>,
    /// A takeover was due while [`Instance::sync_wait`] kept it in Backup (keepalived's
    /// `wantstate` MASTER); cleared when it accepts a master or leaves Backup.
    wants_master: bool,
}

impl Instance {
    pub fn new(cfg: InstanceConfig) -> Self {
        let master_adver_int = cfg.advert_interval;
        let failback_closed = cfg.failback_closed;
        Instance {
            cfg,
            state: State::Initialize,
            master_adver_int,
            timers: [None; Timer::ALL.len()],
            armed_at: [None; Timer::ALL.len()],
            garp_repeat: Vec::new(),
            down_interfaces: BTreeSet::new(),
            tracked: TrackState::new(),
            master: None,
            pending_reason: Reason::MasterDown,
            preempt_delay: PreemptDelay::Idle,
            failback_closed,
            releasing: Vec::new(),
            counters: Counters::default(),
            transitions: VecDeque::new(),
            sync_hold: None,
            sync_wait: None,
            wants_master: false,
        }
    }

    /// In Fault for a reason of its own (an interface, a weight-0 tracked object), not only
    /// held there by its sync group.
    pub fn own_fault(&self) -> bool {
        self.state == State::Fault
            && (!self.down_interfaces.is_empty()
                || track::fault_cause(&self.cfg.trackers, &self.tracked).is_some())
    }

    /// Whether its sync group holds it in Fault (see [`Input::SyncHold`]).
    pub fn sync_held(&self) -> bool {
        self.sync_hold.is_some()
    }

    /// Why its sync group keeps it from taking over, if it does (see [`Input::SyncWait`]).
    pub fn sync_waiting(&self) -> Option<&str> {
        self.sync_wait.as_deref()
    }

    /// Whether it is master or would be if its sync group let it (keepalived's `wantstate`
    /// MASTER): a backup wants to be master once a takeover came due while it waited.
    pub fn wants_master(&self) -> bool {
        match self.state {
            State::Master => true,
            State::Backup => self.wants_master,
            _ => false,
        }
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A stopped master still holding its addresses until it hears the new master.
    pub fn is_releasing(&self) -> bool {
        !self.releasing.is_empty()
    }

    /// The latest transitions, oldest first (at most [`TRANSITION_HISTORY`]).
    pub fn transitions(&self) -> impl Iterator<Item = &Transition> {
        self.transitions.iter()
    }

    /// Master_Adver_Interval as currently known.
    pub fn master_adver_interval(&self) -> Centiseconds {
        self.master_adver_int
    }

    /// The master this instance last accepted adverts from (source, priority).
    pub fn current_master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// The armed deadline of `timer`.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.timers[timer.index()]
    }

    /// The earliest armed deadline: when the driver must wake the instance next.
    pub fn next_deadline(&self) -> Option<(Timer, Instant)> {
        Timer::ALL
            .iter()
            .filter_map(|&t| self.deadline(t).map(|at| (t, at)))
            .min_by_key(|&(_, at)| at)
    }

    fn priority(&self) -> u8 {
        self.effective_priority()
    }

    /// The priority advertised and compared: the configured one moved by the weights of the
    /// tracked objects (see [`super::track`]).
    pub fn effective_priority(&self) -> u8 {
        track::effective_priority(self.cfg.priority.get(), &self.cfg.trackers, &self.tracked)
    }

    /// What is known of each tracked object (`true`: failing).
    pub fn tracked(&self) -> &TrackState {
        &self.tracked
    }

    fn is_owner(&self) -> bool {
        self.priority() == PRIORITY_OWNER
    }

    /// keepalived ignores nopreempt and preempt_delay with initial state MASTER.
    fn preempt(&self) -> bool {
        self.cfg.preempt || self.cfg.initial_state == InitialState::Master
    }

    fn preempt_delay_configured(&self) -> Option<Duration> {
        let own = match self.cfg.initial_state {
            InitialState::Master => Duration::ZERO,
            _ => self.cfg.preempt_delay,
        };
        (self.preempt() && !own.is_zero()).then_some(own)
    }

    /// Skew_Time with the current Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        skew_time(self.cfg.version, self.priority(), self.master_adver_int)
    }

    /// Master_Down_Interval with the current Master_Adver_Interval (v2: the configured one).
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(self.cfg.version, self.priority(), self.master_adver_int)
    }

    /// How long the Master_Down_Timer runs for what it is waiting for now: Skew_Time after a
    /// priority-0 advert, the short startup wait of initial state MASTER, otherwise
    /// Master_Down_Interval.
    fn down_wait(&self) -> Duration {
        match self.pending_reason {
            Reason::MasterStopped | Reason::ObjectDeleted(_) => self.skew_time(),
            Reason::InitialStateMaster => {
                self.master_adver_int.as_duration()
                    + skew_min(self.cfg.version, self.master_adver_int)
            }
            _ => self.master_down_interval(),
        }
    }

    fn is_tracked(&self, ifname: &str) -> bool {
        self.cfg.interface == ifname || self.cfg.track_interfaces.iter().any(|t| t == ifname)
    }

    /// Feeds one input at time `now`; returns what to do, in order.
    pub fn on_input(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => {
                if self.state == State::Initialize {
                    self.release(&mut out);
                    self.start(now, Reason::Startup, &mut out);
                }
            }
            Input::Shutdown => self.shutdown(now, &mut out),
            Input::ReleaseNow => self.release(&mut out),
            Input::Datagram {
                src,
                dst,
                ttl,
                bytes,
            } => {
                if self.accept_ip(src, dst, ttl) {
                    match packet::decode(&bytes, src, dst) {
                        Ok(p) => self.receive(src, p, now, &mut out),
                        Err(e) => self.count_decode_error(&e),
                    }
                }
            }
            Input::AdvertReceived {
                src,
                dst,
                ttl,
                packet,
            } => {
                if self.accept_ip(src, dst, ttl) {
                    self.receive(src, packet, now, &mut out);
                }
            }
            Input::TimerExpired(t) => self.timer_expired(t, now, &mut out),
            Input::InterfaceDown(ifname) => {
                self.track(TrackKey::Interface(ifname.clone()), true, now, &mut out);
                if self.is_tracked(&ifname) {
                    self.down_interfaces.insert(ifname.clone());
                    if matches!(self.state, State::Backup | State::Master) {
                        self.go_fault(now, Reason::InterfaceDown(ifname), &mut out);
                    }
                }
            }
            Input::InterfaceUp(ifname) => {
                self.track(TrackKey::Interface(ifname.clone()), false, now, &mut out);
                if self.down_interfaces.remove(&ifname)
                    && self.down_interfaces.is_empty()
                    && self.state == State::Fault
                {
                    self.start(now, Reason::InterfacesUp, &mut out);
                }
            }
            Input::Track { key, failing } => self.track(key, failing, now, &mut out),
            Input::TrackUnknown(key) => {
                let before = self.priority();
                if self.tracked.remove(&key).is_some() {
                    self.tracked_changed(before, key, now, &mut out);
                }
            }
            Input::Reconfigure(cfg) => self.reconfigure(*cfg, now, &mut out),
            Input::FailbackOpen => self.failback_open(now, &mut out),
            Input::SyncHold(hold) => self.sync_hold(hold, now, &mut out),
            Input::SyncMaster(why) => {
                if self.state == State::Backup {
                    self.become_master(now, Reason::SyncGroup(why), &mut out);
                }
            }
            Input::SyncBackup(why) => {
                if self.state == State::Master {
                    self.leave_master(false, false, &mut out);
                    self.pending_reason = Reason::MasterDown;
                    self.record(now, State::Backup, Reason::SyncGroup(why), &mut out);
                    self.start_timer(Timer::MasterDown, now, self.down_wait(), &mut out);
                }
            }
            Input::SyncWait(why) => self.sync_wait = why,
            Input::ObjectDeleted(what) => self.object_deleted(what, now, &mut out),
            Input::SyncRestart(why) => {
                if self.state == State::Master {
                    self.leave_master(true, false, &mut out);
                    self.master = None;
                    // Skew_Time, as after a master's priority 0.
                    self.pending_reason = Reason::MasterStopped;
                    self.record(now, State::Backup, Reason::SyncGroup(why), &mut out);
                    self.start_timer(Timer::MasterDown, now, self.down_wait(), &mut out);
                }
            }
        }
        out
    }

    /// A takeover for `reason` came due in Backup: become master, unless the sync group
    /// makes it wait ([`Input::SyncWait`]); then it stays Backup wanting to be master and
    /// looks again after Master_Down_Interval (keepalived `vrrp_sync_can_goto_master`).
    fn take_over(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        if self.sync_wait.is_none() {
            self.become_master(now, reason, out);
            return;
        }
        self.wants_master = true;
        self.counters.sync_waits += 1;
        self.pending_reason = reason;
        self.start_timer(Timer::MasterDown, now, self.master_down_interval(), out);
    }

    /// Connection sync's failback gate opened: preempt the lower-priority master this backup
    /// has been accepting meanwhile, unless its own preempt delay still runs (its expiry
    /// preempts then).
    fn failback_open(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !std::mem::replace(&mut self.failback_closed, false) {
            return;
        }
        let delay_done = self.preempt_delay_configured().is_none()
            || self.preempt_delay == PreemptDelay::Elapsed;
        if self.state == State::Backup
            && self.preempt()
            && delay_done
            && matches!(self.master, Some((_, p)) if p < self.priority())
        {
            self.take_over(now, Reason::Preempted, out);
        }
    }

    /// See [`Input::ObjectDeleted`].
    fn object_deleted(&mut self, what: Deleted, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Master {
            return;
        }
        self.leave_master(true, false, out);
        self.master = None;
        self.pending_reason = Reason::ObjectDeleted(what.clone());
        self.record(now, State::Backup, Reason::ObjectDeleted(what), out);
        self.start_timer(Timer::MasterDown, now, self.down_wait(), out);
    }

    // ---- sync groups --------------------------------------------------------------------

    fn sync_hold(&mut self, hold: Option<String>, now: Instant, out: &mut Vec<Action>) {
        match hold {
            Some(why) => {
                if matches!(self.state, State::Backup | State::Master) {
                    self.go_fault(now, Reason::SyncGroup(why.clone()), out);
                }
                self.sync_hold = Some(why);
            }
            None => {
                let was = self.sync_hold.take();
                if let (Some(why), State::Fault) = (was, self.state) {
                    if !self.own_fault() {
                        self.start(now, Reason::SyncGroup(why), out);
                    }
                }
            }
        }
    }

    // ---- tracked objects ----------------------------------------------------------------

    /// A tracked object changed: Fault for a weight-0 one (and back when none fails), or a
    /// new effective priority. A master keeps advertising on its rhythm with it (RFC 5798
    /// section 6.4.3; a preempting backup of higher priority then takes over); a backup
    /// recomputes Skew_Time and Master_Down_Interval from when its timer started.
    fn track(&mut self, key: TrackKey, failing: bool, now: Instant, out: &mut Vec<Action>) {
        if !self.cfg.trackers.iter().any(|t| t.key == key) {
            return;
        }
        let before = self.priority();
        if self.tracked.insert(key.clone(), failing) == Some(failing) {
            return;
        }
        self.tracked_changed(before, key, now, out);
    }

    /// After the known state of tracked objects (or the trackers) changed: Fault or back,
    /// or a priority change (`before` is the effective priority before).
    fn tracked_changed(
        &mut self,
        before: u8,
        cause: TrackKey,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let fault = track::fault_cause(&self.cfg.trackers, &self.tracked).cloned();
        match (fault, self.state) {
            (Some(k), State::Backup | State::Master) => {
                self.go_fault(now, Reason::TrackFailed(k.to_string()), out);
                return;
            }
            (None, State::Fault) if self.down_interfaces.is_empty() => {
                self.start(now, Reason::InterfacesUp, out);
                return;
            }
            _ => {}
        }
        let after = self.priority();
        if after == before || self.state == State::Initialize {
            return;
        }
        out.push(Action::PriorityChanged {
            from: before,
            to: after,
            cause,
        });
        if self.state == State::Backup {
            self.reconfigure_backup(now, out);
        }
    }

    // ---- in-place edits -----------------------------------------------------------------

    /// Takes an edited configuration without leaving the current state (see
    /// [`Input::Reconfigure`]).
    fn reconfigure(&mut self, new: InstanceConfig, now: Instant, out: &mut Vec<Action>) {
        let changes = self.cfg.changes(&new);
        if changes.iter().any(Change::needs_restart) {
            out.push(Action::RestartRequired { changes });
            return;
        }
        if !changes.is_empty() {
            out.push(Action::Reconfigured { changes });
        }
        let old = std::mem::replace(&mut self.cfg, new);
        // VRRPv2 has no learned interval: Master_Adver_Interval is the configured one. VRRPv3
        // learns it from the master's adverts (RFC 5798 section 6.4.2), so a backup that has
        // heard one keeps it; until then it is the configured one (section 6.4.1).
        if self.cfg.version == ProtocolVersion::V2
            || self.state != State::Backup
            || self.master.is_none()
        {
            self.master_adver_int = self.cfg.advert_interval;
        }
        let untracked: Vec<String> = self
            .down_interfaces
            .iter()
            .filter(|i| !self.is_tracked(i))
            .cloned()
            .collect();
        for i in untracked {
            self.down_interfaces.remove(&i);
        }
        let trackers = self.cfg.trackers.clone();
        self.tracked
            .retain(|k, _| trackers.iter().any(|t| &t.key == k));
        if matches!(self.state, State::Backup | State::Master) {
            if let Some(k) = track::fault_cause(&self.cfg.trackers, &self.tracked).cloned() {
                self.go_fault(now, Reason::TrackFailed(k.to_string()), out);
                return;
            }
        }
        match self.state {
            State::Master => self.reconfigure_master(&old, now, out),
            State::Backup => self.reconfigure_backup(now, out),
            State::Fault => {
                // The interfaces still down may all have left the tracked set.
                if self.down_interfaces.is_empty() {
                    self.start(now, Reason::InterfacesUp, out);
                }
            }
            State::Initialize => {}
        }
    }

    /// RFC 5798 section 6.4.3: the master stays master whatever its new priority; its next
    /// advert (on the Adver_Timer, not earlier) carries the new priority, interval, addresses
    /// and password. A backup of higher priority with preempt then takes over and this one
    /// becomes backup when it hears that backup's advert. Added addresses are added and
    /// announced like on a takeover; removed ones are deleted; the rest is left alone.
    fn reconfigure_master(&mut self, old: &InstanceConfig, now: Instant, out: &mut Vec<Action>) {
        // An address whose `no_track` alone changed stays where it is.
        let removed: Vec<VirtualAddress> = old
            .virtual_addresses
            .iter()
            .filter(|v| !self.cfg.virtual_addresses.iter().any(|n| n.same_object(v)))
            .cloned()
            .collect();
        let added: Vec<VirtualAddress> = self
            .cfg
            .virtual_addresses
            .iter()
            .filter(|v| !old.virtual_addresses.iter().any(|o| o.same_object(v)))
            .cloned()
            .collect();
        if !removed.is_empty() {
            out.push(Action::RemoveVips(removed));
        }
        if !added.is_empty() {
            out.push(Action::AddVips(added.clone()));
            self.send_garp_for(added.clone(), self.cfg.garp.count, out);
        }
        // The adverts keep their rhythm: the next one leaves one (new) interval after the last.
        let every = self.cfg.advert_interval.as_duration();
        self.stretch_timer(Timer::Adver, every, out);
        // The pending second burst: for the addresses still configured and the added ones, at
        // the new delay.
        let cfg_vips = self.cfg.virtual_addresses.clone();
        self.garp_repeat.retain(|v| cfg_vips.contains(v));
        match self.garp_repeat_delay() {
            Some(d) if !self.garp_repeat.is_empty() => {
                self.stretch_timer(Timer::GarpRepeat, d, out)
            }
            _ => self.cancel_timer(Timer::GarpRepeat, out),
        }
        if let (Some(delay), false) = (self.garp_repeat_delay(), added.is_empty()) {
            if self.deadline(Timer::GarpRepeat).is_some() {
                self.garp_repeat.extend(added);
            } else {
                self.garp_repeat = added;
                self.start_timer(Timer::GarpRepeat, now, delay, out);
            }
        }
        match self.garp_refresh() {
            None => self.cancel_timer(Timer::GarpRefresh, out),
            Some(every) if self.deadline(Timer::GarpRefresh).is_some() => {
                self.stretch_timer(Timer::GarpRefresh, every, out)
            }
            Some(every) => self.start_timer(Timer::GarpRefresh, now, every, out),
        }
    }

    /// A backup recomputes its timers with the new priority, interval and preempt settings,
    /// from when they were started (RFC 5798 section 6.4.2: Master_Down_Interval and
    /// Skew_Time follow the priority and Master_Adver_Interval).
    fn reconfigure_backup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.pending_reason == Reason::InitialStateMaster
            && self.cfg.initial_state != InitialState::Master
        {
            // No longer initial state MASTER: wait for a master as any backup does.
            self.pending_reason = Reason::MasterDown;
        }
        if self.pending_reason == Reason::Preempted {
            // Discarding a lower-priority master: when it no longer is one to preempt (our
            // priority went down, preempt went off), it is accepted again as if its last
            // advert had just been.
            if let Some((_, theirs)) = self.master {
                if !self.preempt() || theirs >= self.priority() {
                    self.pending_reason = Reason::MasterDown;
                    self.start_timer(Timer::MasterDown, now, self.down_wait(), out);
                }
            }
        }
        self.stretch_timer(Timer::MasterDown, self.down_wait(), out);
        match self.preempt_delay_configured() {
            None => {
                self.preempt_delay = PreemptDelay::Idle;
                self.cancel_timer(Timer::PreemptDelay, out);
            }
            Some(d) => self.stretch_timer(Timer::PreemptDelay, d, out),
        }
    }

    // ---- timers -------------------------------------------------------------------------

    /// Arms `timer` to expire `after` from `now`.
    fn start_timer(&mut self, timer: Timer, now: Instant, after: Duration, out: &mut Vec<Action>) {
        self.rearm(timer, now, now + after, out);
    }

    /// Arms `timer` for `at`, as started at `base`.
    fn rearm(&mut self, timer: Timer, base: Instant, at: Instant, out: &mut Vec<Action>) {
        self.timers[timer.index()] = Some(at);
        self.armed_at[timer.index()] = Some(base);
        out.push(Action::StartTimer { timer, at });
    }

    /// An armed timer's start, so that its deadline follows an edited length: `after` from
    /// when it was started. Does nothing when it is not armed or its deadline is unchanged.
    fn stretch_timer(&mut self, timer: Timer, after: Duration, out: &mut Vec<Action>) {
        let (Some(at), Some(base)) = (self.timers[timer.index()], self.armed_at[timer.index()])
        else {
            return;
        };
        if base + after != at {
            self.rearm(timer, base, base + after, out);
        }
    }

    fn cancel_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        self.armed_at[timer.index()] = None;
        if self.timers[timer.index()].take().is_some() {
            out.push(Action::CancelTimer(timer));
        }
    }

    fn cancel_all_timers(&mut self, out: &mut Vec<Action>) {
        for t in Timer::ALL {
            self.cancel_timer(t, out);
        }
    }

    fn timer_expired(&mut self, timer: Timer, now: Instant, out: &mut Vec<Action>) {
        match self.timers[timer.index()] {
            Some(at) if at <= now => {
                self.timers[timer.index()] = None;
                self.armed_at[timer.index()] = None;
            }
            _ => {
                self.counters.stale_timers += 1;
                return;
            }
        }
        match (timer, self.state) {
            // RFC 5798 section 6.4.3: send an advert, reset Adver_Timer.
            (Timer::Adver, State::Master) => {
                self.send_advert(self.priority(), out);
                let every = self.cfg.advert_interval.as_duration();
                self.start_timer(Timer::Adver, now, every, out);
            }
            // RFC 5798 section 6.4.2: Master_Down_Timer fires -> Master.
            (Timer::MasterDown, State::Backup) => {
                let reason = self.pending_reason.clone();
                self.take_over(now, reason, out);
            }
            (Timer::PreemptDelay, State::Backup) => {
                self.preempt_delay = PreemptDelay::Elapsed;
                if !self.failback_closed
                    && matches!(self.master, Some((_, p)) if p < self.priority())
                {
                    self.take_over(now, Reason::Preempted, out);
                }
            }
            (Timer::GarpRepeat, State::Master) => {
                let addresses = std::mem::take(&mut self.garp_repeat);
                self.send_garp_for(addresses, self.cfg.garp.count, out);
            }
            (Timer::Release, State::Initialize) => self.release(out),
            (Timer::GarpRefresh, State::Master) => {
                self.send_garp(1, out);
                if let Some(every) = self.garp_refresh() {
                    self.start_timer(Timer::GarpRefresh, now, every, out);
                }
            }
            _ => {}
        }
    }

    fn garp_repeat_delay(&self) -> Option<Duration> {
        let ms = self.cfg.garp.repeat_delay_ms;
        (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
    }

    fn garp_refresh(&self) -> Option<Duration> {
        self.cfg
            .garp
            .refresh_interval_ms
            .filter(|&ms| ms > 0)
            .map(|ms| Duration::from_millis(u64::from(ms)))
    }

    // ---- transitions --------------------------------------------------------------------

    fn record(&mut self, now: Instant, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.wants_master = false;
        if self.transitions.len() == TRANSITION_HISTORY {
            self.transitions.pop_front();
        }
        self.transitions.push_back(Transition {
            at: now,
            from,
            to,
            reason: reason.clone(),
        });
        out.push(Action::StateChanged { from, to, reason });
    }

    /// Startup (RFC 5798 section 6.4.1), also used when leaving Fault.
    fn start(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.master_adver_int = self.cfg.advert_interval;
        self.master = None;
        self.preempt_delay = PreemptDelay::Idle;
        if let Some(ifname) = self.down_interfaces.iter().next().cloned() {
            if self.state != State::Fault {
                self.record(now, State::Fault, Reason::InterfaceDown(ifname), out);
            }
            return;
        }
        if let Some(k) = track::fault_cause(&self.cfg.trackers, &self.tracked) {
            if self.state != State::Fault {
                let why = Reason::TrackFailed(k.to_string());
                self.record(now, State::Fault, why, out);
            }
            return;
        }
        if let Some(why) = &self.sync_hold {
            if self.state != State::Fault {
                let why = Reason::SyncGroup(why.clone());
                self.record(now, State::Fault, why, out);
            }
            return;
        }
        if self.is_owner() {
            self.become_master(now, Reason::AddressOwner, out);
            return;
        }
        self.record(now, State::Backup, reason, out);
        self.pending_reason = if self.cfg.initial_state == InitialState::Master {
            Reason::InitialStateMaster
        } else {
            Reason::MasterDown
        };
        self.start_timer(Timer::MasterDown, now, self.down_wait(), out);
    }

    /// RFC 5798 section 6.4.1 / 6.4.2: send an advert, broadcast gratuitous ARP, set
    /// Adver_Timer, become Master; plus keepalived's GARP repeat and refresh.
    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.cancel_timer(Timer::MasterDown, out);
        self.cancel_timer(Timer::PreemptDelay, out);
        self.preempt_delay = PreemptDelay::Idle;
        self.master = None;
        self.record(now, State::Master, reason, out);
        self.counters.became_master += 1;
        // The addresses and their gratuitous ARP go before the advert (RFC 5798 section
        // 6.4.2 lists the advert first): the master we replace lets its addresses go when it
        // hears our advert, and by then the hosts on the link already send to us, so no
        // request goes to a director that no longer has the address.
        out.push(Action::AddVips(self.cfg.virtual_addresses.clone()));
        self.send_garp(self.cfg.garp.count, out);
        self.send_advert(self.priority(), out);
        let every = self.cfg.advert_interval.as_duration();
        self.start_timer(Timer::Adver, now, every, out);
        if let Some(delay) = self.garp_repeat_delay() {
            self.garp_repeat = self.cfg.virtual_addresses.clone();
            self.start_timer(Timer::GarpRepeat, now, delay, out);
        }
        if let Some(every) = self.garp_refresh() {
            self.start_timer(Timer::GarpRefresh, now, every, out);
        }
    }

    /// Leaves Master: stop advertising (with a priority-0 advert when `stop_advert`) and
    /// release the addresses, unless `hold` (a graceful stop: see [`Input::Shutdown`]).
    fn leave_master(&mut self, stop_advert: bool, hold: bool, out: &mut Vec<Action>) {
        self.cancel_timer(Timer::Adver, out);
        self.cancel_timer(Timer::GarpRepeat, out);
        self.cancel_timer(Timer::GarpRefresh, out);
        if stop_advert {
            self.send_advert(0, out);
        }
        if hold {
            self.releasing = self.cfg.virtual_addresses.clone();
        } else {
            out.push(Action::RemoveVips(self.cfg.virtual_addresses.clone()));
        }
        self.counters.released_master += 1;
    }

    /// How long a stopped master holds its addresses at most.
    fn release_bound(&self) -> Duration {
        (self.cfg.advert_interval.as_duration() * RELEASE_BOUND_ADVERTS).min(RELEASE_BOUND_MAX)
    }

    /// Removes the addresses a stopped master still holds, if any.
    fn release(&mut self, out: &mut Vec<Action>) {
        self.cancel_timer(Timer::Release, out);
        if !self.releasing.is_empty() {
            out.push(Action::RemoveVips(std::mem::take(&mut self.releasing)));
        }
    }

    fn go_fault(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        if self.state == State::Master {
            self.leave_master(true, false, out);
        }
        self.cancel_all_timers(out);
        self.master = None;
        self.preempt_delay = PreemptDelay::Idle;
        self.record(now, State::Fault, reason, out);
    }

    /// RFC 5798 sections 6.4.2 and 6.4.3, "Shutdown event".
    fn shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Initialize {
            return;
        }
        let was_master = self.state == State::Master;
        self.cancel_all_timers(out);
        if was_master {
            self.leave_master(true, true, out);
        }
        self.master = None;
        self.preempt_delay = PreemptDelay::Idle;
        self.record(now, State::Initialize, Reason::Shutdown, out);
        if self.is_releasing() {
            self.start_timer(Timer::Release, now, self.release_bound(), out);
        }
    }

    // ---- sending ------------------------------------------------------------------------

    /// The advert this instance sends with `priority` (0 when stopping).
    pub fn advert(&self, priority: u8) -> VrrpPacket {
        let addresses = self.cfg.advertised_addresses();
        let version = match self.cfg.version {
            ProtocolVersion::V2 => {
                let (auth_type, auth_data) = match &self.cfg.auth {
                    Some(p) => (AuthType::SimplePassword, p.wire()),
                    None => (AuthType::None, [0; packet::AUTH_DATA_LEN]),
                };
                Version::V2 {
                    auth_type,
                    // Checked to be 1..=255 whole seconds by `InstanceConfig::from_model`.
                    adver_int: u8::try_from(self.cfg.advert_interval.0 / 100).unwrap_or(u8::MAX),
                    auth_data,
                }
            }
            ProtocolVersion::V3 => Version::V3 {
                max_adver_int: self.cfg.advert_interval,
            },
        };
        VrrpPacket {
            version,
            kind: PacketKind::Advertisement,
            vrid: self.cfg.vrid,
            priority,
            count_ip: u8::try_from(addresses.len()).unwrap_or(u8::MAX),
            checksum: 0,
            addresses,
        }
    }

    fn destinations(&self) -> Vec<IpAddr> {
        if self.cfg.unicast_peers.is_empty() {
            vec![multicast_group(self.cfg.primary_address)]
        } else {
            self.cfg.unicast_peers.clone()
        }
    }

    fn send_advert(&mut self, priority: u8, out: &mut Vec<Action>) {
        self.counters.adverts_sent += 1;
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
        out.push(Action::SendAdvert {
            packet: self.advert(priority),
            src: self.cfg.primary_address,
            destinations: self.destinations(),
        });
    }

    fn send_garp(&mut self, count: u32, out: &mut Vec<Action>) {
        self.send_garp_for(self.cfg.virtual_addresses.clone(), count, out);
    }

    fn send_garp_for(&mut self, addresses: Vec<VirtualAddress>, count: u32, out: &mut Vec<Action>) {
        if count > 0 && !addresses.is_empty() {
            out.push(Action::SendGarp { addresses, count });
        }
    }

    // ---- receiving ----------------------------------------------------------------------

    /// IP-level checks (RFC 5798 section 7.1): TTL, destination, our own loop-back, peers.
    fn accept_ip(&mut self, src: IpAddr, dst: IpAddr, ttl: u8) -> bool {
        let listening = self.state == State::Initialize && self.is_releasing();
        if matches!(self.state, State::Initialize | State::Fault) && !listening {
            self.counters.ignored_inactive += 1;
            return false;
        }
        let unicast = (!self.cfg.unicast_peers.is_empty()).then_some(self.cfg.primary_address);
        match validate_ip_header(ttl, IP_PROTOCOL_VRRP, dst, unicast) {
            Ok(()) => {}
            Err(IpHeaderError::BadTtl(_)) => {
                self.counters.ttl_errors += 1;
                return false;
            }
            Err(_) => {
                self.counters.destination_errors += 1;
                return false;
            }
        }
        if src == self.cfg.primary_address {
            self.counters.own_adverts += 1;
            return false;
        }
        if !self.cfg.unicast_peers.is_empty() && !self.cfg.unicast_peers.contains(&src) {
            self.counters.unknown_peer += 1;
            return false;
        }
        true
    }

    fn count_decode_error(&mut self, e: &DecodeError) {
        let c = &mut self.counters;
        match e {
            DecodeError::TooShort { .. } | DecodeError::LengthMismatch { .. } => {
                c.length_errors += 1
            }
            DecodeError::BadVersion(_) => c.version_errors += 1,
            DecodeError::BadType(_) => c.type_errors += 1,
            DecodeError::BadChecksum { .. } => c.checksum_errors += 1,
            DecodeError::UnknownAuthType(_) => c.auth_errors += 1,
            DecodeError::BadVrid
            | DecodeError::FamilyMismatch { .. }
            | DecodeError::ZeroInterval => c.packet_errors += 1,
        }
    }

    /// Packet-level checks (RFC 5798 section 7.1, RFC 3768 section 7.1), then the state's
    /// processing.
    fn receive(&mut self, src: IpAddr, p: VrrpPacket, now: Instant, out: &mut Vec<Action>) {
        if p.vrid != self.cfg.vrid {
            self.counters.other_vrid += 1;
            return;
        }
        if ProtocolVersion::of(&p.version) != self.cfg.version {
            self.counters.version_errors += 1;
            return;
        }
        if let Version::V2 {
            auth_type,
            adver_int,
            auth_data,
        } = p.version
        {
            // RFC 3768 section 7.1: the auth type must match the configured one, and for
            // simple password the password too (RFC 2338 section 5.3.6.1).
            let auth_ok = match &self.cfg.auth {
                None => auth_type == AuthType::None,
                Some(pass) => auth_type == AuthType::SimplePassword && pass.matches(&auth_data),
            };
            if !auth_ok {
                self.counters.auth_errors += 1;
                return;
            }
            // RFC 3768 section 7.1: an Adver Interval other than ours MUST be discarded.
            if u16::from(adver_int) * 100 != self.cfg.advert_interval.0 {
                self.counters.interval_errors += 1;
                return;
            }
        } else if p.advert_interval() != self.cfg.advert_interval.as_duration() {
            // RFC 5798 has the backup follow the master's interval: count only.
            self.counters.interval_errors += 1;
        }
        let mut theirs = p.addresses.clone();
        theirs.sort();
        let mut ours = self.cfg.advertised_addresses();
        ours.sort();
        if theirs != ours {
            // RFC 5798 section 7.1: MUST log, MAY drop; we accept like keepalived does.
            self.counters.address_list_errors += 1;
        }

        self.counters.adverts_received += 1;
        if p.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        if self.is_owner() && p.priority == PRIORITY_OWNER {
            // RFC 5798 section 7.1 has the owner drop every advert, which leaves two owners
            // both master for ever; RFC 9568 (which obsoletes it) erratum 8298 makes this a
            // logged misconfiguration and processes the advert normally, so the owner with the
            // higher address stays master (section 6.4.3). We do the latter.
            self.counters.owner_conflicts += 1;
        }
        match self.state {
            State::Backup => self.backup_rx(src, &p, now, out),
            State::Master => self.master_rx(src, &p, now, out),
            // A stopped master holding its addresses: the new master's advert (any priority
            // but 0, which is another router stopping) means it has them now.
            State::Initialize if p.priority != 0 => self.release(out),
            State::Initialize | State::Fault => {}
        }
    }

    fn learn_interval(&mut self, p: &VrrpPacket) {
        // RFC 5798 sections 6.4.2 / 6.4.3: Master_Adver_Interval := the advert's interval.
        // VRRPv2 has no such variable: the interval was checked equal to ours.
        if let Version::V3 { max_adver_int } = p.version {
            self.master_adver_int = max_adver_int;
        }
    }

    /// RFC 5798 section 6.4.2 (Backup), with keepalived's preempt_delay.
    fn backup_rx(&mut self, src: IpAddr, p: &VrrpPacket, now: Instant, out: &mut Vec<Action>) {
        let ours = self.priority();
        if p.priority == 0 {
            // Set the Master_Down_Timer to Skew_Time.
            self.pending_reason = Reason::MasterStopped;
            self.master = None;
            self.start_timer(Timer::MasterDown, now, self.down_wait(), out);
            return;
        }
        let delay = self.preempt_delay_configured();
        let accept = !self.preempt()
            || p.priority >= ours
            || (delay.is_some() && self.preempt_delay != PreemptDelay::Elapsed)
            || self.failback_closed;
        if !accept {
            // Preempt: discard, and let the Master_Down_Timer run out.
            self.pending_reason = Reason::Preempted;
            self.master = Some((src, p.priority));
            return;
        }
        self.learn_interval(p);
        self.master = Some((src, p.priority));
        // A master it accepts: it no longer wants to be master (keepalived sets `wantstate`
        // BACKUP here too).
        self.wants_master = false;
        self.pending_reason = Reason::MasterDown;
        self.start_timer(Timer::MasterDown, now, self.down_wait(), out);
        if let Some(d) = delay {
            if p.priority >= ours {
                self.preempt_delay = PreemptDelay::Idle;
                self.cancel_timer(Timer::PreemptDelay, out);
            } else if self.preempt_delay == PreemptDelay::Idle {
                self.preempt_delay = PreemptDelay::Running;
                self.start_timer(Timer::PreemptDelay, now, d, out);
            }
        }
    }

    /// RFC 5798 section 6.4.3 (Master).
    fn master_rx(&mut self, src: IpAddr, p: &VrrpPacket, now: Instant, out: &mut Vec<Action>) {
        let ours = self.priority();
        if p.priority == 0 {
            // Send an advert, reset the Adver_Timer.
            self.send_advert(ours, out);
            let every = self.cfg.advert_interval.as_duration();
            self.start_timer(Timer::Adver, now, every, out);
            return;
        }
        let theirs_wins = p.priority > ours
            || (p.priority == ours && ip_order(src) > ip_order(self.cfg.primary_address));
        if theirs_wins {
            self.leave_master(false, false, out);
            self.learn_interval(p);
            self.master = Some((src, p.priority));
            self.pending_reason = Reason::MasterDown;
            self.record(
                now,
                State::Backup,
                Reason::HigherPriorityMaster {
                    src,
                    priority: p.priority,
                },
                out,
            );
            self.start_timer(Timer::MasterDown, now, self.down_wait(), out);
        } else if self.cfg.lower_prio_no_advert {
            // Discard (RFC 5798 section 6.4.3); the other master yields at our next advert.
            self.counters.lower_priority_master += 1;
        } else {
            // Discard per RFC; and announce ourselves at once so the other master yields and
            // the switches learn the addresses are here.
            self.counters.lower_priority_master += 1;
            self.send_advert(ours, out);
            self.send_garp(self.cfg.garp.count, out);
            let every = self.cfg.advert_interval.as_duration();
            self.start_timer(Timer::Adver, now, every, out);
        }
    }
}

/// Addresses as unsigned integers in network byte order (RFC 5798 section 6.4.3).
fn ip_order(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}
