//! In-place edits ([`Input::Reconfigure`]): what a running instance does with an edited
//! configuration, as master and as backup, and which edits it refuses for a restart.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::dataplane::vrrp::packet::{AuthPass, AuthType, Version, VrrpPacket};
use crate::dataplane::vrrp::{
    Action, Change, Input, Instance, InstanceConfig, ProtocolVersion, Reason, State, Timer,
};
use crate::model::{Centiseconds, GarpSettings, InitialState, Priority, VirtualAddress, Vrid};

const ME: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 102);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 101);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn vip(s: &str) -> VirtualAddress {
    s.parse().unwrap()
}

fn cfg(version: ProtocolVersion, interval_cs: u16, priority: u8) -> InstanceConfig {
    InstanceConfig {
        name: "VI_1".into(),
        vrid: Vrid::new(1).unwrap(),
        version,
        priority: prio(priority),
        advert_interval: Centiseconds(interval_cs),
        auth: None,
        virtual_addresses: vec![vip("192.168.10.100/24")],
        preempt: true,
        preempt_delay: Duration::ZERO,
        initial_state: InitialState::Backup,
        primary_address: ip(ME),
        unicast_peers: vec![],
        garp: GarpSettings {
            count: 5,
            repeat_delay_ms: 5_000,
            refresh_interval_ms: Some(60_000),
            interval_ms: 0,
            na_interval_ms: 0,
        },
        interface: "eth0".into(),
        track_interfaces: vec!["eth1".into()],
        trackers: vec![],
        failback_closed: false,
        lower_prio_no_advert: false,
    }
}

/// VRRPv3 at 100 ms.
fn v3(priority: u8) -> InstanceConfig {
    cfg(ProtocolVersion::V3, 10, priority)
}

fn prio(p: u8) -> Priority {
    Priority::new(u64::from(p)).unwrap()
}

/// An advert from a peer running `c` with `priority`.
fn advert(c: &InstanceConfig, priority: u8) -> VrrpPacket {
    let mut p = Instance::new(c.clone()).advert(priority);
    p.checksum = 0;
    p
}

fn rx(src: Ipv4Addr, packet: VrrpPacket) -> Input {
    Input::AdvertReceived {
        src: ip(src),
        dst: ip(GROUP),
        ttl: 255,
        packet,
    }
}

fn edit(c: &InstanceConfig) -> Input {
    Input::Reconfigure(Box::new(c.clone()))
}

fn start(c: InstanceConfig, t0: Instant) -> Instance {
    let mut i = Instance::new(c);
    i.on_input(Input::Startup, t0);
    i
}

/// A master, at the time it became one.
fn master(c: InstanceConfig, t0: Instant) -> (Instance, Instant) {
    let mut i = start(c, t0);
    let at = i.deadline(Timer::MasterDown).unwrap();
    i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert_eq!(i.state(), State::Master);
    (i, at)
}

/// Fires the Adver_Timer; returns the advert sent.
fn next_advert(i: &mut Instance) -> (Instant, VrrpPacket) {
    let at = i.deadline(Timer::Adver).unwrap();
    let out = i.on_input(Input::TimerExpired(Timer::Adver), at);
    let p = out
        .iter()
        .find_map(|a| match a {
            Action::SendAdvert { packet, .. } => Some(packet.clone()),
            _ => None,
        })
        .expect("an advert");
    (at, p)
}

