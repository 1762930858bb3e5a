//! Weighted tracking (keepalived's `weight`, [`crate::dataplane::vrrp::track`]): the effective
//! priority, what a master and a backup do when it moves, and weight 0 as Fault.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::dataplane::vrrp::packet::VrrpPacket;
use crate::dataplane::vrrp::timer::{master_down_interval, skew_time};
use crate::dataplane::vrrp::{
    Action, Input, Instance, InstanceConfig, ProtocolVersion, Reason, State, Timer, TrackKey,
    Tracker,
};
use crate::model::{Centiseconds, GarpSettings, InitialState, Priority, Vrid};

const ME: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 102);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 101);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

fn eth1() -> TrackKey {
    TrackKey::Interface("eth1".into())
}

fn vs() -> TrackKey {
    TrackKey::VirtualServer("tcp 192.0.2.1:80".into())
}

fn script() -> TrackKey {
    TrackKey::Script("chk".into())
}

/// VRRPv3 at 100 ms with `priority` and these trackers.
fn cfg(priority: u8, trackers: Vec<Tracker>) -> InstanceConfig {
    InstanceConfig {
        name: "VI_1".into(),
        vrid: Vrid::new(1).unwrap(),
        version: ProtocolVersion::V3,
        priority: Priority::new(u64::from(priority)).unwrap(),
        advert_interval: Centiseconds(10),
        auth: None,
        virtual_addresses: vec!["192.168.10.100/24".parse().unwrap()],
        preempt: true,
        preempt_delay: Duration::ZERO,
        initial_state: InitialState::Backup,
        primary_address: IpAddr::V4(ME),
        unicast_peers: vec![],
        garp: GarpSettings {
            count: 1,
            repeat_delay_ms: 0,
            refresh_interval_ms: None,
            interval_ms: 0,
            na_interval_ms: 0,
        },
        interface: "eth0".into(),
        track_interfaces: vec![],
        trackers,
        failback_closed: false,
        lower_prio_no_advert: false,
    }
}

fn t(key: TrackKey, weight: i32) -> Tracker {
    Tracker { key, weight }
}

fn advert_from_peer(priority: u8) -> Input {
    let mut p = Instance::new(cfg(100, vec![])).advert(priority);
    p.checksum = 0;
    Input::AdvertReceived {
        src: IpAddr::V4(PEER),
        dst: IpAddr::V4(GROUP),
        ttl: 255,
        packet: p,
    }
}

fn master(c: InstanceConfig, t0: Instant) -> (Instance, Instant) {
    let mut i = Instance::new(c);
    i.on_input(Input::Startup, t0);
    let at = i.deadline(Timer::MasterDown).unwrap();
    i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert_eq!(i.state(), State::Master);
    (i, at)
}

