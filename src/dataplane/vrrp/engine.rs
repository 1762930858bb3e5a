//! The VRRP engine: one OS thread that runs every VRRP instance of this director.
//!
//! The data-plane actor owns the engine and hands it the VRRP groups of each configuration
//! snapshot; the engine resolves this node's entry of each group (an IPv6 group's adverts come
//! from the interface's link-local address), opens one raw socket per interface and address
//! family ([`super::network`]), feeds the [`Instance`]s with received adverts, timer expiries,
//! link changes and the deletions of a master's addresses, routes and rules by someone else
//! ([`super::watch`]), and carries out their [`Action`]s: adverts on the socket, virtual addresses
//! and gratuitous ARP (unsolicited NAs for IPv6) through its own [`Kernel`] handle.
//!
//! Why a thread of its own rather than a tokio task: a false takeover is a split brain, so
//! adverts must leave on time even when both cores are busy (RFC 5798 section 6.4.3 gives a
//! backup only three intervals, 30 ms at a 10 ms interval). The thread asks for SCHED_FIFO and
//! waits in `ppoll` with nanosecond deadlines; it never waits behind an IPVS apply, the API or
//! the health checkers.
//!
//! Configuration changes: a group whose resolved configuration is unchanged keeps running
//! untouched. An edited group takes the edit in place ([`Input::Reconfigure`]: priority,
//! interval, preempt, addresses, gratuitous ARP, tracked interfaces, password), without a state
//! change; only a new VRID, interface, version or address family stops it as on shutdown (a
//! master sends priority 0, so the peer takes over after Skew_Time) and starts it afresh. Either
//! way an event says what changed.
//!
//! Stopping (drop, or [`VrrpEngine::stop`]) is the RFC's Shutdown event for every instance: a
//! master sends priority 0 and keeps its virtual addresses until it hears the new master's
//! advert (at most three advert intervals, and never more than 10 s), so that the addresses
//! are never nowhere; the thread ends when every one is released. A group removed or
//! restarted by a configuration change lets its addresses go at once.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::change::Change;
use super::instance::{Action, Input, Instance, InstanceConfig, Reason, State};
use super::network::{Family, FamilySocket};
use super::packet::peek_vrid;
use super::sync_group::{MemberView, SyncGroups};
use super::track::{TrackKey, TrackState};
use super::watch::{self, MasterObjects, OwnRemovals};
use crate::control::events::{EventBus, EventKind};
use crate::control::events::{VrrpReason, VrrpState};
use crate::control::status::{
    StatusBoard, VrrpCounters, VrrpGroupState, VrrpGroupStatus, VrrpScheduling, VrrpStatus,
    VrrpTrackedState, VrrpTrackedStatus, VrrpTransition,
};
use crate::kernel::rtnl::{Deletion, RouteWatch};
use crate::kernel::{interface, rtnl::LinkMonitor, Kernel};
use crate::model::{
    Family as ModelFamily, VirtualAddress, VirtualRoute, VirtualRule, VrrpGroup, VrrpSettings,
};

/// SCHED_FIFO priority of the advert thread: above every normal task, below the kernel's own
/// real-time threads (which run at 50 and 99).
pub const REALTIME_PRIORITY: i32 = 40;
/// How often a group that could not start (interface missing, no address) is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Counters are published at most this often; state changes at once.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

enum Command {
    Configure(Vec<VrrpGroup>),
    /// What tracked objects other than interfaces are now (`true`: failing; `None`: not
    /// known any more).
    Track(Vec<(TrackKey, Option<bool>)>),
    /// One group's tracked object (a script): its state (`None`: not known yet) and its last
    /// result in words.
    TrackGroup {
        group: String,
        key: TrackKey,
        failing: Option<bool>,
        detail: String,
    },
    /// Connection sync's failback gate opened (see `InstanceConfig::failback_closed`).
    FailbackOpen,
    /// The VRRP settings of a new configuration: the sync groups (see [`super::sync_group`])
    /// and strict mode.
    Settings(VrrpSettings),
    Stop,
}

/// A notify command to run for a state change (keepalived's `notify_*`): the engine thread
/// never runs one itself (a fork from a real-time thread would run the child real-time, and
/// a command that hangs must not delay adverts); it hands them to the data plane's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRun {
    pub group: String,
    /// "notify_master", "notify_backup", "notify_fault", "notify_stop" or "notify".
    pub which: &'static str,
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// A cloneable sender of group-scoped tracking news (script results) to the engine.
#[derive(Clone)]
pub struct TrackSender {
    tx: mpsc::Sender<Command>,
    wake: std::sync::Arc<OwnedFd>,
}

impl TrackSender {
    /// A script of `group` is now `failing` (`None`: no verdict yet); `detail` is its last
    /// result ("exit 1: no such file").
    pub fn script(&self, group: &str, name: &str, failing: Option<bool>, detail: String) {
        let cmd = Command::TrackGroup {
            group: group.to_string(),
            key: TrackKey::Script(name.to_string()),
            failing,
            detail,
        };
        if self.tx.send(cmd).is_ok() {
            poke(self.wake.as_raw_fd());
        }
    }
}

/// What reached a test's [`TrackSender`]: (group, script, verdict) in order.
#[cfg(test)]
pub(crate) type ScriptReports = Vec<(String, String, Option<bool>)>;

#[cfg(test)]
impl TrackSender {
    /// A sender with no engine behind it, and a drain of what reached it.
    pub(crate) fn for_test() -> io::Result<(TrackSender, impl Fn() -> ScriptReports)> {
        let (tx, rx) = mpsc::channel();
        let sender = TrackSender {
            tx,
            wake: std::sync::Arc::new(eventfd()?),
        };
        let drain = move || {
            rx.try_iter()
                .filter_map(|c| match c {
                    Command::TrackGroup {
                        group,
                        key: TrackKey::Script(name),
                        failing,
                        ..
                    } => Some((group, name, failing)),
                    _ => None,
                })
                .collect()
        };
        Ok((sender, drain))
    }
}