fn no_state_change(out: &[Action]) {
    assert!(
        !out.iter().any(|a| matches!(
            a,
            Action::StateChanged { .. } | Action::SendAdvert { .. } | Action::SendGarp { .. }
        )),
        "{out:?}"
    );
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- the diff --------------------------------------------------------------------------------

#[test]
fn changes_name_every_field_and_say_which_need_a_restart() {
    let a = v3(100);
    assert!(a.changes(&a).is_empty());
    let mut b = a.clone();
    b.priority = prio(50);
    b.advert_interval = Centiseconds(20);
    b.preempt = false;
    b.preempt_delay = ms(5000);
    b.virtual_addresses = vec![vip("192.168.10.101/32")];
    b.track_interfaces = vec!["eth2".into()];
    b.garp.count = 1;
    let c = a.changes(&b);
    let text: Vec<String> = c.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "priority 100→50",
            "advert interval 100→200 ms",
            "preempt on→off",
            "preempt delay 0→5000 ms",
            "virtual addresses +192.168.10.101/32 -192.168.10.100/24",
            "garp count 5 repeat 5000 ms refresh 60000 ms→count 1 repeat 5000 ms refresh 60000 ms",
            "track interfaces +eth2 -eth1",
        ]
    );
    assert!(!c.iter().any(Change::needs_restart));

    let mut r = a.clone();
    r.vrid = Vrid::new(2).unwrap();
    r.interface = "eth9".into();
    r.version = ProtocolVersion::V2;
    r.priority = prio(90);
    let c = a.changes(&r);
    let text: Vec<String> = c.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "vrid 1→2",
            "interface eth0→eth9",
            "version 3→2",
            "priority 100→90"
        ]
    );
    assert_eq!(c.iter().filter(|c| c.needs_restart()).count(), 3);

    // The password is never shown.
    let mut p = cfg(ProtocolVersion::V2, 100, 100);
    let mut q = p.clone();
    q.auth = Some(AuthPass::new("secret").unwrap());
    assert_eq!(p.changes(&q)[0].to_string(), "authentication none→password");
    p.auth = Some(AuthPass::new("other").unwrap());
    assert_eq!(
        p.changes(&q)[0].to_string(),
        "authentication password changed"
    );
}

// ---- restart needed ----------------------------------------------------------------------------

#[test]
fn vrid_interface_version_and_family_are_refused_for_a_restart() {
    let t0 = Instant::now();
    type Edit = Box<dyn Fn(&mut InstanceConfig)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("vrid", Box::new(|c| c.vrid = Vrid::new(7).unwrap())),
        ("interface", Box::new(|c| c.interface = "eth9".into())),
        (
            "version",
            Box::new(|c| {
                c.version = ProtocolVersion::V2;
                c.advert_interval = Centiseconds(100);
            }),
        ),
        (
            "family",
            Box::new(|c| {
                c.primary_address = IpAddr::V6(Ipv6Addr::LOCALHOST);
                c.virtual_addresses = vec![vip("2001:db8::1/128")];
            }),
        ),
    ];
    for (what, f) in edits {
        let (mut i, _) = master(v3(150), t0);
        let before = i.config().clone();
        let adver = i.deadline(Timer::Adver);
        let mut new = before.clone();
        f(&mut new);
        new.priority = prio(120);
        let out = i.on_input(edit(&new), t0 + ms(400));
        let [Action::RestartRequired { changes }] = out.as_slice() else {
            panic!("{what}: {out:?}");
        };
        assert!(changes[0].needs_restart(), "{what}: {changes:?}");
        assert!(
            changes.contains(&Change::Priority { from: 150, to: 120 }),
            "{what}: every change is named: {changes:?}"
        );
        // Untouched: same configuration, state and timers.
        assert_eq!(i.config(), &before, "{what}");
        assert_eq!(i.state(), State::Master, "{what}");
        assert_eq!(i.deadline(Timer::Adver), adver, "{what}");
    }
}

#[test]
fn an_identical_configuration_does_nothing() {
    let t0 = Instant::now();
    let (mut i, _) = master(v3(150), t0);
    let c = i.config().clone();
    assert!(i.on_input(edit(&c), t0 + ms(500)).is_empty());
}

// ---- priority ----------------------------------------------------------------------------------

#[test]
fn master_priority_down_keeps_master_and_hands_over_when_a_higher_advert_comes() {
    let t0 = Instant::now();
    let (mut i, became) = master(v3(150), t0);
    let adver = i.deadline(Timer::Adver).unwrap();
    let mut new = i.config().clone();
    new.priority = prio(50);
    let out = i.on_input(edit(&new), became + ms(30));
    // Nothing on the wire, no timer touched: only the news.
    assert_eq!(
        out,
        vec![Action::Reconfigured {
            changes: vec![Change::Priority { from: 150, to: 50 }]
        }]
    );
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.deadline(Timer::Adver), Some(adver));
    // The next advert, on the usual rhythm, carries the new priority.
    let (at, p) = next_advert(&mut i);
    assert_eq!(at, adver);
    assert_eq!(p.priority, 50);
    // A lower advert than the old priority but higher than the new one: RFC 5798 section
    // 6.4.3, the master becomes backup.
    let peer = v3(100);
    let out = i.on_input(rx(PEER, advert(&peer, 100)), at + ms(10));
    assert_eq!(i.state(), State::Backup);
    assert!(out.contains(&Action::StateChanged {
        from: State::Master,
        to: State::Backup,
        reason: Reason::HigherPriorityMaster {
            src: ip(PEER),
            priority: 100
        }
    }));
    // It left without a priority-0 advert: the new master is already advertising.
    assert!(!out.iter().any(|a| matches!(a, Action::SendAdvert { .. })));
    assert_eq!(i.counters().priority_zero_sent, 0);
}