fn adverts(out: &[Action]) -> Vec<VrrpPacket> {
    out.iter()
        .filter_map(|a| match a {
            Action::SendAdvert { packet, .. } => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

fn priority_changes(out: &[Action]) -> Vec<(u8, u8, TrackKey)> {
    out.iter()
        .filter_map(|a| match a {
            Action::PriorityChanged { from, to, cause } => Some((*from, *to, cause.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_master_losing_a_weighted_interface_advertises_less_and_yields_to_a_higher_backup() {
    let t0 = Instant::now();
    let (mut m, at) = master(cfg(100, vec![t(eth1(), -20)]), t0);
    // The link is known up: nothing moves (a negative weight counts only while failing).
    let out = m.on_input(Input::InterfaceUp("eth1".into()), at);
    assert!(priority_changes(&out).is_empty(), "{out:?}");
    assert_eq!(m.effective_priority(), 100);

    let out = m.on_input(Input::InterfaceDown("eth1".into()), at);
    assert_eq!(priority_changes(&out), vec![(100, 80, eth1())]);
    // Not Fault: a weighted interface only moves the priority; the advert keeps its rhythm.
    assert_eq!(m.state(), State::Master);
    assert!(adverts(&out).is_empty(), "{out:?}");
    let due = m.deadline(Timer::Adver).unwrap();
    let out = m.on_input(Input::TimerExpired(Timer::Adver), due);
    assert_eq!(adverts(&out)[0].priority, 80);

    // A backup at 90 with preempt takes over and advertises; this master hears 90 > 80.
    let out = m.on_input(advert_from_peer(90), due);
    assert_eq!(m.state(), State::Backup);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::StateChanged {
            to: State::Backup,
            reason: Reason::HigherPriorityMaster { priority: 90, .. },
            ..
        }
    )));
    assert!(out.iter().any(|a| matches!(a, Action::RemoveVips(_))));

    // The link comes back: 100 again, higher than the master's 90; its next advert is
    // discarded (preempt) and this backup takes over when Master_Down_Timer runs out.
    let out = m.on_input(Input::InterfaceUp("eth1".into()), due);
    assert_eq!(priority_changes(&out), vec![(80, 100, eth1())]);
    let later = due + Duration::from_millis(100);
    m.on_input(advert_from_peer(90), later);
    let down = m.deadline(Timer::MasterDown).unwrap();
    let out = m.on_input(Input::TimerExpired(Timer::MasterDown), down);
    assert_eq!(m.state(), State::Master);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::StateChanged {
            reason: Reason::Preempted,
            ..
        }
    )));
    assert_eq!(adverts(&out)[0].priority, 100);
}

#[test]
fn a_backup_preempts_a_master_whose_priority_dropped() {
    let t0 = Instant::now();
    let mut b = Instance::new(cfg(90, vec![]));
    b.on_input(Input::Startup, t0);
    // The master advertises 100, then (its tracked object failing) 80.
    b.on_input(advert_from_peer(100), t0);
    assert_eq!(b.current_master().map(|(_, p)| p), Some(100));
    let t1 = t0 + Duration::from_millis(100);
    b.on_input(advert_from_peer(80), t1);
    // Discarded: the Master_Down_Timer started at t0 runs out.
    let down = b.deadline(Timer::MasterDown).unwrap();
    assert_eq!(down, t0 + b.master_down_interval());
    let out = b.on_input(Input::TimerExpired(Timer::MasterDown), down);
    assert_eq!(b.state(), State::Master);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::StateChanged {
            reason: Reason::Preempted,
            ..
        }
    )));
}

#[test]
fn a_backup_recomputes_skew_and_master_down_from_its_effective_priority() {
    let t0 = Instant::now();
    let mut b = Instance::new(cfg(200, vec![t(vs(), -150)]));
    b.on_input(Input::Startup, t0);
    b.on_input(advert_from_peer(250), t0);
    let mai = Centiseconds(10);
    assert_eq!(
        b.deadline(Timer::MasterDown),
        Some(t0 + master_down_interval(ProtocolVersion::V3, 200, mai))
    );
    let t1 = t0 + Duration::from_millis(50);
    let out = b.on_input(
        Input::Track {
            key: vs(),
            failing: true,
        },
        t1,
    );
    assert_eq!(priority_changes(&out), vec![(200, 50, vs())]);
    assert_eq!(b.effective_priority(), 50);
    assert_eq!(
        b.skew_time(),
        skew_time(ProtocolVersion::V3, 50, mai),
        "Skew_Time follows the effective priority"
    );
    // The running timer is recomputed from when it started (t0), not from t1.
    let want = t0 + master_down_interval(ProtocolVersion::V3, 50, mai);
    assert_eq!(b.deadline(Timer::MasterDown), Some(want));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::StartTimer { timer: Timer::MasterDown, at } if *at == want)));
    assert_eq!(b.state(), State::Backup);
}

#[test]
fn a_positive_weight_counts_while_up_and_only_once_known() {
    let t0 = Instant::now();
    let mut b = Instance::new(cfg(100, vec![t(script(), 30)]));
    b.on_input(Input::Startup, t0);
    // No result yet: the configured priority.
    assert_eq!(b.effective_priority(), 100);
    let up = Input::Track {
        key: script(),
        failing: false,
    };
    let out = b.on_input(up.clone(), t0);
    assert_eq!(priority_changes(&out), vec![(100, 130, script())]);
    // The same news again is no change.
    assert!(b.on_input(up, t0).is_empty());
    let out = b.on_input(
        Input::Track {
            key: script(),
            failing: true,
        },
        t0,
    );
    assert_eq!(priority_changes(&out), vec![(130, 100, script())]);
}