/// The handle the data-plane actor keeps; dropping it stops the engine gracefully.
pub struct VrrpEngine {
    tx: mpsc::Sender<Command>,
    wake: std::sync::Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain eventfd(2); owned at once.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn poke(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writing 8 bytes from a live u64 to our eventfd.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

impl VrrpEngine {
    /// Starts the engine thread for node `node`. `failback_closed`: every instance starts with
    /// connection sync's failback gate closed, until [`VrrpEngine::open_failback`] (see
    /// `InstanceConfig::failback_closed`).
    pub fn start(
        kernel: Box<dyn Kernel>,
        node: String,
        board: StatusBoard,
        events: EventBus,
        notices: Option<tokio::sync::mpsc::UnboundedSender<NotifyRun>>,
        failback_closed: bool,
    ) -> io::Result<VrrpEngine> {
        let wake = std::sync::Arc::new(eventfd()?);
        let (tx, rx) = mpsc::channel();
        let w = wake.clone();
        let thread = std::thread::Builder::new()
            .name("lbd-vrrp".into())
            .spawn(move || {
                let scheduling = realtime();
                let mut e = Engine {
                    node,
                    failback_closed,
                    kernel,
                    board,
                    events,
                    scheduling,
                    links: LinkMonitor::open().ok(),
                    watch: RouteWatch::open()
                        .map_err(|e| tracing::warn!(error = %e, "cannot watch the virtual addresses, routes and rules (rtnetlink groups); their deletion goes unnoticed"))
                        .ok(),
                    own_removals: OwnRemovals::default(),
                    sockets: BTreeMap::new(),
                    groups: BTreeMap::new(),
                    wanted: Vec::new(),
                    retry_at: None,
                    link_up: BTreeMap::new(),
                    track_known: TrackState::new(),
                    group_known: BTreeMap::new(),
                    notices,
                    dirty: true,
                    last_publish: Instant::now(),
                    anchor: (Instant::now(), SystemTime::now()),
                    stopping: None,
                    sync: SyncGroups::default(),
                    strict: false,
                    sync_changes: Vec::new(),
                    syncing: false,
                    garp_queues: BTreeMap::new(),
                    garp_due: false,
                };
                e.run(&rx, w.as_raw_fd());
            })?;
        Ok(VrrpEngine {
            tx,
            wake,
            thread: Some(thread),
        })
    }

    /// The VRRP groups of a new configuration (all of them; the engine picks this node's).
    pub fn configure(&self, groups: Vec<VrrpGroup>) {
        if self.tx.send(Command::Configure(groups)).is_ok() {
            poke(self.wake.as_raw_fd());
        }
    }

    /// The VRRP settings of a new configuration (sync groups, strict mode); hand them before
    /// the groups ([`VrrpEngine::configure`]) so that members start synchronised.
    pub fn configure_settings(&self, settings: VrrpSettings) {
        if self.tx.send(Command::Settings(settings)).is_ok() {
            poke(self.wake.as_raw_fd());
        }
    }

    /// A sender script tasks report through.
    pub fn track_sender(&self) -> TrackSender {
        TrackSender {
            tx: self.tx.clone(),
            wake: self.wake.clone(),
        }
    }

    /// Opens connection sync's failback gate: every instance may preempt from now on, and one
    /// that has been waiting to does it now.
    pub fn open_failback(&self) {
        if self.tx.send(Command::FailbackOpen).is_ok() {
            poke(self.wake.as_raw_fd());
        }
    }

    /// What tracked virtual servers are now (`true`: failing; `None`: not known any more,
    /// e.g. removed); every group that tracks one is told.
    pub fn track(&self, states: Vec<(TrackKey, Option<bool>)>) {
        if !states.is_empty() && self.tx.send(Command::Track(states)).is_ok() {
            poke(self.wake.as_raw_fd());
        }
    }

    /// Shuts every instance down (priority 0; a master's addresses removed once the new master
    /// is heard, see [`Input::Shutdown`]) and waits for the thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send(Command::Stop);
            poke(self.wake.as_raw_fd());
            let _ = t.join();
        }
    }
}

impl Drop for VrrpEngine {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Asks for real-time scheduling for the calling thread.
fn realtime() -> VrrpScheduling {
    let param = libc::sched_param {
        sched_priority: REALTIME_PRIORITY,
    };
    // SAFETY: pid 0 is the calling thread; param is valid.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
        tracing::info!(priority = REALTIME_PRIORITY, "VRRP thread runs SCHED_FIFO");
        VrrpScheduling::Fifo
    } else {
        let e = io::Error::last_os_error();
        tracing::warn!(error = %e, "VRRP thread cannot run real-time (needs CAP_SYS_NICE); adverts may be late on a busy machine");
        VrrpScheduling::Normal
    }
}

/// One group as the engine runs it.
struct Group {
    spec: VrrpGroup,
    /// `None`: disabled (see `error`).
    instance: Option<Instance>,
    error: Option<String>,
    send_errors: u64,
    kernel_errors: u64,
    garps_sent: u64,
    /// The virtual-MAC interface this group's addresses live on (`use_vmac`).
    vmac: Option<VmacUse>,
    /// Whether the spec's virtual routes and rules are in the kernel (added on becoming
    /// master, with the addresses; removed on leaving it).
    routes_up: bool,
}

/// A group's virtual-MAC interface on this node (keepalived's `use_vmac`): a private macvlan
/// `name` over `parent` with address `mac` ([`crate::kernel::vmac`]). The virtual addresses
/// and their gratuitous ARPs go there; adverts too, unless `xmit_base`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VmacUse {
    name: String,
    parent: String,
    mac: [u8; 6],
    xmit_base: bool,
}

impl VmacUse {
    /// The virtual-MAC interface `g` asks for on node `node`, if any.
    fn of(g: &VrrpGroup, node: &str) -> Option<VmacUse> {
        let n = g.node(node)?;
        Some(VmacUse {
            name: g.vmac_ifname()?,
            parent: n.interface.clone(),
            mac: g.virtual_mac(),
            xmit_base: g.vmac_xmit_base,
        })
    }

    /// The instance's VRRP interface (its socket, its link state): the macvlan, whose
    /// adverts then carry the virtual MAC, unless `xmit_base`.
    fn apply(v: Option<&VmacUse>, mut cfg: InstanceConfig) -> InstanceConfig {
        if let Some(v) = v.filter(|v| !v.xmit_base) {
            cfg.interface = v.name.clone();
        }
        cfg
    }
}

impl Group {
    /// The socket the instance uses: its interface and its primary address's family.
    fn socket_key(&self) -> Option<(String, Family)> {
        self.instance.as_ref().map(|i| {
            let c = i.config();
            (c.interface.clone(), Family::of(c.primary_address))
        })
    }
}

struct Engine {
    node: String,
    /// Connection sync's failback gate, for the instances started while it is closed.
    failback_closed: bool,
    /// Strict mode (`vrrp_settings.strict`): see [`InstanceConfig::lower_prio_no_advert`].
    strict: bool,
    kernel: Box<dyn Kernel>,
    board: StatusBoard,
    events: EventBus,
    scheduling: VrrpScheduling,
    links: Option<LinkMonitor>,
    /// Hears the deletions of the masters' addresses, routes and rules ([`watch`]).
    watch: Option<RouteWatch>,
    /// The removals the engine made itself, whose announcements are not someone else's.
    own_removals: OwnRemovals,
    sockets: BTreeMap<(String, Family), FamilySocket>,
    groups: BTreeMap<String, Group>,
    wanted: Vec<VrrpGroup>,
    retry_at: Option<Instant>,
    /// Last known state of every interface an instance uses or tracks.
    link_up: BTreeMap<String, bool>,
    /// Last known state of tracked objects other than interfaces (`true`: failing).
    track_known: TrackState,
    /// Last known state and result of each group's own tracked objects (its scripts).
    group_known: BTreeMap<(String, TrackKey), (Option<bool>, String)>,
    /// Where notify commands go (see [`NotifyRun`]).
    notices: Option<tokio::sync::mpsc::UnboundedSender<NotifyRun>>,
    dirty: bool,
    last_publish: Instant,
    /// Converts the instances' `Instant`s to wall-clock time for the status.
    anchor: (Instant, SystemTime),
    /// When the engine was told to stop: it goes on only while a stopped master holds its
    /// addresses until it hears the new master ([`Input::Shutdown`]).
    stopping: Option<Instant>,
    /// The sync groups and their whole-group states.
    sync: SyncGroups,
    /// Members' transitions not yet seen by the sync groups: (group, from, to, reason).
    sync_changes: Vec<(String, State, State, Reason)>,
    /// Inside [`Engine::sync_settle`]: inputs it feeds do not settle again.
    syncing: bool,
    /// Gratuitous ARPs / NAs waiting for their interval, per interface (see [`GarpQueue`]).
    garp_queues: BTreeMap<String, GarpQueue>,
    /// A queue got entries: pump once the actions are carried out.
    garp_due: bool,
}

/// Gratuitous ARPs / unsolicited NAs of one interface spaced by their group's interval
/// (keepalived's `garp_interval` / `gna_interval`, which space every one sent on the
/// interface): the first leaves at once, each next one its interval after the one before.
#[derive(Debug, Default)]
struct GarpQueue {
    /// (group, address, the interval after it), oldest first.
    pending: std::collections::VecDeque<(String, VirtualAddress, Duration)>,
    /// When the next one may leave.
    next_at: Option<Instant>,
}