#[test]
fn master_priority_up_keeps_master_and_advertises_it_next() {
    let t0 = Instant::now();
    let (mut i, became) = master(v3(100), t0);
    let mut new = i.config().clone();
    new.priority = prio(200);
    let out = i.on_input(edit(&new), became + ms(10));
    no_state_change(&out);
    assert_eq!(out.len(), 1, "{out:?}");
    let (_, p) = next_advert(&mut i);
    assert_eq!(p.priority, 200);
    // An advert of 150 (higher than the old priority) no longer wins.
    let peer = v3(150);
    i.on_input(rx(PEER, advert(&peer, 150)), became + ms(150));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn backup_priority_up_recomputes_master_down_and_preempts_the_lower_master() {
    let t0 = Instant::now();
    let mut i = start(v3(100), t0);
    let peer = v3(150);
    let heard = t0 + ms(50);
    i.on_input(rx(PEER, advert(&peer, 150)), heard);
    // Master_Down_Interval at 100 = 300 ms + 156/256 * 100 ms.
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(heard + ms(300) + Duration::from_nanos(60_937_500))
    );
    let mut new = i.config().clone();
    new.priority = prio(200);
    let out = i.on_input(edit(&new), heard + ms(20));
    no_state_change(&out);
    // From the last advert, with the new skew: 56/256 * 100 ms.
    let due = heard + ms(300) + Duration::from_nanos(21_875_000);
    assert_eq!(i.deadline(Timer::MasterDown), Some(due));
    assert!(out.contains(&Action::StartTimer {
        timer: Timer::MasterDown,
        at: due
    }));
    assert_eq!(i.state(), State::Backup);
    // The master's next advert (150 < 200) is discarded: preempt.
    let next = heard + ms(100);
    i.on_input(rx(PEER, advert(&peer, 150)), next);
    assert_eq!(i.deadline(Timer::MasterDown), Some(due));
    let out = i.on_input(Input::TimerExpired(Timer::MasterDown), due);
    assert_eq!(i.state(), State::Master);
    assert!(out.contains(&Action::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::Preempted
    }));
}

#[test]
fn backup_priority_down_waits_longer_and_accepts_a_master_it_was_preempting() {
    let t0 = Instant::now();
    let mut i = start(v3(200), t0);
    let peer = v3(150);
    let heard = t0 + ms(50);
    // 150 < 200 with preempt: discarded, the timer runs from startup.
    i.on_input(rx(PEER, advert(&peer, 150)), heard);
    let startup_due = i.deadline(Timer::MasterDown).unwrap();
    assert_eq!(startup_due, t0 + ms(300) + Duration::from_nanos(21_875_000));
    // Down to 100: the master now wins; it is accepted as if just heard.
    let mut new = i.config().clone();
    new.priority = prio(100);
    let now = heard + ms(20);
    let out = i.on_input(edit(&new), now);
    no_state_change(&out);
    let due = now + ms(300) + Duration::from_nanos(60_937_500);
    assert_eq!(i.deadline(Timer::MasterDown), Some(due));
    // It does not take over at the old deadline.
    i.on_input(Input::TimerExpired(Timer::MasterDown), startup_due);
    assert_eq!(i.state(), State::Backup);
    // The master's adverts are accepted and keep it backup.
    i.on_input(rx(PEER, advert(&peer, 150)), heard + ms(100));
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(heard + ms(400) + Duration::from_nanos(60_937_500))
    );
    assert_eq!(i.current_master(), Some((ip(PEER), 150)));
}

#[test]
fn backup_priority_change_after_priority_zero_recomputes_skew_time() {
    let t0 = Instant::now();
    let mut i = start(v3(100), t0);
    let peer = v3(150);
    let heard = t0 + ms(50);
    i.on_input(rx(PEER, advert(&peer, 0)), heard);
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(heard + Duration::from_nanos(60_937_500))
    );
    let mut new = i.config().clone();
    new.priority = prio(200);
    i.on_input(edit(&new), heard + ms(1));
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(heard + Duration::from_nanos(21_875_000))
    );
    let out = i.on_input(
        Input::TimerExpired(Timer::MasterDown),
        heard + Duration::from_nanos(21_875_000),
    );
    assert!(out.contains(&Action::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::MasterStopped
    }));
}

