//! The engine between instances, without sockets: sync groups (a member's Fault, Master and
//! Backup carried to the others, the virtual addresses following) and the spacing of
//! gratuitous ARPs. The instances run on an in-memory kernel with test-chosen times.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use super::{Engine, Group};
use crate::control::events::EventBus;
use crate::control::events::VrrpReason;
use crate::control::status::{DataplaneStatus, StatusBoard, VrrpScheduling};
use crate::dataplane::vrrp::sync_group::SyncGroups;
use crate::dataplane::vrrp::track::TrackState;
use crate::dataplane::vrrp::watch::OwnRemovals;
use crate::dataplane::vrrp::{
    Input, Instance, InstanceConfig, ProtocolVersion, Reason, State, Timer,
};
use crate::kernel::memory::MemoryKernel;
use crate::kernel::rtnl::Deletion;
use crate::model::{
    Centiseconds, GarpSettings, InitialState, Notify, Priority, VirtualAddress, VirtualRoute, Vrid,
    VrrpGroup, VrrpSyncGroup,
};

fn engine(kernel: &MemoryKernel) -> Engine {
    Engine {
        node: "lk01".into(),
        failback_closed: false,
        kernel: Box::new(kernel.clone()),
        board: StatusBoard::new(DataplaneStatus::default()),
        events: EventBus::default(),
        scheduling: VrrpScheduling::Normal,
        links: None,
        watch: None,
        own_removals: OwnRemovals::default(),
        sockets: BTreeMap::new(),
        groups: BTreeMap::new(),
        wanted: Vec::new(),
        retry_at: None,
        link_up: BTreeMap::new(),
        track_known: TrackState::new(),
        group_known: BTreeMap::new(),
        notices: None,
        dirty: false,
        last_publish: Instant::now(),
        anchor: (Instant::now(), SystemTime::now()),
        stopping: None,
        sync: SyncGroups::default(),
        strict: false,
        sync_changes: Vec::new(),
        syncing: false,
        garp_queues: BTreeMap::new(),
        garp_due: false,
    }
}

fn vip(s: &str) -> VirtualAddress {
    s.parse().unwrap()
}

fn cfg(name: &str, vrid: u64, iface: &str, track: &str, address: &str) -> InstanceConfig {
    InstanceConfig {
        name: name.into(),
        vrid: Vrid::new(vrid).unwrap(),
        version: ProtocolVersion::V2,
        priority: Priority::new(100).unwrap(),
        advert_interval: Centiseconds(100),
        auth: None,
        virtual_addresses: vec![vip(address)],
        preempt: true,
        preempt_delay: Duration::ZERO,
        initial_state: InitialState::Backup,
        primary_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        unicast_peers: vec![],
        garp: GarpSettings {
            count: 1,
            repeat_delay_ms: 0,
            refresh_interval_ms: None,
            interval_ms: 0,
            na_interval_ms: 0,
        },
        interface: iface.into(),
        track_interfaces: vec![track.into()],
        trackers: vec![],
        failback_closed: false,
        lower_prio_no_advert: false,
    }
}

fn add(e: &mut Engine, c: InstanceConfig) {
    let spec = VrrpGroup {
        id: 0,
        name: c.name.clone(),
        vrid: c.vrid,
        version: 2,
        advert_interval_ms: 1000,
        auth_pass: None,
        virtual_addresses: c.virtual_addresses.clone(),
        preempt: true,
        preempt_delay_ms: 0,
        unicast_peers: vec![],
        garp: c.garp.clone(),
        track_interfaces: vec![],
        track_interfaces_weighted: vec![],
        track_virtual_servers: vec![],
        track_scripts: vec![],
        notify: Notify::default(),
        use_vmac: false,
        vmac_name: None,
        vmac_xmit_base: false,
        virtual_routes: vec![],
        virtual_rules: vec![],
        nodes: vec![],
    };
    e.groups.insert(
        c.name.clone(),
        Group {
            spec,
            instance: Some(Instance::new(c)),
            error: None,
            send_errors: 0,
            kernel_errors: 0,
            garps_sent: 0,
            vmac: None,
            routes_up: false,
        },
    );
}

fn state(e: &Engine, name: &str) -> State {
    e.groups[name].instance.as_ref().unwrap().state()
}

fn addresses(k: &MemoryKernel, iface: &str) -> Vec<VirtualAddress> {
    k.with(|s| s.addresses.get(iface).cloned().unwrap_or_default())
}