#[test]
fn weights_are_clamped_and_an_owner_never_moves() {
    let t0 = Instant::now();
    let mut b = Instance::new(cfg(50, vec![t(vs(), -200), t(script(), 253)]));
    b.on_input(Input::Startup, t0);
    let f = |key, failing| Input::Track { key, failing };
    b.on_input(f(vs(), true), t0);
    assert_eq!(b.effective_priority(), 1);
    b.on_input(f(vs(), false), t0);
    b.on_input(f(script(), false), t0);
    assert_eq!(b.effective_priority(), 254);

    let (mut owner, at) = {
        let mut o = Instance::new(cfg(255, vec![t(eth1(), -100)]));
        let out = o.on_input(Input::Startup, t0);
        assert_eq!(adverts(&out)[0].priority, 255);
        (o, t0)
    };
    assert_eq!(owner.state(), State::Master);
    let out = owner.on_input(Input::InterfaceDown("eth1".into()), at);
    assert!(priority_changes(&out).is_empty(), "{out:?}");
    assert_eq!(owner.effective_priority(), 255);
    assert_eq!(owner.state(), State::Master);
}

#[test]
fn weight_zero_means_fault_and_back() {
    let t0 = Instant::now();
    let (mut m, at) = master(cfg(100, vec![t(vs(), 0)]), t0);
    let out = m.on_input(
        Input::Track {
            key: vs(),
            failing: true,
        },
        at,
    );
    assert_eq!(m.state(), State::Fault);
    // A master leaving for Fault says so with priority 0 and drops the addresses.
    assert_eq!(adverts(&out)[0].priority, 0);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::StateChanged {
            to: State::Fault,
            reason: Reason::TrackFailed(k),
            ..
        } if k == "virtual server tcp 192.0.2.1:80"
    )));
    assert!(out.iter().any(|a| matches!(a, Action::RemoveVips(_))));
    let out = m.on_input(
        Input::Track {
            key: vs(),
            failing: false,
        },
        at,
    );
    assert_eq!(m.state(), State::Backup);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::StateChanged {
            from: State::Fault,
            to: State::Backup,
            ..
        }
    )));
}

#[test]
fn a_fault_tracker_failing_before_startup_starts_in_fault() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(100, vec![t(script(), 0)]));
    let out = i.on_input(
        Input::Track {
            key: script(),
            failing: true,
        },
        t0,
    );
    assert!(out.is_empty(), "nothing while Initialize: {out:?}");
    i.on_input(Input::Startup, t0);
    assert_eq!(i.state(), State::Fault);
}

#[test]
fn untracked_objects_are_ignored_and_edits_forget_removed_trackers() {
    let t0 = Instant::now();
    let c = cfg(100, vec![t(vs(), -40)]);
    let (mut m, at) = master(c.clone(), t0);
    let out = m.on_input(
        Input::Track {
            key: script(),
            failing: true,
        },
        at,
    );
    assert!(out.is_empty(), "{out:?}");
    m.on_input(
        Input::Track {
            key: vs(),
            failing: true,
        },
        at,
    );
    assert_eq!(m.effective_priority(), 60);
    // The tracker removed: back to the configured priority, still master.
    let mut edited = c.clone();
    edited.trackers.clear();
    let out = m.on_input(Input::Reconfigure(Box::new(edited)), at);
    assert!(out.iter().any(|a| matches!(a, Action::Reconfigured { changes } if changes.iter().any(|c| c.to_string() == "tracked -virtual server tcp 192.0.2.1:80 weight -40"))), "{out:?}");
    assert_eq!(m.effective_priority(), 100);
    assert!(m.tracked().is_empty());
    assert_eq!(m.state(), State::Master);
    // Re-weighted to 0 while failing: Fault.
    let mut zero = c.clone();
    zero.trackers = vec![t(vs(), 0)];
    m.on_input(Input::Reconfigure(Box::new(c)), at);
    m.on_input(
        Input::Track {
            key: vs(),
            failing: true,
        },
        at,
    );
    m.on_input(Input::Reconfigure(Box::new(zero)), at);
    assert_eq!(m.state(), State::Fault);
}