// ---- advert interval ---------------------------------------------------------------------------

#[test]
fn master_interval_change_keeps_the_rhythm_from_the_last_advert() {
    let t0 = Instant::now();
    let (mut i, became) = master(v3(150), t0);
    assert_eq!(i.deadline(Timer::Adver), Some(became + ms(100)));
    let mut new = i.config().clone();
    new.advert_interval = Centiseconds(20);
    let out = i.on_input(edit(&new), became + ms(50));
    no_state_change(&out);
    assert_eq!(
        out[0],
        Action::Reconfigured {
            changes: vec![Change::AdvertInterval {
                from: Centiseconds(10),
                to: Centiseconds(20)
            }]
        }
    );
    // One new interval after the last advert (sent on becoming master).
    assert_eq!(i.deadline(Timer::Adver), Some(became + ms(200)));
    let (_, p) = next_advert(&mut i);
    assert_eq!(
        p.version,
        Version::V3 {
            max_adver_int: Centiseconds(20)
        }
    );
    assert_eq!(i.deadline(Timer::Adver), Some(became + ms(400)));
    // Shorter again, edited when the next advert is already late by the new interval: it
    // leaves at once (the driver fires a past deadline immediately).
    let mut new = i.config().clone();
    new.advert_interval = Centiseconds(10);
    i.on_input(edit(&new), became + ms(350));
    assert_eq!(i.deadline(Timer::Adver), Some(became + ms(300)));
}

#[test]
fn v3_backup_keeps_the_learned_interval_but_v2_recomputes() {
    let t0 = Instant::now();
    // v3: the master's 200 ms was learned; our own configured interval does not matter.
    let mut i = start(v3(100), t0);
    let mut peer = v3(150);
    peer.advert_interval = Centiseconds(20);
    let heard = t0 + ms(50);
    i.on_input(rx(PEER, advert(&peer, 150)), heard);
    let due = i.deadline(Timer::MasterDown).unwrap();
    let mut new = i.config().clone();
    new.advert_interval = Centiseconds(50);
    let out = i.on_input(edit(&new), heard + ms(10));
    no_state_change(&out);
    assert_eq!(i.master_adver_interval(), Centiseconds(20));
    assert_eq!(i.deadline(Timer::MasterDown), Some(due));

    // v3 backup that has heard no master yet: the configured interval is the one.
    let mut i = start(v3(100), t0);
    i.on_input(edit(&new), t0 + ms(10));
    assert_eq!(i.master_adver_interval(), Centiseconds(50));
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(t0 + ms(1500) + Duration::from_nanos(304_687_500))
    );

    // v2: no learning, the configured interval is Master_Adver_Interval.
    let c2 = cfg(ProtocolVersion::V2, 100, 100);
    let mut i = start(c2.clone(), t0);
    let heard = t0 + ms(50);
    i.on_input(
        rx(PEER, advert(&cfg(ProtocolVersion::V2, 100, 150), 150)),
        heard,
    );
    let mut new = c2.clone();
    new.advert_interval = Centiseconds(200);
    i.on_input(edit(&new), heard + ms(10));
    assert_eq!(i.master_adver_interval(), Centiseconds(200));
    // 3 * 2 s + 156/256 s.
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(heard + ms(6000) + Duration::from_nanos(609_375_000))
    );
    // And adverts of the old interval are now dropped (RFC 3768 section 7.1).
    let errors = i.counters().interval_errors;
    i.on_input(
        rx(PEER, advert(&cfg(ProtocolVersion::V2, 100, 150), 150)),
        heard + ms(1000),
    );
    assert_eq!(i.counters().interval_errors, errors + 1);
}

// ---- preempt -----------------------------------------------------------------------------------