/// When group `name`'s Master_Down_Timer runs out.
fn down_at(e: &Engine, name: &str) -> Instant {
    e.groups[name]
        .instance
        .as_ref()
        .unwrap()
        .deadline(Timer::MasterDown)
        .unwrap()
}

/// Fires every due timer of every group at `now`.
fn tick(e: &mut Engine, now: Instant) {
    e.fire_timers(now);
    e.pump_garps(now);
}

/// An engine with VI_1 (eth0, tracking trk1) and VI_2 (eth1, tracking trk2), in sync group
/// VG_1 when `synced`, both started at the returned time.
fn started(synced: bool) -> (MemoryKernel, Engine, Instant) {
    let k = MemoryKernel::default();
    let mut e = engine(&k);
    if synced {
        e.sync.set(vec![VrrpSyncGroup {
            name: "VG_1".into(),
            groups: vec!["VI_1".into(), "VI_2".into()],
            notify: Notify::default(),
        }]);
    }
    add(&mut e, cfg("VI_1", 1, "eth0", "trk1", "192.0.2.100/32"));
    add(&mut e, cfg("VI_2", 2, "eth1", "trk2", "198.51.100.100/32"));
    let t0 = Instant::now();
    e.input("VI_1", Input::Startup, t0);
    e.input("VI_2", Input::Startup, t0);
    (k, e, t0)
}

#[test]
fn a_sync_group_fails_over_and_back_as_one() {
    let (k, mut e, _) = started(true);
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Backup, State::Backup)
    );

    // VI_1's Master_Down_Timer runs out first: it waits in Backup, since VI_2 does not want
    // to be master yet (keepalived's "prefer backup"); VI_2's own timer then takes both.
    let t1 = down_at(&e, "VI_1");
    e.input("VI_1", Input::TimerExpired(Timer::MasterDown), t1);
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Backup, State::Backup)
    );
    assert!(e.groups["VI_1"].instance.as_ref().unwrap().wants_master());
    let t1 = down_at(&e, "VI_2");
    e.input("VI_2", Input::TimerExpired(Timer::MasterDown), t1);
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Master, State::Master)
    );
    assert_eq!(addresses(&k, "eth0"), [vip("192.0.2.100/32")]);
    assert_eq!(addresses(&k, "eth1"), [vip("198.51.100.100/32")]);
    let reason = e.groups["VI_1"]
        .instance
        .as_ref()
        .unwrap()
        .transitions()
        .last()
        .unwrap()
        .reason
        .clone();
    assert!(
        matches!(&reason, crate::dataplane::vrrp::Reason::SyncGroup(w) if w.contains("VG_1: VI_2")),
        "{reason:?}"
    );

    // VI_1's tracked interface fails: both go to Fault and both addresses go.
    let t2 = t1 + Duration::from_millis(300);
    e.input("VI_1", Input::InterfaceDown("trk1".into()), t2);
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Fault, State::Fault)
    );
    assert!(addresses(&k, "eth0").is_empty());
    assert!(addresses(&k, "eth1").is_empty());
    // VI_2 is only held: its own interfaces are fine, and time does not bring it back.
    tick(&mut e, t2 + Duration::from_secs(10));
    assert_eq!(state(&e, "VI_2"), State::Fault);

    // The interface comes back: both start again as Backup, and take over together.
    let t3 = t2 + Duration::from_secs(11);
    e.input("VI_1", Input::InterfaceUp("trk1".into()), t3);
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Backup, State::Backup)
    );
    tick(&mut e, t3 + Duration::from_secs(4));
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Master, State::Master)
    );
    assert_eq!(addresses(&k, "eth1"), [vip("198.51.100.100/32")]);

    // A higher-priority master takes VI_2: VI_1 becomes backup too (no split).
    let mut peer = Instance::new(cfg("VI_2", 2, "eth1", "trk2", "198.51.100.100/32")).advert(200);
    peer.checksum = 0;
    let t4 = t3 + Duration::from_secs(5);
    e.input(
        "VI_2",
        Input::AdvertReceived {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
            dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
            ttl: 255,
            packet: peer,
        },
        t4,
    );
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Backup, State::Backup)
    );
    assert!(addresses(&k, "eth0").is_empty());
    assert!(addresses(&k, "eth1").is_empty());
}