impl Engine {
    fn run(&mut self, rx: &mpsc::Receiver<Command>, wake: RawFd) {
        let mut buf = vec![0u8; 65536];
        loop {
            let now = Instant::now();
            self.fire_timers(now);
            self.pump_garps(now);
            if let Some(since) = self.stopping {
                if !self.releasing() {
                    tracing::info!(
                        held_ms = since.elapsed().as_millis() as u64,
                        "VRRP stopped; every virtual address released"
                    );
                    self.finish();
                    return;
                }
            }
            if self.stopping.is_none() && self.retry_at.is_some_and(|t| t <= now) {
                self.retry_at = None;
                let wanted = self.wanted.clone();
                self.configure(wanted);
            }
            self.publish(false);

            // Sleep until the earliest deadline or until something is readable.
            let mut deadline = self.retry_at;
            for g in self.groups.values() {
                if let Some((_, at)) = g.instance.as_ref().and_then(|i| i.next_deadline()) {
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
            }
            if let Some(at) = self.garp_deadline() {
                deadline = Some(deadline.map_or(at, |d| d.min(at)));
            }
            if self.dirty {
                let at = self.last_publish + PUBLISH_EVERY;
                deadline = Some(deadline.map_or(at, |d| d.min(at)));
            }
            let mut fds = vec![libc::pollfd {
                fd: wake,
                events: libc::POLLIN,
                revents: 0,
            }];
            if let Some(l) = &self.links {
                fds.push(libc::pollfd {
                    fd: l.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let watch_fd = self.watch.as_ref().map(|w| {
                fds.push(libc::pollfd {
                    fd: w.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                fds.len() - 1
            });
            let first_socket = fds.len();
            let names: Vec<(String, Family)> = self.sockets.keys().cloned().collect();
            for s in self.sockets.values() {
                fds.push(libc::pollfd {
                    fd: s.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let timeout = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
                }
            });
            let tp = timeout
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: fds is a live array of pollfd of the given length; tp is null or valid.
            let n = unsafe {
                libc::ppoll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    tp,
                    std::ptr::null(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "VRRP poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            if n == 0 {
                continue;
            }
            // Adverts first: they carry the time-critical news.
            for (i, name) in names.iter().enumerate() {
                if fds[first_socket + i].revents != 0 {
                    self.receive(name, &mut buf);
                }
            }
            if self.links.is_some() && fds[1].revents != 0 {
                if let Some(l) = &self.links {
                    l.drain();
                }
                self.check_links(Instant::now());
            }
            if watch_fd.is_some_and(|i| fds[i].revents != 0) {
                self.check_deletions(Instant::now());
            }
            if fds[0].revents != 0 {
                let mut v: u64 = 0;
                // SAFETY: reading 8 bytes into a live u64 from our eventfd.
                unsafe { libc::read(wake, (&mut v as *mut u64).cast(), 8) };
                loop {
                    match rx.try_recv() {
                        // Stopping: a new configuration no longer matters.
                        Ok(Command::Configure(_)) if self.stopping.is_some() => {}
                        Ok(Command::Configure(groups)) => self.configure(groups),
                        Ok(Command::Track(states)) => self.track(states),
                        Ok(Command::Settings(s)) => self.settings(s),
                        Ok(Command::TrackGroup {
                            group,
                            key,
                            failing,
                            detail,
                        }) => self.track_group(group, key, failing, detail),
                        Ok(Command::FailbackOpen) => self.failback_open(),
                        Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => {
                            if self.stopping.is_none() {
                                self.shutdown_all();
                            }
                            // The sender is gone: nothing more comes; poll the sockets only.
                            break;
                        }
                        Err(mpsc::TryRecvError::Empty) => break,
                    }
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            // Bounded: each expiry re-arms its timer in the future or disarms it.
            for _ in 0..16 {
                let due = self
                    .groups
                    .get(&name)
                    .and_then(|g| g.instance.as_ref())
                    .and_then(|i| i.next_deadline())
                    .filter(|(_, at)| *at <= now);
                let Some((timer, _)) = due else { break };
                self.input(&name, Input::TimerExpired(timer), now);
            }
        }
    }

    /// Feeds one input to a group's instance and carries out the actions.
    fn input(&mut self, name: &str, input: Input, now: Instant) {
        let Some(g) = self.groups.get_mut(name) else {
            return;
        };
        let Some(inst) = g.instance.as_mut() else {
            return;
        };
        let actions = inst.on_input(input, now);
        self.execute(name, actions);
        if std::mem::take(&mut self.garp_due) {
            self.pump_garps(now);
        }
        if !self.syncing {
            self.sync_settle(now);
        }
    }

    /// Sends the spaced gratuitous ARPs / NAs whose time has come.
    fn pump_garps(&mut self, now: Instant) {
        for (ifname, q) in self.garp_queues.iter_mut() {
            while q.next_at.is_none_or(|t| t <= now) {
                let Some((group, v, every)) = q.pending.pop_front() else {
                    break;
                };
                let g = self.groups.get_mut(&group);
                match self.kernel.garp(ifname, &v, 1) {
                    Ok(n) => {
                        if let Some(g) = g {
                            g.garps_sent += u64::from(n);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(group = %group, address = %v, error = %e, "cannot send gratuitous ARP");
                        if let Some(g) = g {
                            g.kernel_errors += 1;
                            g.error = Some(e.to_string());
                        }
                    }
                }
                // The next one `every` after this one (never a burst to catch up).
                q.next_at = Some(now + every);
                self.dirty = true;
            }
        }
        self.garp_queues
            .retain(|_, q| !q.pending.is_empty() || q.next_at.is_some_and(|t| t > now));
    }

    /// When the next spaced gratuitous ARP is due.
    fn garp_deadline(&self) -> Option<Instant> {
        self.garp_queues
            .values()
            .filter(|q| !q.pending.is_empty())
            .map(|q| q.next_at.unwrap_or_else(Instant::now))
            .min()
    }

    /// What a member looks like to its sync group.
    fn member_view(&self, name: &str) -> Option<MemberView> {
        let i = self.groups.get(name)?.instance.as_ref()?;
        Some(MemberView {
            state: i.state(),
            own_fault: i.own_fault(),
            held: i.sync_held(),
            wants_master: i.wants_master(),
            waiting: i.sync_waiting().is_some(),
        })
    }

    /// Carries the members' transitions to the rest of their sync groups (see
    /// [`super::sync_group`]) until nothing more moves, then runs the notify commands of the
    /// sync groups whose whole state changed.
    fn sync_settle(&mut self, now: Instant) {
        if self.sync.groups().is_empty() {
            self.sync_changes.clear();
            return;
        }
        self.syncing = true;
        // Bounded: a sync-caused transition moves nobody, holds converge in one round.
        for _ in 0..8 {
            let changes = std::mem::take(&mut self.sync_changes);
            let mut inputs = Vec::new();
            for (m, from, to, reason) in &changes {
                inputs.extend(
                    self.sync
                        .follow(m, *from, *to, reason, |n| self.member_view(n)),
                );
            }
            inputs.extend(self.sync.holds(|n| self.member_view(n)));
            inputs.extend(self.sync.waits(|n| self.member_view(n)));
            if inputs.is_empty() {
                break;
            }
            for (n, i) in inputs {
                self.input(&n, i, now);
            }
        }
        self.syncing = false;
        let changes = {
            let groups = &self.groups;
            let view = |n: &str| {
                let i = groups.get(n)?.instance.as_ref()?;
                Some(MemberView {
                    state: i.state(),
                    own_fault: i.own_fault(),
                    held: i.sync_held(),
                    wants_master: i.wants_master(),
                    waiting: i.sync_waiting().is_some(),
                })
            };
            self.sync.group_changes(view)
        };
        for (name, state, runs) in changes {
            tracing::info!(sync_group = %name, state = state_name(state), "VRRP sync group state changed");
            self.events.publish(EventKind::VrrpSyncGroupChanged {
                sync_group: name.clone(),
                to: VrrpState::from(state),
            });
            if let Some(tx) = &self.notices {
                for n in runs {
                    let _ = tx.send(n);
                }
            }
        }
    }

    fn execute(&mut self, name: &str, actions: Vec<Action>) {
        let Some(g) = self.groups.get_mut(name) else {
            return;
        };
        let Some(inst) = g.instance.as_ref() else {
            return;
        };
        // Adverts go out of the instance's interface; the addresses (and their gratuitous
        // ARPs) live on the virtual-MAC interface when the group has one.
        let sock_ifname = inst.config().interface.clone();
        let ifname = g
            .vmac
            .as_ref()
            .map_or_else(|| sock_ifname.clone(), |v| v.name.clone());
        let family = Family::of(inst.config().primary_address);
        let vrid = inst.config().vrid.get();
        let priority = inst.effective_priority();
        let garp_interval = (
            inst.config().garp.interval_ms,
            inst.config().garp.na_interval_ms,
        );
        for a in actions {
            match a {
                Action::SendAdvert {
                    packet,
                    src,
                    destinations,
                } => {
                    for dst in destinations {
                        let r = match self.sockets.get_mut(&(sock_ifname.clone(), family)) {
                            Some(sock) => packet
                                .encode(src, dst)
                                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
                                .and_then(|bytes| sock.send(src, dst, &bytes)),
                            None => Err(io::Error::new(
                                io::ErrorKind::NotConnected,
                                format!("no VRRP socket on {sock_ifname}"),
                            )),
                        };
                        if let Err(e) = r {
                            if g.send_errors == 0 || g.send_errors.is_power_of_two() {
                                tracing::warn!(group = name, to = %dst, error = %e, count = g.send_errors + 1, "cannot send VRRP advert");
                            }
                            g.send_errors += 1;
                            g.error = Some(format!("sending an advert to {dst}: {e}"));
                        }
                    }
                }
                Action::AddVips(vips) => {
                    let own = &mut self.own_removals;
                    for v in &vips {
                        match self.kernel.address_add(v.interface(&ifname), v) {
                            Ok(_) => {}
                            Err(e) => {
                                tracing::error!(group = name, address = %v, error = %e, "cannot add virtual address");
                                g.kernel_errors += 1;
                                g.error = Some(e.to_string());
                            }
                        }
                    }
                    // The routes and rules after the addresses (a gateway is reached through
                    // a virtual address's prefix).
                    if !g.routes_up {
                        let (routes, rules) =
                            (g.spec.virtual_routes.clone(), g.spec.virtual_rules.clone());
                        routes_apply(self.kernel.as_mut(), own, name, g, true, &routes, &rules);
                        g.routes_up = true;
                    }
                }
                Action::RemoveVips(vips) => {
                    // Announcing an address no longer here would draw its traffic here.
                    for q in self.garp_queues.values_mut() {
                        q.pending.retain(|(g, a, _)| g != name || !vips.contains(a));
                    }
                    // Leaving master: the routes and rules go first, then the addresses.
                    let leaving = g
                        .instance
                        .as_ref()
                        .is_none_or(|i| i.state() != State::Master);
                    if g.routes_up && leaving {
                        let (routes, rules) =
                            (g.spec.virtual_routes.clone(), g.spec.virtual_rules.clone());
                        let own = &mut self.own_removals;
                        routes_apply(self.kernel.as_mut(), own, name, g, false, &routes, &rules);
                        g.routes_up = false;
                    }
                    for v in &vips {
                        match self.kernel.address_del(v.interface(&ifname), v) {
                            Ok(true) => self.own_removals.address(
                                Instant::now(),
                                ifindex(v.interface(&ifname)),
                                v.address,
                            ),
                            Ok(false) => {}
                            Err(e) => {
                                tracing::error!(group = name, address = %v, error = %e, "cannot remove virtual address");
                                g.kernel_errors += 1;
                                g.error = Some(e.to_string());
                            }
                        }
                    }
                }
                Action::SendGarp { addresses, count } if garp_interval != (0, 0) => {
                    // Spaced (keepalived garp_interval / gna_interval): queued, sent by
                    // `pump_garps` as their time comes; the thread never sleeps for them.
                    // Queued per interface the address lives on (its `dev`, or the group's).
                    for _ in 0..count {
                        for v in &addresses {
                            let ms = match v.address {
                                IpAddr::V4(_) => garp_interval.0,
                                IpAddr::V6(_) => garp_interval.1,
                            };
                            let every = Duration::from_millis(u64::from(ms));
                            self.garp_queues
                                .entry(v.interface(&ifname).to_string())
                                .or_default()
                                .pending
                                .push_back((name.to_string(), v.clone(), every));
                        }
                    }
                    self.garp_due = true;
                }
                Action::SendGarp { addresses, count } => {
                    for v in &addresses {
                        match self.kernel.garp(v.interface(&ifname), v, count) {
                            Ok(n) => g.garps_sent += u64::from(n),
                            Err(e) => {
                                tracing::warn!(group = name, address = %v, error = %e, "cannot send gratuitous ARP");
                                g.kernel_errors += 1;
                                g.error = Some(e.to_string());
                            }
                        }
                    }
                }
                Action::PriorityChanged { from, to, cause } => {
                    tracing::info!(group = name, vrid, from, to, cause = %cause, "VRRP effective priority changed");
                    self.events.publish(EventKind::VrrpPriorityChanged {
                        group: name.to_string(),
                        vrid,
                        from,
                        to,
                        cause: cause.to_string(),
                    });
                    self.dirty = true;
                    self.last_publish = Instant::now() - PUBLISH_EVERY;
                }
                Action::StateChanged { from, to, reason } => {
                    if self.sync.of(name).is_some() {
                        self.sync_changes
                            .push((name.to_string(), from, to, reason.clone()));
                    }
                    tracing::info!(group = name, vrid, from = state_name(from), to = state_name(to), reason = %reason_text(&reason), "VRRP state changed");
                    if let Some(tx) = &self.notices {
                        for n in notify_runs(name, &g.spec.notify, to, priority) {
                            let _ = tx.send(n);
                        }
                    }
                    let (why, detail) = crate::control::events::VrrpReason::of(&reason);
                    self.events.publish(EventKind::VrrpStateChanged {
                        group: name.to_string(),
                        vrid,
                        from: from.into(),
                        to: to.into(),
                        reason: why,
                        detail,
                    });
                    // Transitions are news: published at once.
                    self.dirty = true;
                    self.last_publish = Instant::now() - PUBLISH_EVERY;
                }
                Action::Reconfigured { changes } => {
                    let text = changes_text(&changes);
                    tracing::info!(group = name, vrid, changes = %text, "VRRP group reconfigured in place");
                    self.events.publish(EventKind::VrrpReconfigured {
                        group: name.to_string(),
                        vrid,
                        in_place: true,
                        changes: changes.iter().map(ToString::to_string).collect(),
                    });
                    self.dirty = true;
                    self.last_publish = Instant::now() - PUBLISH_EVERY;
                }
                // `configure` restarts the group; nothing was changed.
                Action::RestartRequired { .. } => {}
                Action::StartTimer { .. } | Action::CancelTimer(_) => {}
            }
        }
        self.dirty = true;
    }

    fn receive(&mut self, key: &(String, Family), buf: &mut [u8]) {
        let ifname = key.0.as_str();
        // Bounded per wake-up so one flooded interface cannot starve the others' timers.
        for _ in 0..256 {
            let d = match self.sockets.get(key).map(|s| s.recv(buf)) {
                Some(Ok(Some(d))) => d,
                Some(Ok(None)) | None => return,
                Some(Err(e)) => {
                    tracing::warn!(interface = ifname, error = %e, "VRRP receive failed");
                    return;
                }
            };
            let now = Instant::now();
            let Some(d) = d else {
                continue;
            };
            let Some(payload) = buf.get(d.payload.clone()) else {
                continue;
            };
            let Some(vrid) = peek_vrid(payload) else {
                continue;
            };
            let (src, dst, ttl) = (d.src, d.dst, d.ttl);
            let bytes = payload.to_vec();
            // VRIDs are per family: an IPv4 and an IPv6 group may share one (their virtual MACs differ, RFC 5798 section 7.3).
            let target = self.groups.iter().find_map(|(name, g)| {
                let c = g.instance.as_ref()?.config();
                (c.interface == key.0 && Family::of(c.primary_address) == key.1 && c.vrid == vrid)
                    .then(|| name.clone())
            });
            if let Some(name) = target {
                self.input(
                    &name,
                    Input::Datagram {
                        src,
                        dst,
                        ttl,
                        bytes,
                    },
                    now,
                );
            }
        }
    }

    /// Re-reads every interface in use and tells the instances about changes.
    fn check_links(&mut self, now: Instant) {
        let names: Vec<String> = self.link_up.keys().cloned().collect();
        for ifname in names {
            let up = interface::info(&ifname).map(|i| i.up).unwrap_or(false);
            if self.link_up.get(&ifname) == Some(&up) {
                continue;
            }
            self.link_up.insert(ifname.clone(), up);
            tracing::info!(interface = %ifname, up, "link changed");
            let groups: Vec<String> = self.groups.keys().cloned().collect();
            for g in groups {
                let input = if up {
                    Input::InterfaceUp(ifname.clone())
                } else {
                    Input::InterfaceDown(ifname.clone())
                };
                self.input(&g, input, now);
            }
        }
    }

    /// New VRRP settings: the sync groups, and strict mode, which every running group takes
    /// in place (a master stops answering lower-priority adverts, RFC 5798 section 6.4.3).
    fn settings(&mut self, s: VrrpSettings) {
        self.sync.set(s.sync_groups);
        if std::mem::replace(&mut self.strict, s.strict) != s.strict && self.stopping.is_none() {
            let running: Vec<(String, InstanceConfig)> = self
                .groups
                .iter()
                .filter_map(|(name, g)| {
                    let cfg = g.instance.as_ref()?.config().clone();
                    Some((name.clone(), cfg.with_lower_prio_no_advert(s.strict)))
                })
                .collect();
            for (name, cfg) in running {
                // Only that setting differs: always in place (the event says so).
                let _ = self.reconfigure(&name, &cfg);
            }
        }
        self.sync_settle(Instant::now());
    }

    /// Reads the deletions the kernel announced; one of a master's tracked objects deleted by
    /// someone else makes it leave master ([`Input::ObjectDeleted`]); a `no_track` one is only
    /// logged (it comes back on the next transition to master). See [`watch`].
    fn check_deletions(&mut self, now: Instant) {
        let Some(w) = &self.watch else { return };
        let (deletions, lost) = w.read();
        if lost {
            tracing::warn!("the kernel dropped address/route notifications (ENOBUFS): a deletion of a virtual address, route or rule may have gone unnoticed");
        }
        for d in deletions {
            self.deleted(&d, now);
        }
    }

    /// One deletion the kernel announced (see [`Engine::check_deletions`]).
    fn deleted(&mut self, d: &Deletion, now: Instant) {
        if self.own_removals.take(d, now) {
            return;
        }
        let hits: Vec<(String, super::instance::Deleted, bool)> = self
            .groups
            .iter()
            .filter_map(|(name, g)| {
                let inst = g.instance.as_ref()?;
                if inst.state() != State::Master {
                    return None;
                }
                let m = MasterObjects {
                    addresses: &inst.config().virtual_addresses,
                    interface: g
                        .vmac
                        .as_ref()
                        .map_or(inst.config().interface.as_str(), |v| v.name.as_str()),
                    routes: &g.spec.virtual_routes,
                    rules: &g.spec.virtual_rules,
                    routes_up: g.routes_up,
                };
                let (what, no_track) = watch::classify(d, &m, ifindex)?;
                Some((name.clone(), what, no_track))
            })
            .collect();
        for (name, what, no_track) in hits {
            if no_track {
                tracing::info!(group = %name, object = %what, "deleted from the kernel; no_track: the group stays master and puts it back only when it next becomes master");
            } else {
                tracing::warn!(group = %name, object = %what, "deleted from the kernel: the master leaves master and takes over again after Skew_Time, putting it back (keepalived's tracking)");
                self.input(&name, Input::ObjectDeleted(what), now);
            }
        }
    }

    /// Resolves this node's part of `groups` and starts, restarts or stops instances.
    fn configure(&mut self, groups: Vec<VrrpGroup>) {
        self.wanted = groups.clone();
        // keepalived joins the route and rule groups only while it has routes or rules.
        let routes = groups
            .iter()
            .any(|g| !g.virtual_routes.is_empty() || !g.virtual_rules.is_empty());
        if let Some(w) = self.watch.as_mut() {
            if let Err(e) = w.follow_routes(routes) {
                tracing::warn!(error = %e, "cannot join the route and rule notification groups; their deletion goes unnoticed");
            }
        }
        let mut retry = false;
        let names: BTreeSet<String> = groups.iter().map(|g| g.name.clone()).collect();
        // Groups that went away.
        let gone: Vec<String> = self
            .groups
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            self.stop_group(&name);
            if let Some(v) = self.groups.remove(&name).and_then(|g| g.vmac) {
                self.release_vmac(&name, &v);
            }
        }
        let all_vips: BTreeSet<IpAddr> = groups
            .iter()
            .flat_map(|g| g.virtual_addresses.iter().map(|v| v.address))
            .collect();
        // Groups that lose addresses first: an address moved from one group to another is
        // removed by the first before the second adds it, not the other way round.
        let mut groups = groups;
        groups.sort_by_key(|spec| {
            !self.groups.get(&spec.name).is_some_and(|g| {
                g.spec
                    .virtual_addresses
                    .iter()
                    .any(|v| !spec.virtual_addresses.contains(v))
            })
        });
        for spec in groups {
            let name = spec.name.clone();
            let vmac = VmacUse::of(&spec, &self.node);
            let resolved = self
                .resolve(&spec, &all_vips)
                .map(|c| VmacUse::apply(vmac.as_ref(), c));
            // A new virtual-MAC interface (or none) is a restart: the addresses move.
            let old_vmac = self.groups.get(&name).and_then(|g| g.vmac.clone());
            let vmac_same = self.groups.get(&name).is_none_or(|g| g.vmac == vmac);
            let unchanged = vmac_same
                && match (&resolved, self.groups.get(&name)) {
                    (Ok(cfg), Some(g)) => g.instance.as_ref().is_some_and(|i| i.config() == cfg),
                    _ => false,
                };
            if unchanged {
                if let Some(g) = self.groups.get_mut(&name) {
                    routes_follow(
                        self.kernel.as_mut(),
                        &mut self.own_removals,
                        &name,
                        g,
                        &spec,
                    );
                    g.spec = spec;
                }
                continue;
            }
            if let (Ok(cfg), true) = (&resolved, vmac_same) {
                match self.reconfigure(&name, cfg) {
                    Edit::InPlace => {
                        if let Some(g) = self.groups.get_mut(&name) {
                            routes_follow(
                                self.kernel.as_mut(),
                                &mut self.own_removals,
                                &name,
                                g,
                                &spec,
                            );
                            g.spec = spec;
                        }
                        continue;
                    }
                    Edit::Restart(changes) => {
                        let text = changes_text(&changes);
                        tracing::info!(group = %name, changes = %text, "VRRP group restarted for a change it cannot take in place");
                        let vrid = self
                            .groups
                            .get(&name)
                            .and_then(|g| g.instance.as_ref())
                            .map_or(cfg.vrid.get(), |i| i.config().vrid.get());
                        self.events.publish(EventKind::VrrpReconfigured {
                            group: name.clone(),
                            vrid,
                            in_place: false,
                            changes: changes.iter().map(ToString::to_string).collect(),
                        });
                    }
                    Edit::NotRunning => {}
                }
            }
            let running = self
                .groups
                .get(&name)
                .and_then(|g| g.instance.as_ref())
                .map(|i| i.config().vrid.get());
            if let (false, Some(vrid)) = (vmac_same, running) {
                let text = |v: &Option<VmacUse>| match v {
                    None => "none".to_string(),
                    Some(v) if v.xmit_base => format!("{} (adverts on {})", v.name, v.parent),
                    Some(v) => v.name.clone(),
                };
                let change = format!("virtual-MAC interface {}→{}", text(&old_vmac), text(&vmac));
                tracing::info!(group = %name, change = %change, "VRRP group restarted for a new virtual-MAC interface");
                self.events.publish(EventKind::VrrpReconfigured {
                    group: name.clone(),
                    vrid,
                    in_place: false,
                    changes: vec![change],
                });
            }
            self.stop_group(&name);
            // The same interface (only `xmit_base` changed) stays; another one goes.
            if let Some(old) = old_vmac.filter(|o| {
                vmac.as_ref()
                    .is_none_or(|n| (&n.name, &n.parent, n.mac) != (&o.name, &o.parent, o.mac))
            }) {
                self.release_vmac(&name, &old);
            }
            let mut g = Group {
                spec,
                instance: None,
                error: None,
                send_errors: 0,
                kernel_errors: 0,
                garps_sent: 0,
                vmac: vmac.clone(),
                routes_up: false,
            };
            match resolved {
                Err((e, again)) => {
                    retry |= again;
                    g.error = Some(e);
                    self.groups.insert(name, g);
                }
                Ok(cfg) => {
                    let family = Family::of(cfg.primary_address);
                    if let Some(v) = &vmac {
                        if let Err(e) = self.ensure_vmac(&name, v, cfg.primary_address) {
                            g.error = Some(e);
                            retry = true;
                            self.groups.insert(name, g);
                            continue;
                        }
                    }
                    if let Err(e) = self.ensure_socket(&cfg.interface, family) {
                        g.error = Some(format!(
                            "cannot open the VRRP socket on {}: {e}",
                            cfg.interface
                        ));
                        retry = true;
                        self.groups.insert(name, g);
                        continue;
                    }
                    // After a crash the addresses may still be here; a node that starts as
                    // backup must not answer for them (keepalived does the same).
                    if cfg.priority.get() != super::instance::PRIORITY_OWNER {
                        for r in &g.spec.virtual_rules {
                            let _ = self.kernel.rule(false, r);
                        }
                        for r in &g.spec.virtual_routes {
                            let _ = self.kernel.route(false, r);
                        }
                        let vip_if = vmac.as_ref().map_or(&cfg.interface, |v| &v.name);
                        for v in &cfg.virtual_addresses {
                            if let Ok(true) = self.kernel.address_del(v.interface(vip_if), v) {
                                tracing::info!(group = %name, address = %v, "removed a virtual address left from an earlier run");
                            }
                        }
                    }
                    let watched = watched_interfaces(&cfg);
                    for i in &watched {
                        if !self.link_up.contains_key(i) {
                            let up = interface::info(i).map(|x| x.up).unwrap_or(false);
                            self.link_up.insert(i.clone(), up);
                        }
                    }
                    g.instance = Some(Instance::new(cfg));
                    self.groups.insert(name.clone(), g);
                    let now = Instant::now();
                    self.feed_tracked(&name, &watched, now);
                    self.input(&name, Input::Startup, now);
                }
            }
        }
        // Sockets no instance uses any more.
        let used: BTreeSet<(String, Family)> =
            self.groups.values().filter_map(Group::socket_key).collect();
        self.sockets.retain(|k, _| used.contains(k));
        let tracked: BTreeSet<String> = self
            .groups
            .values()
            .filter_map(|g| g.instance.as_ref())
            .flat_map(|i| watched_interfaces(i.config()))
            .collect();
        self.link_up.retain(|k, _| tracked.contains(k));
        let groups = &self.groups;
        self.group_known.retain(|(g, k), _| {
            groups
                .get(g)
                .and_then(|g| g.instance.as_ref())
                .is_some_and(|i| i.config().trackers.iter().any(|t| &t.key == k))
        });
        self.retry_at = retry.then(|| Instant::now() + RETRY);
        self.dirty = true;
        self.last_publish = Instant::now() - PUBLISH_EVERY;
        self.sync_settle(Instant::now());
    }

    /// Hands a running group its edited configuration. Interfaces it now tracks are watched,
    /// and the ones down are reported to it after the edit.
    fn reconfigure(&mut self, name: &str, cfg: &InstanceConfig) -> Edit {
        let running = self
            .groups
            .get(name)
            .is_some_and(|g| g.instance.as_ref().is_some());
        if !running {
            return Edit::NotRunning;
        }
        let watched = watched_interfaces(cfg);
        for i in &watched {
            if !self.link_up.contains_key(i) {
                let up = interface::info(i).map(|x| x.up).unwrap_or(false);
                self.link_up.insert(i.clone(), up);
            }
        }
        let now = Instant::now();
        let Some(actions) = self
            .groups
            .get_mut(name)
            .and_then(|g| g.instance.as_mut())
            .map(|i| i.on_input(Input::Reconfigure(Box::new(cfg.clone())), now))
        else {
            return Edit::NotRunning;
        };
        if let Some(Action::RestartRequired { changes }) = actions
            .iter()
            .find(|a| matches!(a, Action::RestartRequired { .. }))
        {
            return Edit::Restart(changes.clone());
        }
        self.execute(name, actions);
        self.feed_tracked(name, &watched, now);
        Edit::InPlace
    }

    /// Tells a group what is known of the interfaces it watches (down ones, and every
    /// weighted one) and of the other tracked objects; it ignores what it does not track.
    fn feed_tracked(&mut self, name: &str, watched: &[String], now: Instant) {
        let weighted: Vec<String> = self
            .groups
            .get(name)
            .and_then(|g| g.instance.as_ref())
            .map(|i| {
                i.config()
                    .trackers
                    .iter()
                    .filter_map(|t| match &t.key {
                        TrackKey::Interface(i) => Some(i.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        for i in watched {
            match self.link_up.get(i) {
                Some(false) => self.input(name, Input::InterfaceDown(i.clone()), now),
                Some(true) if weighted.contains(i) => {
                    self.input(name, Input::InterfaceUp(i.clone()), now)
                }
                _ => {}
            }
        }
        let mut known: Vec<(TrackKey, bool)> = self
            .track_known
            .iter()
            .map(|(k, f)| (k.clone(), *f))
            .collect();
        known.extend(
            self.group_known
                .iter()
                .filter(|((g, _), _)| g == name)
                .filter_map(|((_, k), (f, _))| f.map(|f| (k.clone(), f))),
        );
        for (key, failing) in known {
            self.input(name, Input::Track { key, failing }, now);
        }
    }

    /// A group's own tracked object (a script) reported.
    fn track_group(&mut self, group: String, key: TrackKey, failing: Option<bool>, detail: String) {
        let before = self
            .group_known
            .insert((group.clone(), key.clone()), (failing, detail))
            .and_then(|(f, _)| f);
        self.dirty = true;
        if before != failing {
            let input = match failing {
                Some(f) => Input::Track { key, failing: f },
                None => Input::TrackUnknown(key),
            };
            self.input(&group, input, Instant::now());
        }
    }

    /// New states of tracked virtual servers or scripts, for every group.
    fn failback_open(&mut self) {
        if !std::mem::replace(&mut self.failback_closed, false) {
            return;
        }
        let now = Instant::now();
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for n in &names {
            self.input(n, Input::FailbackOpen, now);
        }
    }

    fn track(&mut self, states: Vec<(TrackKey, Option<bool>)>) {
        let now = Instant::now();
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for (key, failing) in states {
            let before = match failing {
                Some(f) => self.track_known.insert(key.clone(), f),
                None => self.track_known.remove(&key),
            };
            if before == failing {
                continue;
            }
            for n in &names {
                let input = match failing {
                    Some(f) => Input::Track {
                        key: key.clone(),
                        failing: f,
                    },
                    None => Input::TrackUnknown(key.clone()),
                };
                self.input(n, input, now);
            }
        }
    }

    /// This node's instance configuration of `g`, or why it cannot run (and whether trying
    /// again later may help).
    fn resolve(
        &self,
        g: &VrrpGroup,
        all_vips: &BTreeSet<IpAddr>,
    ) -> Result<InstanceConfig, (String, bool)> {
        let Some(node) = g.node(&self.node) else {
            return Err((
                format!("no entry for node `{}` in this group", self.node),
                false,
            ));
        };
        let primary = match node.unicast_src {
            Some(a) => a,
            // IPv6: adverts come from the interface's link-local address (RFC 5798 5.1.2.1).
            None if g.family() == Some(ModelFamily::Ipv6) => {
                match interface::ipv6_link_local(&node.interface)
                    .map_err(|e| (format!("interface {}: {e}", node.interface), true))?
                {
                    Some(a) => IpAddr::V6(a),
                    None => {
                        return Err((
                            format!(
                                "interface {} has no usable IPv6 link-local address to send adverts from (or does not exist; a new one is usable once duplicate address detection ends)",
                                node.interface
                            ),
                            true,
                        ))
                    }
                }
            }
            None => {
                let addrs = interface::ipv4_addresses(&node.interface)
                    .map_err(|e| (format!("interface {}: {e}", node.interface), true))?;
                let own: Vec<Ipv4Addr> = addrs
                    .into_iter()
                    .filter(|a| !all_vips.contains(&IpAddr::V4(*a)))
                    .collect();
                match own.first() {
                    Some(a) => IpAddr::V4(*a),
                    None => {
                        return Err((
                            format!(
                                "interface {} has no IPv4 address of its own to send adverts from (or does not exist)",
                                node.interface
                            ),
                            true,
                        ))
                    }
                }
            }
        };
        InstanceConfig::from_model(g, node, primary)
            .map(|c| {
                c.with_failback_closed(self.failback_closed)
                    .with_lower_prio_no_advert(self.strict)
            })
            .map_err(|e| (e.to_string(), false))
    }

    /// Creates (or adopts, after a restart) a group's virtual-MAC interface; why not, as the
    /// group's error. An IPv6 group's gets `primary`, the link-local address its adverts come
    /// from, unless they leave from the parent (`xmit_base`): the kernel sends from an address
    /// only out of an interface that holds it (RFC 5798 section 5.1.2.1 wants it link-local).
    fn ensure_vmac(&mut self, group: &str, v: &VmacUse, primary: IpAddr) -> Result<(), String> {
        let r = match primary {
            IpAddr::V6(src) => {
                let source = (!v.xmit_base).then_some(src);
                self.kernel
                    .vmac_ensure_v6(&v.name, &v.parent, v.mac, source)
            }
            IpAddr::V4(_) => self.kernel.vmac_ensure(&v.name, &v.parent, v.mac),
        };
        match r {
            Ok(created) => {
                let mac = crate::kernel::vmac::mac_text(v.mac);
                if created {
                    tracing::info!(group, interface = %v.name, parent = %v.parent, %mac, "virtual-MAC interface created");
                } else {
                    tracing::debug!(group, interface = %v.name, parent = %v.parent, %mac, "virtual-MAC interface already there; adopted");
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(group, interface = %v.name, error = %e, "cannot set up the virtual-MAC interface");
                Err(e.to_string())
            }
        }
    }

    /// Removes a group's virtual-MAC interface (the group is gone, or uses another one),
    /// unless another group still uses one of that name. lbd's stop leaves it, so that a
    /// restart is hitless.
    fn release_vmac(&mut self, group: &str, v: &VmacUse) {
        let in_use = self
            .groups
            .iter()
            .any(|(n, g)| n != group && g.vmac.as_ref().is_some_and(|o| o.name == v.name));
        if in_use {
            return;
        }
        match self.kernel.vmac_delete(&v.name, v.mac) {
            Ok(true) => tracing::info!(group, interface = %v.name, "virtual-MAC interface removed"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(group, interface = %v.name, error = %e, "cannot remove the virtual-MAC interface")
            }
        }
    }

    fn ensure_socket(&mut self, ifname: &str, family: Family) -> io::Result<()> {
        let key = (ifname.to_string(), family);
        if self.sockets.contains_key(&key) {
            return Ok(());
        }
        let info = interface::info(ifname)?;
        let s = FamilySocket::open(family, ifname, info.index)?;
        self.sockets.insert(key, s);
        Ok(())
    }

    /// The Shutdown event for one group that is removed or restarted: its addresses go at
    /// once (the held release of [`Input::Shutdown`] is for the director's stop).
    fn stop_group(&mut self, name: &str) {
        self.input(name, Input::Shutdown, Instant::now());
        self.input(name, Input::ReleaseNow, Instant::now());
        if let Some(g) = self.groups.get_mut(name) {
            g.instance = None;
        }
    }

    /// The Shutdown event for every group. A master keeps its addresses until it hears the new
    /// master or its bound runs out; the run loop goes on until then (see `stopping`).
    fn shutdown_all(&mut self) {
        self.stopping = Some(Instant::now());
        self.retry_at = None;
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for n in &names {
            self.input(n, Input::Shutdown, Instant::now());
        }
        self.dirty = true;
        self.publish(true);
    }

    /// A stopped master still holds addresses.
    fn releasing(&self) -> bool {
        self.groups
            .values()
            .filter_map(|g| g.instance.as_ref())
            .any(Instance::is_releasing)
    }

    /// The last status of a stopped engine.
    fn finish(&mut self) {
        self.dirty = true;
        self.publish(true);
        self.board.set_vrrp(VrrpStatus {
            scheduling: VrrpScheduling::NotRunning,
            groups: self.status().groups,
        });
    }

    fn unix_ms(&self, at: Instant) -> u64 {
        let (i0, s0) = self.anchor;
        let t = if at >= i0 {
            s0 + (at - i0)
        } else {
            s0 - (i0 - at)
        };
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn status(&self) -> VrrpStatus {
        let groups = self
            .groups
            .iter()
            .map(|(name, g)| {
                let mut s = VrrpGroupStatus {
                    name: name.clone(),
                    vrid: g.spec.vrid.get(),
                    version: g.spec.version,
                    state: VrrpGroupState::Disabled,
                    advert_interval_ms: g.spec.advert_interval_ms,
                    virtual_addresses: g
                        .spec
                        .virtual_addresses
                        .iter()
                        .map(VirtualAddress::to_string)
                        .collect(),
                    error: g.error.clone(),
                    sync_group: self.sync.of(name).map(|sg| sg.name.clone()),
                    ..VrrpGroupStatus::default()
                };
                if let Some(i) = &g.instance {
                    let cfg = i.config();
                    let c = i.counters();
                    s.state = VrrpState::from(i.state()).into();
                    s.interface = Some(cfg.interface.clone());
                    s.priority = Some(i.effective_priority());
                    s.configured_priority = Some(cfg.priority.get());
                    if i.state() == State::Backup && i.wants_master() {
                        s.sync_waiting = i.sync_waiting().map(str::to_string);
                    }
                    s.tracked = cfg
                        .trackers
                        .iter()
                        .map(|t| VrrpTrackedStatus {
                            object: t.key.to_string(),
                            weight: t.weight,
                            state: match i.tracked().get(&t.key) {
                                Some(true) => VrrpTrackedState::Failing,
                                Some(false) => VrrpTrackedState::Up,
                                None => VrrpTrackedState::Unknown,
                            },
                            detail: self
                                .group_known
                                .get(&(name.clone(), t.key.clone()))
                                .map(|(_, d)| d.clone()),
                        })
                        .collect();
                    s.primary_address = Some(cfg.primary_address.to_string());
                    let master = if i.state() == State::Master {
                        Some((cfg.primary_address, i.effective_priority()))
                    } else {
                        i.current_master()
                    };
                    s.master_address = master.map(|(a, _)| a.to_string());
                    s.master_priority = master.map(|(_, p)| p);
                    s.counters = VrrpCounters {
                        adverts_sent: c.adverts_sent,
                        adverts_received: c.adverts_received,
                        priority_zero_sent: c.priority_zero_sent,
                        priority_zero_received: c.priority_zero_received,
                        became_master: c.became_master,
                        released_master: c.released_master,
                        auth_errors: c.auth_errors,
                        checksum_errors: c.checksum_errors,
                        ttl_errors: c.ttl_errors,
                        interval_errors: c.interval_errors,
                        version_errors: c.version_errors,
                        packet_errors: c.length_errors
                            + c.type_errors
                            + c.packet_errors
                            + c.destination_errors,
                        address_list_errors: c.address_list_errors,
                        send_errors: g.send_errors,
                        kernel_errors: g.kernel_errors,
                        garps_sent: g.garps_sent,
                    };
                    s.transitions = i
                        .transitions()
                        .map(|t| {
                            let (reason, detail) = VrrpReason::of(&t.reason);
                            VrrpTransition {
                                time_unix_ms: self.unix_ms(t.at),
                                from: t.from.into(),
                                to: t.to.into(),
                                reason,
                                detail,
                            }
                        })
                        .collect();
                } else {
                    s.counters.send_errors = g.send_errors;
                    s.counters.kernel_errors = g.kernel_errors;
                }
                s
            })
            .collect();
        VrrpStatus {
            scheduling: self.scheduling,
            groups,
        }
    }

    fn publish(&mut self, force: bool) {
        if !self.dirty {
            return;
        }
        let now = Instant::now();
        if !force && now < self.last_publish + PUBLISH_EVERY {
            return;
        }
        self.board.set_vrrp(self.status());
        self.dirty = false;
        self.last_publish = now;
    }
}

/// The notify commands of a change to `to` (keepalived: `notify_<state>` without arguments,
/// then `notify` with `INSTANCE NAME STATE PRIORITY`).
pub fn notify_runs(
    group: &str,
    n: &crate::model::Notify,
    to: State,
    priority: u8,
) -> Vec<NotifyRun> {
    let (which, cmd, word) = match to {
        State::Master => ("notify_master", &n.master, "MASTER"),
        State::Backup => ("notify_backup", &n.backup, "BACKUP"),
        State::Fault => ("notify_fault", &n.fault, "FAULT"),
        State::Initialize => ("notify_stop", &n.stop, "STOP"),
    };
    let timeout = crate::model::units::millis(n.timeout_ms);
    let mut out = Vec::new();
    if let Some(c) = cmd {
        out.push(NotifyRun {
            group: group.to_string(),
            which,
            argv: crate::model::real_server::split_command(c),
            timeout,
        });
    }
    if let Some(c) = &n.any {
        let mut argv = crate::model::real_server::split_command(c);
        argv.extend([
            "INSTANCE".to_string(),
            group.to_string(),
            word.to_string(),
            priority.to_string(),
        ]);
        out.push(NotifyRun {
            group: group.to_string(),
            which: "notify",
            argv,
            timeout,
        });
    }
    out
}

/// The interfaces a group's link state matters to: its own, the tracked ones, the weighted.
fn watched_interfaces(cfg: &InstanceConfig) -> Vec<String> {
    let mut v: Vec<String> = std::iter::once(cfg.interface.clone())
        .chain(cfg.track_interfaces.iter().cloned())
        .collect();
    for t in &cfg.trackers {
        if let TrackKey::Interface(i) = &t.key {
            if !v.contains(i) {
                v.push(i.clone());
            }
        }
    }
    v
}

/// What became of an edited group.
enum Edit {
    /// The running instance took the edit.
    InPlace,
    /// It must be restarted for these changes (nothing was changed yet).
    Restart(Vec<Change>),
    /// No instance runs (disabled or failed): it is started afresh.
    NotRunning,
}

/// Changes as the log and the events give them: "priority 100→50, preempt on→off".
pub fn changes_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "initialize",
        State::Backup => "backup",
        State::Master => "master",
        State::Fault => "fault",
    }
}

pub fn reason_text(r: &Reason) -> String {
    let (reason, detail) = VrrpReason::of(r);
    reason.describe(detail.as_deref())
}

/// Adds (`add`) or removes a group's virtual routes and rules: on adding routes then rules,
/// on removing rules then routes. One the kernel refuses is logged and counted; the others
/// still go.
fn routes_apply(
    kernel: &mut dyn Kernel,
    own: &mut OwnRemovals,
    name: &str,
    g: &mut Group,
    add: bool,
    routes: &[VirtualRoute],
    rules: &[VirtualRule],
) {
    let mut fail = |what: String, e: crate::kernel::KernelError| {
        tracing::error!(group = name, what = %what, error = %e, "cannot change a virtual route or rule");
        g.kernel_errors += 1;
        g.error = Some(e.to_string());
    };
    if add {
        for r in routes {
            if let Err(e) = kernel.route(true, r) {
                fail(format!("route {r}"), e);
            }
        }
        for r in rules {
            if let Err(e) = kernel.rule(true, r) {
                fail(format!("rule {r}"), e);
            }
        }
    } else {
        for r in rules {
            match kernel.rule(false, r) {
                Ok(true) => own.rule(Instant::now(), r),
                Ok(false) => {}
                Err(e) => fail(format!("rule {r}"), e),
            }
        }
        for r in routes {
            match kernel.route(false, r) {
                Ok(true) => own.route(Instant::now(), r, r.dev.as_deref().and_then(ifindex)),
                Ok(false) => {}
                Err(e) => fail(format!("route {r}"), e),
            }
        }
    }
}

/// An interface's index, `None` when there is none of that name.
fn ifindex(name: &str) -> Option<u32> {
    interface::index(name).ok()
}

/// A running master's edited routes and rules: the ones gone are removed, the new ones added
/// (one that differs only in `no_track` stays).
fn routes_follow(
    kernel: &mut dyn Kernel,
    own: &mut OwnRemovals,
    name: &str,
    g: &mut Group,
    spec: &VrrpGroup,
) {
    if !g.routes_up {
        return;
    }
    let gone_routes: Vec<VirtualRoute> = g
        .spec
        .virtual_routes
        .iter()
        .filter(|r| !spec.virtual_routes.iter().any(|s| s.same_object(r)))
        .cloned()
        .collect();
    let gone_rules: Vec<VirtualRule> = g
        .spec
        .virtual_rules
        .iter()
        .filter(|r| !spec.virtual_rules.iter().any(|s| s.same_object(r)))
        .cloned()
        .collect();
    let new_routes: Vec<VirtualRoute> = spec
        .virtual_routes
        .iter()
        .filter(|r| !g.spec.virtual_routes.iter().any(|s| s.same_object(r)))
        .cloned()
        .collect();
    let new_rules: Vec<VirtualRule> = spec
        .virtual_rules
        .iter()
        .filter(|r| !g.spec.virtual_rules.iter().any(|s| s.same_object(r)))
        .cloned()
        .collect();
    routes_apply(kernel, own, name, g, false, &gone_routes, &gone_rules);
    routes_apply(kernel, own, name, g, true, &new_routes, &new_rules);
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