#[test]
fn preempt_off_while_preempting_accepts_the_master_and_on_again_preempts() {
    let t0 = Instant::now();
    let mut i = start(v3(200), t0);
    let peer = v3(150);
    i.on_input(rx(PEER, advert(&peer, 150)), t0 + ms(50));
    assert_eq!(i.current_master(), Some((ip(PEER), 150)));
    let mut off = i.config().clone();
    off.preempt = false;
    let now = t0 + ms(60);
    let out = i.on_input(edit(&off), now);
    assert_eq!(
        out[0],
        Action::Reconfigured {
            changes: vec![Change::Preempt {
                from: true,
                to: false
            }]
        }
    );
    no_state_change(&out);
    // Accepted: the Master_Down_Timer restarts as for an advert heard now.
    let mdi = ms(300) + Duration::from_nanos(21_875_000);
    assert_eq!(i.deadline(Timer::MasterDown), Some(now + mdi));
    // It stays backup behind the lower master.
    let mut t = now;
    for _ in 0..5 {
        t += ms(100);
        i.on_input(rx(PEER, advert(&peer, 150)), t);
        assert_eq!(i.deadline(Timer::MasterDown), Some(t + mdi));
    }
    // Preempt on again: the next lower advert is discarded, and the timer runs out.
    let mut on = off.clone();
    on.preempt = true;
    let out = i.on_input(edit(&on), t + ms(10));
    no_state_change(&out);
    i.on_input(rx(PEER, advert(&peer, 150)), t + ms(100));
    assert_eq!(i.deadline(Timer::MasterDown), Some(t + mdi));
    let out = i.on_input(Input::TimerExpired(Timer::MasterDown), t + mdi);
    assert!(out.contains(&Action::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::Preempted
    }));
}

#[test]
fn preempt_delay_edit_moves_or_cancels_the_running_delay() {
    let t0 = Instant::now();
    let mut c = v3(200);
    c.preempt_delay = Duration::from_secs(5);
    let mut i = start(c.clone(), t0);
    let peer = v3(150);
    let heard = t0 + ms(50);
    i.on_input(rx(PEER, advert(&peer, 150)), heard);
    assert_eq!(
        i.deadline(Timer::PreemptDelay),
        Some(heard + Duration::from_secs(5))
    );
    // Shorter: from when it started.
    let mut new = c.clone();
    new.preempt_delay = Duration::from_secs(2);
    let out = i.on_input(edit(&new), heard + ms(500));
    no_state_change(&out);
    assert_eq!(
        i.deadline(Timer::PreemptDelay),
        Some(heard + Duration::from_secs(2))
    );
    // Off: no delay any more; the lower master's next advert is discarded (preempt).
    let mut none = new.clone();
    none.preempt_delay = Duration::ZERO;
    let out = i.on_input(edit(&none), heard + ms(600));
    assert!(out.contains(&Action::CancelTimer(Timer::PreemptDelay)));
    assert_eq!(i.deadline(Timer::PreemptDelay), None);
    let due = i.deadline(Timer::MasterDown).unwrap();
    i.on_input(rx(PEER, advert(&peer, 150)), heard + ms(700));
    assert_eq!(i.deadline(Timer::MasterDown), Some(due));
    // Preempt off cancels a running delay too.
    let mut i = start(c.clone(), t0);
    i.on_input(rx(PEER, advert(&peer, 150)), heard);
    let mut off = c.clone();
    off.preempt = false;
    i.on_input(edit(&off), heard + ms(10));
    assert_eq!(i.deadline(Timer::PreemptDelay), None);
}

// ---- virtual addresses -------------------------------------------------------------------------

#[test]
fn master_vip_added_is_added_and_announced_alone() {
    let t0 = Instant::now();
    let (mut i, became) = master(v3(150), t0);
    // Past the takeover's second burst.
    let repeat = i.deadline(Timer::GarpRepeat).unwrap();
    i.on_input(Input::TimerExpired(Timer::GarpRepeat), repeat);
    let old = vip("192.168.10.100/24");
    let new_vip = vip("192.168.10.101/32");
    let mut new = i.config().clone();
    new.virtual_addresses.push(new_vip.clone());
    let now = became + ms(6000);
    let out = i.on_input(edit(&new), now);
    assert_eq!(
        out,
        vec![
            Action::Reconfigured {
                changes: vec![Change::VirtualAddresses {
                    added: vec![new_vip.clone()],
                    removed: vec![]
                }]
            },
            Action::AddVips(vec![new_vip.clone()]),
            Action::SendGarp {
                addresses: vec![new_vip.clone()],
                count: 5
            },
            Action::StartTimer {
                timer: Timer::GarpRepeat,
                at: now + ms(5000)
            },
        ]
    );
    assert_eq!(i.state(), State::Master);
    // The second burst is for the new address only.
    let out = i.on_input(Input::TimerExpired(Timer::GarpRepeat), now + ms(5000));
    assert_eq!(
        out,
        vec![Action::SendGarp {
            addresses: vec![new_vip.clone()],
            count: 5
        }]
    );
    // The adverts list both; the refresh covers both.
    let (_, p) = next_advert(&mut i);
    assert_eq!(p.addresses, vec![old.address, new_vip.address]);
    let at = i.deadline(Timer::GarpRefresh).unwrap();
    let out = i.on_input(Input::TimerExpired(Timer::GarpRefresh), at);
    assert!(out.contains(&Action::SendGarp {
        addresses: vec![old, new_vip],
        count: 1
    }));
}