/// An advert of the other director's instance of `group` (vrid `vrid`) at `priority`.
fn peer_advert(group: &str, vrid: u64, iface: &str, priority: u8) -> Input {
    let mut p = Instance::new(cfg(group, vrid, iface, "x", "192.0.2.1/32")).advert(priority);
    p.checksum = 0;
    Input::AdvertReceived {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
        dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        ttl: 255,
        packet: p,
    }
}

#[test]
fn a_sync_group_whose_priorities_disagree_stays_with_its_master() {
    // The other director is master of both members, at priority 50 for VI_1 (below ours,
    // 100, with preempt) and 200 for VI_2 (above ours). keepalived's "prefer backup": VI_1
    // must not preempt, since VI_2 does not want to be master; taking VI_2 along would only
    // have the other director take both back at its next advert, and so on (a flap).
    let (k, mut e, t0) = started(true);
    let mut transitions = 0;
    for n in 0..30 {
        let t = t0 + Duration::from_secs(n);
        e.input("VI_1", peer_advert("VI_1", 1, "eth0", 50), t);
        e.input("VI_2", peer_advert("VI_2", 2, "eth1", 200), t);
        tick(&mut e, t + Duration::from_millis(999));
        transitions = e.groups["VI_1"]
            .instance
            .as_ref()
            .unwrap()
            .transitions()
            .count();
        assert_eq!(
            (state(&e, "VI_1"), state(&e, "VI_2")),
            (State::Backup, State::Backup),
            "second {n}"
        );
    }
    // Initialize -> Backup only; no address ever came here.
    assert_eq!(transitions, 1);
    assert!(addresses(&k, "eth0").is_empty() && addresses(&k, "eth1").is_empty());
    let i1 = e.groups["VI_1"].instance.as_ref().unwrap();
    assert!(i1.wants_master());
    assert!(i1.counters().sync_waits >= 5, "{:?}", i1.counters());
    let waiting = e
        .status()
        .groups
        .into_iter()
        .find(|g| g.name == "VI_1")
        .and_then(|g| g.sync_waiting);
    assert_eq!(waiting.as_deref(), Some("VG_1: VI_2 does not want master"));
    // VI_2 is content as backup: it is not shown as waiting.
    assert!(e
        .status()
        .groups
        .into_iter()
        .find(|g| g.name == "VI_2")
        .is_some_and(|g| g.sync_waiting.is_none()));

    // The other director goes silent: VI_1 keeps hearing nothing of VI_2's master either, so
    // VI_2's timer runs out, it wants master, and the group takes over as one.
    let t = t0 + Duration::from_secs(30);
    e.input("VI_1", peer_advert("VI_1", 1, "eth0", 50), t);
    tick(&mut e, t + Duration::from_secs(4));
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Master, State::Master)
    );
    assert_eq!(addresses(&k, "eth0"), [vip("192.0.2.100/32")]);
    assert_eq!(addresses(&k, "eth1"), [vip("198.51.100.100/32")]);
}

#[test]
fn without_a_sync_group_a_lower_priority_master_is_preempted() {
    // The control for the test above: alone, VI_1 preempts the priority-50 master.
    let k = MemoryKernel::default();
    let mut e = engine(&k);
    add(&mut e, cfg("VI_1", 1, "eth0", "trk1", "192.0.2.100/32"));
    let t0 = Instant::now();
    e.input("VI_1", Input::Startup, t0);
    for n in 0..5 {
        let t = t0 + Duration::from_secs(n);
        e.input("VI_1", peer_advert("VI_1", 1, "eth0", 50), t);
        tick(&mut e, t + Duration::from_millis(999));
    }
    assert_eq!(state(&e, "VI_1"), State::Master);
}