#[test]
fn an_object_no_longer_known_counts_neither_way() {
    let t0 = Instant::now();
    let mut b = Instance::new(cfg(100, vec![t(vs(), -40), t(script(), 0)]));
    b.on_input(Input::Startup, t0);
    b.on_input(
        Input::Track {
            key: vs(),
            failing: true,
        },
        t0,
    );
    assert_eq!(b.effective_priority(), 60);
    let out = b.on_input(Input::TrackUnknown(vs()), t0);
    assert_eq!(priority_changes(&out), vec![(60, 100, vs())]);
    assert!(!b.tracked().contains_key(&vs()));
    // A weight-0 object that fails, then is unknown: out of Fault.
    b.on_input(
        Input::Track {
            key: script(),
            failing: true,
        },
        t0,
    );
    assert_eq!(b.state(), State::Fault);
    b.on_input(Input::TrackUnknown(script()), t0);
    assert_eq!(b.state(), State::Backup);
    // Unknown twice is no news.
    assert!(b.on_input(Input::TrackUnknown(script()), t0).is_empty());
}

/// keepalived's tracking of a master's own objects (`set_vrrp_backup`): a deletion makes a
/// master send priority 0, remove its addresses and become Backup with its Master_Down_Timer
/// at Skew_Time; it then takes over again unless it hears a master first. A backup ignores it.
#[test]
fn a_deleted_object_makes_the_master_leave_for_skew_time() {
    use crate::dataplane::vrrp::instance::Deleted;
    let t0 = Instant::now();
    let (mut i, t1) = master(cfg(150, vec![]), t0);
    let what = Deleted::Route("10.1.0.0/16 via 192.168.10.1 table 100".into());
    let out = i.on_input(Input::ObjectDeleted(what.clone()), t1);
    let zero = out
        .iter()
        .position(|a| matches!(a, Action::SendAdvert { packet, .. } if packet.priority == 0));
    let removed = out
        .iter()
        .position(|a| matches!(a, Action::RemoveVips(v) if v.len() == 1));
    let changed = out.iter().position(|a| {
        *a == Action::StateChanged {
            from: State::Master,
            to: State::Backup,
            reason: Reason::ObjectDeleted(what.clone()),
        }
    });
    assert!(
        matches!((zero, removed, changed), (Some(z), Some(r), Some(c)) if z < r && r < c),
        "{out:?}"
    );
    let skew = skew_time(ProtocolVersion::V3, 150, Centiseconds(10));
    assert_eq!(i.deadline(Timer::MasterDown), Some(t1 + skew));
    assert!(i.deadline(Timer::Adver).is_none());
    // A backup (or a master's second deletion notice) does nothing.
    assert!(i
        .on_input(Input::ObjectDeleted(what.clone()), t1)
        .is_empty());
    // Skew_Time later: master again, the addresses back.
    let out = i.on_input(Input::TimerExpired(Timer::MasterDown), t1 + skew);
    assert_eq!(i.state(), State::Master);
    assert!(out.iter().any(|a| matches!(a, Action::AddVips(_))));
    // A lower-priority peer's advert meanwhile is preempted (the timer runs on); a
    // higher-priority one (one whose preempt took over) keeps this one Backup.
    let (mut j, t2) = master(cfg(150, vec![]), t0);
    j.on_input(Input::ObjectDeleted(what), t2);
    j.on_input(advert_from_peer(100), t2 + Duration::from_millis(5));
    assert_eq!(j.deadline(Timer::MasterDown), Some(t2 + skew));
    j.on_input(advert_from_peer(200), t2 + Duration::from_millis(5));
    assert_eq!(j.state(), State::Backup);
    assert_eq!(
        j.deadline(Timer::MasterDown),
        Some(
            t2 + Duration::from_millis(5)
                + master_down_interval(ProtocolVersion::V3, 150, Centiseconds(10))
        )
    );
}