#[test]
fn master_vip_added_during_the_takeover_repeat_joins_it() {
    let t0 = Instant::now();
    let (mut i, became) = master(v3(150), t0);
    let repeat = i.deadline(Timer::GarpRepeat).unwrap();
    let new_vip = vip("192.168.10.101/32");
    let mut new = i.config().clone();
    new.virtual_addresses.push(new_vip.clone());
    let out = i.on_input(edit(&new), became + ms(100));
    assert!(!out
        .iter()
        .any(|a| matches!(a, Action::StartTimer { .. } | Action::CancelTimer(_))));
    let out = i.on_input(Input::TimerExpired(Timer::GarpRepeat), repeat);
    assert_eq!(
        out,
        vec![Action::SendGarp {
            addresses: vec![vip("192.168.10.100/24"), new_vip],
            count: 5
        }]
    );
}

#[test]
fn master_vip_removed_is_deleted_and_the_rest_left_alone() {
    let t0 = Instant::now();
    let mut c = v3(150);
    let keep = vip("192.168.10.100/24");
    let gone = vip("192.168.10.101/32");
    c.virtual_addresses = vec![keep.clone(), gone.clone()];
    let (mut i, became) = master(c.clone(), t0);
    let mut new = c.clone();
    new.virtual_addresses = vec![keep.clone()];
    let out = i.on_input(edit(&new), became + ms(100));
    assert_eq!(
        out,
        vec![
            Action::Reconfigured {
                changes: vec![Change::VirtualAddresses {
                    added: vec![],
                    removed: vec![gone.clone()]
                }]
            },
            Action::RemoveVips(vec![gone.clone()]),
        ]
    );
    // The takeover's second burst is for what is left.
    let at = i.deadline(Timer::GarpRepeat).unwrap();
    let out = i.on_input(Input::TimerExpired(Timer::GarpRepeat), at);
    assert_eq!(
        out,
        vec![Action::SendGarp {
            addresses: vec![keep.clone()],
            count: 5
        }]
    );
    let (_, p) = next_advert(&mut i);
    assert_eq!(p.addresses, vec![keep.address]);
    // Leaving master releases only what is configured now.
    i.on_input(Input::Shutdown, became + ms(2000));
    let out = i.on_input(Input::ReleaseNow, became + ms(2001));
    assert!(out.contains(&Action::RemoveVips(vec![keep.clone()])));
}

#[test]
fn backup_vip_edit_touches_no_address() {
    let t0 = Instant::now();
    let mut i = start(v3(100), t0);
    let mut new = i.config().clone();
    new.virtual_addresses = vec![vip("192.168.10.101/32")];
    let out = i.on_input(edit(&new), t0 + ms(10));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(out[0], Action::Reconfigured { .. }));
    // It takes over with the new list.
    let at = i.deadline(Timer::MasterDown).unwrap();
    let out = i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert!(out.contains(&Action::AddVips(vec![vip("192.168.10.101/32")])));
}

// ---- gratuitous ARP, tracking, auth -------------------------------------------------------------

#[test]
fn garp_edit_moves_or_stops_the_master_refresh_and_repeat() {
    let t0 = Instant::now();
    let (mut i, became) = master(v3(150), t0);
    let mut new = i.config().clone();
    new.garp.refresh_interval_ms = Some(10_000);
    new.garp.repeat_delay_ms = 0;
    let out = i.on_input(edit(&new), became + ms(100));
    no_state_change(&out);
    assert_eq!(i.deadline(Timer::GarpRefresh), Some(became + ms(10_000)));
    assert_eq!(i.deadline(Timer::GarpRepeat), None);
    new.garp.refresh_interval_ms = None;
    i.on_input(edit(&new), became + ms(200));
    assert_eq!(i.deadline(Timer::GarpRefresh), None);
    new.garp.refresh_interval_ms = Some(30_000);
    let now = became + ms(300);
    i.on_input(edit(&new), now);
    assert_eq!(i.deadline(Timer::GarpRefresh), Some(now + ms(30_000)));
}