#[test]
fn strict_mode_is_taken_in_place_and_a_master_stops_answering_lower_priority() {
    let k = MemoryKernel::default();
    let mut e = engine(&k);
    add(&mut e, cfg("VI_1", 1, "eth0", "trk1", "192.0.2.100/32"));
    // The links as the engine last saw them (an edit looks up only the ones it does not know).
    e.link_up.insert("eth0".into(), true);
    e.link_up.insert("trk1".into(), true);
    let t0 = Instant::now();
    e.input("VI_1", Input::Startup, t0);
    tick(&mut e, t0 + Duration::from_secs(4));
    assert_eq!(state(&e, "VI_1"), State::Master);
    let sent = |e: &Engine| {
        e.groups["VI_1"]
            .instance
            .as_ref()
            .unwrap()
            .counters()
            .adverts_sent
    };

    // Not strict: a lower-priority advert is answered at once.
    let before = sent(&e);
    let t1 = t0 + Duration::from_millis(4100);
    e.input("VI_1", peer_advert("VI_1", 1, "eth0", 50), t1);
    assert_eq!(sent(&e), before + 1);

    // Strict: the running master takes it in place (no restart, still master) ...
    e.settings(crate::model::VrrpSettings {
        strict: true,
        sync_groups: vec![],
    });
    assert_eq!(state(&e, "VI_1"), State::Master);
    let i = e.groups["VI_1"].instance.as_ref().unwrap();
    assert!(i.config().lower_prio_no_advert);
    assert_eq!(i.transitions().filter(|t| t.to == State::Master).count(), 1);
    // ... and discards the next one without answering.
    let before = sent(&e);
    e.input(
        "VI_1",
        peer_advert("VI_1", 1, "eth0", 50),
        t1 + Duration::from_millis(10),
    );
    assert_eq!(sent(&e), before);
    assert_eq!(state(&e, "VI_1"), State::Master);
}

#[test]
fn without_a_sync_group_the_other_group_stays() {
    let (_k, mut e, t0) = started(false);
    tick(&mut e, t0 + Duration::from_secs(4));
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Master, State::Master)
    );
    e.input(
        "VI_1",
        Input::InterfaceDown("trk1".into()),
        t0 + Duration::from_secs(5),
    );
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Fault, State::Master)
    );
}

#[test]
fn gratuitous_arps_are_spaced_by_the_interval_without_waiting() {
    let k = MemoryKernel::default();
    let mut e = engine(&k);
    let mut c = cfg("VI_1", 1, "eth0", "trk1", "192.0.2.100/32");
    c.virtual_addresses.push(vip("192.0.2.101/32"));
    c.garp.count = 3;
    c.garp.interval_ms = 100;
    add(&mut e, c);
    let t0 = Instant::now();
    e.input("VI_1", Input::Startup, t0);
    let t1 = t0 + Duration::from_secs(4);
    let before = std::time::Instant::now();
    tick(&mut e, t1);
    // The takeover returned at once (nothing slept) with one ARP out and the rest queued.
    assert!(before.elapsed() < Duration::from_millis(50));
    assert_eq!(state(&e, "VI_1"), State::Master);
    let sent = || k.with(|s| s.garps.clone());
    assert_eq!(sent().len(), 1);
    assert_eq!(sent()[0].2, 1, "one at a time");
    assert_eq!(e.garp_deadline(), Some(t1 + Duration::from_millis(100)));
    tick(&mut e, t1 + Duration::from_millis(99));
    assert_eq!(sent().len(), 1);
    tick(&mut e, t1 + Duration::from_millis(100));
    assert_eq!(sent().len(), 2);
    // Late: one leaves, the next is again a full interval later (never a burst).
    tick(&mut e, t1 + Duration::from_millis(450));
    assert_eq!(sent().len(), 3);
    assert_eq!(e.garp_deadline(), Some(t1 + Duration::from_millis(550)));
    for i in 1..=3u64 {
        tick(&mut e, t1 + Duration::from_millis(450 + 100 * i));
    }
    // 3 rounds x 2 addresses, alternating.
    let order: Vec<String> = sent().iter().map(|g| g.1.to_string()).collect();
    assert_eq!(
        order,
        [
            "192.0.2.100/32",
            "192.0.2.101/32",
            "192.0.2.100/32",
            "192.0.2.101/32",
            "192.0.2.100/32",
            "192.0.2.101/32"
        ]
    );
    assert_eq!(e.garp_deadline(), None);
    assert_eq!(e.groups["VI_1"].garps_sent, 6);

    // Leaving master drops what is still queued for its addresses.
    let mut d = cfg("VI_2", 2, "eth1", "trk2", "198.51.100.1/32");
    d.garp.count = 5;
    d.garp.interval_ms = 1000;
    add(&mut e, d);
    let t2 = t1 + Duration::from_secs(10);
    e.input("VI_2", Input::Startup, t2);
    tick(&mut e, t2 + Duration::from_secs(4));
    let n = sent().len();
    e.input(
        "VI_2",
        Input::InterfaceDown("trk2".into()),
        t2 + Duration::from_secs(5),
    );
    tick(&mut e, t2 + Duration::from_secs(60));
    assert_eq!(sent().len(), n);
}

/// An IPv6 group's virtual-MAC interface gets the IPv6 virtual MAC (RFC 5798 section 7.3) and
/// the link-local address its adverts come from (section 5.1.2.1); with `vmac_xmit_base`
/// adverts leave from the parent and the macvlan gets none. An IPv4 one takes the IPv4 path.
#[test]
fn an_ipv6_virtual_mac_interface_gets_the_advert_source() {
    use super::VmacUse;
    let k = MemoryKernel::default();
    let mut e = engine(&k);
    let mut g: VrrpGroup = serde_json::from_value(serde_json::json!({
        "name": "VI_6", "vrid": 51, "version": 3, "use_vmac": true,
        "virtual_addresses": ["2001:db8:10::100/64"],
        "nodes": [{"node": "lk01", "priority": 150, "interface": "eth0"}]
    }))
    .unwrap();
    let v = VmacUse::of(&g, "lk01").unwrap();
    assert_eq!(v.mac, [0, 0, 0x5e, 0, 2, 51]);
    assert_eq!(v.name, "vrrp.51");
    let ll: std::net::Ipv6Addr = "fe80::ff:fe00:1".parse().unwrap();
    e.ensure_vmac("VI_6", &v, IpAddr::V6(ll)).unwrap();
    assert_eq!(
        k.with(|s| s.vmac_sources.get("vrrp.51").copied()),
        Some(Some(ll))
    );
    assert_eq!(k.with(|s| s.vmacs_created.clone()), vec!["vrrp.51"]);
    g.vmac_xmit_base = true;
    let v = VmacUse::of(&g, "lk01").unwrap();
    e.ensure_vmac("VI_6", &v, IpAddr::V6(ll)).unwrap();
    assert_eq!(
        k.with(|s| s.vmac_sources.get("vrrp.51").copied()),
        Some(None)
    );
    // Adopted, not created twice.
    assert_eq!(k.with(|s| s.vmacs_created.len()), 1);
    // IPv4: the IPv4 set-up, no advert source.
    g.virtual_addresses = vec![vip("192.0.2.100/32")];
    let v = VmacUse::of(&g, "lk01").unwrap();
    assert_eq!(v.mac, [0, 0, 0x5e, 0, 1, 51]);
    e.ensure_vmac(
        "VI_4",
        &VmacUse {
            name: "vrrp4.51".into(),
            ..v
        },
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
    )
    .unwrap();
    assert!(k.with(|s| !s.vmac_sources.contains_key("vrrp4.51")));
    assert!(k.with(|s| s.vmacs.contains_key("vrrp4.51")));
}

/// The route-group announcement of `r`'s deletion, as the kernel sends it (no `dev`).
fn route_deleted(r: &VirtualRoute) -> Deletion {
    Deletion::Route(crate::kernel::rtnl::RouteGone {
        family: libc::AF_INET as u8,
        dst: Some(r.to.address),
        dst_len: r.to.len,
        table: r.table.unwrap_or(254),
        protocol: 18,
        kind: libc::RTN_UNICAST,
        metric: r.metric.unwrap_or(0),
        oif: None,
        gateway: r.via,
    })
}