#[test]
fn track_interface_edits() {
    let t0 = Instant::now();
    let mut i = start(v3(100), t0);
    i.on_input(Input::InterfaceDown("eth1".into()), t0 + ms(10));
    assert_eq!(i.state(), State::Fault);
    // No longer tracking the one that is down: out of Fault, through startup.
    let mut new = i.config().clone();
    new.track_interfaces = vec!["eth2".into()];
    let out = i.on_input(edit(&new), t0 + ms(20));
    assert_eq!(i.state(), State::Backup);
    assert!(out.contains(&Action::StateChanged {
        from: State::Fault,
        to: State::Backup,
        reason: Reason::InterfacesUp
    }));
    // The newly tracked interface counts.
    i.on_input(Input::InterfaceDown("eth2".into()), t0 + ms(30));
    assert_eq!(i.state(), State::Fault);
    // A master keeps mastering when its tracked set changes.
    let (mut m, became) = master(v3(150), t0);
    let mut new = m.config().clone();
    new.track_interfaces = vec!["eth1".into(), "eth3".into()];
    let out = m.on_input(edit(&new), became + ms(10));
    no_state_change(&out);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn v2_auth_edit_applies_to_the_next_advert_and_to_what_is_accepted() {
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V2, 100, 150);
    c.auth = Some(AuthPass::new("old").unwrap());
    let (mut i, became) = master(c.clone(), t0);
    let mut new = c.clone();
    new.auth = Some(AuthPass::new("new").unwrap());
    let out = i.on_input(edit(&new), became + ms(100));
    no_state_change(&out);
    assert_eq!(
        out,
        vec![Action::Reconfigured {
            changes: vec![Change::Auth {
                from_set: true,
                to_set: true
            }]
        }]
    );
    let (_, p) = next_advert(&mut i);
    let Version::V2 {
        auth_type,
        auth_data,
        ..
    } = p.version
    else {
        panic!("v2")
    };
    assert_eq!(auth_type, AuthType::SimplePassword);
    assert_eq!(auth_data, AuthPass::new("new").unwrap().wire());
    // A higher-priority advert with the old password is dropped, not obeyed.
    let errors = i.counters().auth_errors;
    i.on_input(rx(PEER, advert(&c, 200)), became + ms(1100));
    assert_eq!(i.counters().auth_errors, errors + 1);
    assert_eq!(i.state(), State::Master);
    // With the new one it is obeyed.
    i.on_input(rx(PEER, advert(&new, 200)), became + ms(1200));
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn initial_state_master_edited_to_backup_waits_a_whole_master_down_interval() {
    let t0 = Instant::now();
    let mut c = v3(100);
    c.initial_state = InitialState::Master;
    let mut i = start(c.clone(), t0);
    let short = i.deadline(Timer::MasterDown).unwrap();
    assert!(short < t0 + ms(110));
    let mut new = c.clone();
    new.initial_state = InitialState::Backup;
    i.on_input(edit(&new), t0 + ms(10));
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(t0 + ms(300) + Duration::from_nanos(60_937_500))
    );
}

#[test]
fn edits_before_startup_and_in_fault_only_store_the_configuration() {
    let t0 = Instant::now();
    let mut i = Instance::new(v3(100));
    let mut new = v3(120);
    new.virtual_addresses = vec![vip("192.168.10.101/32")];
    let out = i.on_input(edit(&new), t0);
    assert!(matches!(out.as_slice(), [Action::Reconfigured { .. }]));
    assert_eq!(i.config(), &new);
    assert_eq!(i.state(), State::Initialize);
    i.on_input(Input::InterfaceDown("eth0".into()), t0);
    i.on_input(Input::Startup, t0);
    assert_eq!(i.state(), State::Fault);
    new.priority = prio(130);
    let out = i.on_input(edit(&new), t0 + ms(10));
    assert!(matches!(out.as_slice(), [Action::Reconfigured { .. }]));
    assert_eq!(i.state(), State::Fault);
}