/// keepalived's tracking of a master's routes: someone deletes a tracked route, the master
/// sends priority 0, removes everything and is Backup; Skew_Time later it is master again
/// with everything back. A `no_track` route deleted changes nothing and stays deleted until
/// the next takeover. The engine's own removals (leaving master) are not taken for someone
/// else's.
#[test]
fn a_deleted_route_makes_the_master_leave_and_come_back() {
    let k = MemoryKernel::default();
    let mut e = engine(&k);
    let tracked: VirtualRoute = "10.1.0.0/16 via 192.0.2.1 table 100".parse().unwrap();
    let untracked: VirtualRoute = "10.2.0.0/16 via 192.0.2.1 table 100 no_track"
        .parse()
        .unwrap();
    add(&mut e, cfg("VI_1", 1, "lbdtest0", "trk1", "192.0.2.100/32"));
    if let Some(g) = e.groups.get_mut("VI_1") {
        g.spec.virtual_routes = vec![tracked.clone(), untracked.clone()];
    }
    let t0 = Instant::now();
    e.input("VI_1", Input::Startup, t0);
    let t1 = down_at(&e, "VI_1");
    e.input("VI_1", Input::TimerExpired(Timer::MasterDown), t1);
    assert_eq!(state(&e, "VI_1"), State::Master);
    assert_eq!(k.with(|s| s.routes.len()), 2);

    // The no_track route goes: nothing happens, and it is not put back.
    k.with(|s| s.routes.retain(|r| r.to != untracked.to));
    e.deleted(&route_deleted(&untracked), t1);
    assert_eq!(state(&e, "VI_1"), State::Master);
    assert_eq!(k.with(|s| s.routes.clone()), vec![tracked.clone()]);

    // The tracked one goes: Backup at once, priority 0 sent, addresses and routes removed.
    let zero = e.groups["VI_1"]
        .instance
        .as_ref()
        .unwrap()
        .counters()
        .priority_zero_sent;
    k.with(|s| s.routes.clear());
    let t2 = t1 + Duration::from_millis(100);
    e.deleted(&route_deleted(&tracked), t2);
    let i = e.groups["VI_1"].instance.as_ref().unwrap();
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.counters().priority_zero_sent, zero + 1);
    let reason = i.transitions().last().unwrap().reason.clone();
    assert_eq!(
        reason,
        Reason::ObjectDeleted(super::super::instance::Deleted::Route(tracked.to_string()))
    );
    let (why, detail) = VrrpReason::of(&reason);
    assert_eq!(why, VrrpReason::ObjectDeleted);
    assert_eq!(
        detail.as_deref(),
        Some("virtual route 10.1.0.0/16 via 192.0.2.1 table 100")
    );
    assert!(addresses(&k, "lbdtest0").is_empty());
    // Skew_Time (VRRPv2, priority 100: 156/256 s), not Master_Down_Interval.
    let back = i.deadline(Timer::MasterDown).unwrap();
    assert_eq!(back - t2, Duration::from_micros(609_375));
    e.input("VI_1", Input::TimerExpired(Timer::MasterDown), back);
    assert_eq!(state(&e, "VI_1"), State::Master);
    assert_eq!(k.with(|s| s.routes.len()), 2, "both back, no_track too");
    assert_eq!(addresses(&k, "lbdtest0"), [vip("192.0.2.100/32")]);

    // The engine's own removals on leaving master are announced too: not someone else's.
    let t3 = back + Duration::from_secs(1);
    e.input("VI_1", Input::Shutdown, t3);
    e.input("VI_1", Input::ReleaseNow, t3);
    assert_eq!(k.with(|s| s.routes.len()), 0);
    assert_eq!(
        e.own_removals.len(),
        2,
        "the two routes (lbdtest0 has no index)"
    );
    e.deleted(&route_deleted(&tracked), t3);
    e.deleted(&route_deleted(&untracked), t3);
    assert!(e.own_removals.is_empty());
}

/// keepalived's `set_vrrp_backup` in a sync group: a member whose route was deleted leaves
/// master, and so do the others, each with a priority-0 advert and Skew_Time; the whole group
/// is master again at the last member's Skew_Time (not a Master_Down_Interval later, which
/// "prefer backup" would make of a member left waiting for the others).
#[test]
fn a_deleted_route_in_a_sync_group_restarts_the_whole_group_at_once() {
    let (k, mut e, _) = started(true);
    let route: VirtualRoute = "10.1.0.0/16 via 192.0.2.1 table 100".parse().unwrap();
    if let Some(g) = e.groups.get_mut("VI_1") {
        g.spec.virtual_routes = vec![route.clone()];
    }
    let t1 = ["VI_1", "VI_2"]
        .iter()
        .filter_map(|n| e.groups[*n].instance.as_ref()?.deadline(Timer::MasterDown))
        .max()
        .unwrap();
    tick(&mut e, t1);
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Master, State::Master)
    );
    let zero = |e: &Engine, n: &str| {
        e.groups[n]
            .instance
            .as_ref()
            .unwrap()
            .counters()
            .priority_zero_sent
    };
    let t2 = t1 + Duration::from_secs(1);
    k.with(|s| s.routes.clear());
    e.deleted(&route_deleted(&route), t2);
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Backup, State::Backup)
    );
    assert_eq!((zero(&e, "VI_1"), zero(&e, "VI_2")), (1, 1));
    assert!(addresses(&k, "eth0").is_empty() && addresses(&k, "eth1").is_empty());
    // Skew_Time (priority 100, VRRPv2: 609 ms) later both are master again.
    tick(&mut e, t2 + Duration::from_millis(610));
    assert_eq!(
        (state(&e, "VI_1"), state(&e, "VI_2")),
        (State::Master, State::Master)
    );
    assert_eq!(addresses(&k, "eth1"), [vip("198.51.100.100/32")]);
}
