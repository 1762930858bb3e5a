//! State-machine conformance: input sequences against RFC 5798 section 6.4 / RFC 3768 section
//! 6.4 (and keepalived where the RFCs are silent), checking actions and deadlines exactly.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::dataplane::vrrp::packet::{AuthPass, AuthType, Version, VrrpPacket};
use crate::dataplane::vrrp::{
    Action, Change, Input, Instance, InstanceConfig, ProtocolVersion, Reason, State, Timer,
};
use crate::model::{Centiseconds, GarpSettings, InitialState, Priority, VirtualAddress, Vrid};

const ME: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 102);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 101);
const LOWER_PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 50);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn vips() -> Vec<VirtualAddress> {
    vec!["192.168.10.100/24".parse().unwrap()]
}

fn cfg(version: ProtocolVersion, interval_cs: u16, priority: u8) -> InstanceConfig {
    InstanceConfig {
        name: "VI_1".into(),
        vrid: Vrid::new(1).unwrap(),
        version,
        priority: Priority::new(u64::from(priority)).unwrap(),
        advert_interval: Centiseconds(interval_cs),
        auth: None,
        virtual_addresses: vips(),
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

/// An advert from a peer of the configured version and interval.
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

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn start(c: InstanceConfig, t0: Instant) -> Instance {
    let mut i = Instance::new(c);
    i.on_input(Input::Startup, t0);
    i
}

/// Drives the instance to Master through its Master_Down_Timer; returns the expiry time.
fn make_master(i: &mut Instance) -> Instant {
    let at = i.deadline(Timer::MasterDown).unwrap();
    i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert_eq!(i.state(), State::Master);
    at
}

/// The actions of becoming master at `now` (RFC 5798 section 6.4.2 "Master_Down_Timer fires").
fn takeover_actions(i: &Instance, now: Instant, from: State, reason: Reason) -> Vec<Action> {
    vec![
        Action::StateChanged {
            from,
            to: State::Master,
            reason,
        },
        Action::AddVips(vips()),
        Action::SendGarp {
            addresses: vips(),
            count: 5,
        },
        Action::SendAdvert {
            packet: i.advert(i.config().priority.get()),
            src: ip(ME),
            destinations: vec![ip(GROUP)],
        },
        Action::StartTimer {
            timer: Timer::Adver,
            at: now + i.config().advert_interval.as_duration(),
        },
        Action::StartTimer {
            timer: Timer::GarpRepeat,
            at: now + Duration::from_secs(5),
        },
        Action::StartTimer {
            timer: Timer::GarpRefresh,
            at: now + Duration::from_secs(60),
        },
    ]
}

#[test]
fn v3_startup_backup_master_down_100ms_priority_90() {
    // Master_Down_Interval = 3 * 100 ms + (256 - 90) * 100 ms / 256 = 364.84375 ms.
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(ProtocolVersion::V3, 10, 90));
    let acts = i.on_input(Input::Startup, t0);
    assert_eq!(
        acts,
        vec![
            Action::StateChanged {
                from: State::Initialize,
                to: State::Backup,
                reason: Reason::Startup
            },
            Action::StartTimer {
                timer: Timer::MasterDown,
                at: t0 + ns(364_843_750)
            },
        ]
    );
    // An advert from the master restarts the timer from the time of receipt.
    let t1 = t0 + Duration::from_millis(100);
    let c = cfg(ProtocolVersion::V3, 10, 100);
    let acts = i.on_input(rx(PEER, advert(&c, 100)), t1);
    assert_eq!(
        acts,
        vec![Action::StartTimer {
            timer: Timer::MasterDown,
            at: t1 + ns(364_843_750)
        }]
    );
    assert_eq!(i.current_master(), Some((ip(PEER), 100)));
    assert_eq!(i.counters().adverts_received, 1);
    // Expiry -> Master.
    let at = t1 + ns(364_843_750);
    let acts = i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert_eq!(
        acts,
        takeover_actions(&i, at, State::Backup, Reason::MasterDown)
    );
}

#[test]
fn v3_backup_learns_master_adver_interval() {
    // RFC 5798 section 6.4.2: Master_Adver_Interval := the advert's Max Adver Int.
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 10, 90), t0);
    let fast = cfg(ProtocolVersion::V3, 1, 100); // 10 ms master
    let acts = i.on_input(rx(PEER, advert(&fast, 100)), t0);
    // 3 * 10 ms + 166 * 10 ms / 256 = 30 ms + 6.484375 ms.
    assert_eq!(
        acts,
        vec![Action::StartTimer {
            timer: Timer::MasterDown,
            at: t0 + ns(36_484_375)
        }]
    );
    assert_eq!(i.master_adver_interval(), Centiseconds(1));
    assert_eq!(i.counters().interval_errors, 1, "counted, not dropped");
    // Our own adverts still carry our configured interval.
    let at = make_master(&mut i);
    assert_eq!(
        i.deadline(Timer::Adver),
        Some(at + Duration::from_millis(100))
    );
}

#[test]
fn v2_master_down_uses_configured_interval_and_drops_mismatch() {
    // RFC 3768 section 6.1: 3 * 1 s + (256 - 90) / 256 s = 3.6484375 s.
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V2, 100, 90), t0);
    assert_eq!(i.deadline(Timer::MasterDown), Some(t0 + ns(3_648_437_500)));
    // RFC 3768 section 7.1: an advert with another interval is discarded.
    let two_s = cfg(ProtocolVersion::V2, 200, 100);
    let acts = i.on_input(rx(PEER, advert(&two_s, 100)), t0 + Duration::from_secs(1));
    assert!(acts.is_empty());
    assert_eq!(i.counters().interval_errors, 1);
    assert_eq!(i.counters().adverts_received, 0);
    assert_eq!(i.deadline(Timer::MasterDown), Some(t0 + ns(3_648_437_500)));
}

#[test]
fn priority_zero_in_backup_sets_skew_only() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 10, 90), t0);
    let c = cfg(ProtocolVersion::V3, 10, 100);
    let t1 = t0 + Duration::from_millis(50);
    let acts = i.on_input(rx(PEER, advert(&c, 0)), t1);
    // Skew_Time = 166 * 100 ms / 256 = 64.84375 ms.
    let at = t1 + ns(64_843_750);
    assert_eq!(
        acts,
        vec![Action::StartTimer {
            timer: Timer::MasterDown,
            at
        }]
    );
    assert_eq!(i.counters().priority_zero_received, 1);
    let acts = i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert_eq!(
        acts,
        takeover_actions(&i, at, State::Backup, Reason::MasterStopped)
    );
}

#[test]
fn preempt_discards_lower_priority_master() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let deadline = i.deadline(Timer::MasterDown).unwrap();
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    let acts = i.on_input(
        rx(LOWER_PEER, advert(&lower, 90)),
        t0 + Duration::from_secs(1),
    );
    assert!(acts.is_empty(), "discarded: {acts:?}");
    assert_eq!(i.deadline(Timer::MasterDown), Some(deadline));
    let acts = i.on_input(Input::TimerExpired(Timer::MasterDown), deadline);
    assert_eq!(
        acts,
        takeover_actions(&i, deadline, State::Backup, Reason::Preempted)
    );
}

#[test]
fn a_sync_group_wait_keeps_the_takeover_until_it_lifts() {
    // keepalived's "prefer backup" (see Input::SyncWait): a preemption that comes due while
    // the sync group waits leaves the instance in Backup wanting master, and re-arms
    // Master_Down_Interval; an accepted master ends the wanting; lifted, the next expiry
    // takes over with the reason it was waiting with.
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    assert!(i
        .on_input(
            Input::SyncWait(Some("VG: B does not want master".into())),
            t0
        )
        .is_empty());
    assert_eq!(i.sync_waiting(), Some("VG: B does not want master"));
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    i.on_input(
        rx(LOWER_PEER, advert(&lower, 90)),
        t0 + Duration::from_secs(1),
    );
    let due = i.deadline(Timer::MasterDown).unwrap();
    assert!(!i.wants_master());
    let acts = i.on_input(Input::TimerExpired(Timer::MasterDown), due);
    assert_eq!(i.state(), State::Backup);
    assert!(i.wants_master());
    assert_eq!(i.counters().sync_waits, 1);
    assert_eq!(
        acts,
        vec![Action::StartTimer {
            timer: Timer::MasterDown,
            at: due + i.master_down_interval(),
        }]
    );
    // A higher-priority master: it no longer wants master.
    let higher = cfg(ProtocolVersion::V3, 100, 200);
    i.on_input(rx(LOWER_PEER, advert(&higher, 200)), due + ms(10));
    assert!(!i.wants_master());
    // The lower-priority master again, the wait lifted: the next expiry preempts.
    i.on_input(rx(LOWER_PEER, advert(&lower, 90)), due + ms(20));
    i.on_input(Input::SyncWait(None), due + ms(30));
    assert_eq!(i.sync_waiting(), None);
    let at = i.deadline(Timer::MasterDown).unwrap();
    let acts = i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert_eq!(
        acts,
        takeover_actions(&i, at, State::Backup, Reason::Preempted)
    );
    assert!(i.wants_master());
}

#[test]
fn nopreempt_accepts_lower_priority_master() {
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V3, 100, 100);
    c.preempt = false;
    let mut i = start(c, t0);
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    let t1 = t0 + Duration::from_secs(1);
    let acts = i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t1);
    // 3 s + (256 - 100) * 1 s / 256 = 3.609375 s.
    assert_eq!(
        acts,
        vec![Action::StartTimer {
            timer: Timer::MasterDown,
            at: t1 + ns(3_609_375_000)
        }]
    );
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn preempt_delay_waits_then_takes_over() {
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V3, 100, 100);
    c.preempt_delay = Duration::from_secs(5);
    let mut i = start(c, t0);
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    let t1 = t0 + Duration::from_millis(300);
    let acts = i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t1);
    assert_eq!(
        acts,
        vec![
            Action::StartTimer {
                timer: Timer::MasterDown,
                at: t1 + ns(3_609_375_000)
            },
            Action::StartTimer {
                timer: Timer::PreemptDelay,
                at: t1 + Duration::from_secs(5)
            },
        ]
    );
    // While the delay runs the lower master's adverts are accepted; the delay is not restarted.
    let t2 = t1 + Duration::from_secs(1);
    let acts = i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t2);
    assert_eq!(
        acts,
        vec![Action::StartTimer {
            timer: Timer::MasterDown,
            at: t2 + ns(3_609_375_000)
        }]
    );
    // Early delivery of the expiry is ignored.
    assert!(i
        .on_input(Input::TimerExpired(Timer::PreemptDelay), t2)
        .is_empty());
    assert_eq!(i.counters().stale_timers, 1);
    let at = t1 + Duration::from_secs(5);
    let acts = i.on_input(Input::TimerExpired(Timer::PreemptDelay), at);
    let mut expected = vec![Action::CancelTimer(Timer::MasterDown)];
    expected.extend(takeover_actions(&i, at, State::Backup, Reason::Preempted));
    assert_eq!(acts, expected);
}

#[test]
fn preempt_delay_cancelled_by_higher_priority_master() {
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V3, 100, 100);
    c.preempt_delay = Duration::from_secs(5);
    let mut i = start(c, t0);
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t0);
    assert!(i.deadline(Timer::PreemptDelay).is_some());
    let higher = cfg(ProtocolVersion::V3, 100, 200);
    let t1 = t0 + Duration::from_secs(1);
    let acts = i.on_input(rx(PEER, advert(&higher, 200)), t1);
    assert_eq!(
        acts,
        vec![
            Action::StartTimer {
                timer: Timer::MasterDown,
                at: t1 + ns(3_609_375_000)
            },
            Action::CancelTimer(Timer::PreemptDelay),
        ]
    );
}

#[test]
fn two_masters_meet_the_winner_announces_at_once() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    let t2 = t1 + Duration::from_millis(250);
    let acts = i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t2);
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                packet: i.advert(100),
                src: ip(ME),
                destinations: vec![ip(GROUP)],
            },
            Action::SendGarp {
                addresses: vips(),
                count: 5
            },
            Action::StartTimer {
                timer: Timer::Adver,
                at: t2 + Duration::from_secs(1)
            },
        ]
    );
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.counters().lower_priority_master, 1);
}

#[test]
fn strict_master_discards_a_lower_priority_advert_without_answering() {
    // lower_prio_no_advert (keepalived's, on in strict mode): RFC 5798 section 6.4.3 to the
    // letter, the advert is discarded; the next advert comes on the Adver_Timer. Taken in
    // place by a running master.
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    let strict = cfg(ProtocolVersion::V3, 100, 100).with_lower_prio_no_advert(true);
    let acts = i.on_input(Input::Reconfigure(Box::new(strict)), t1);
    assert_eq!(
        acts,
        vec![Action::Reconfigured {
            changes: vec![Change::LowerPrioNoAdvert {
                from: false,
                to: true
            }]
        }]
    );
    let adver = i.deadline(Timer::Adver);
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    let acts = i.on_input(
        rx(LOWER_PEER, advert(&lower, 90)),
        t1 + Duration::from_millis(250),
    );
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.counters().lower_priority_master, 1);
    assert_eq!(
        i.deadline(Timer::Adver),
        adver,
        "the advert keeps its rhythm"
    );
}

#[test]
fn master_yields_to_higher_priority() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 90), t0);
    let t1 = make_master(&mut i);
    // The higher master advertises every 50 ms: RFC 5798 section 6.4.3 learns it.
    let higher = cfg(ProtocolVersion::V3, 5, 100);
    let t2 = t1 + Duration::from_millis(10);
    let acts = i.on_input(rx(PEER, advert(&higher, 100)), t2);
    assert_eq!(
        acts,
        vec![
            Action::CancelTimer(Timer::Adver),
            Action::CancelTimer(Timer::GarpRepeat),
            Action::CancelTimer(Timer::GarpRefresh),
            Action::RemoveVips(vips()),
            Action::StateChanged {
                from: State::Master,
                to: State::Backup,
                reason: Reason::HigherPriorityMaster {
                    src: ip(PEER),
                    priority: 100
                }
            },
            // 150 ms + 166 * 50 ms / 256 = 150 ms + 32.421875 ms.
            Action::StartTimer {
                timer: Timer::MasterDown,
                at: t2 + ns(182_421_875)
            },
        ]
    );
    assert_eq!(i.counters().released_master, 1);
}

#[test]
fn equal_priority_higher_address_wins() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    let same = cfg(ProtocolVersion::V3, 100, 100);
    // 192.168.10.50 < 192.168.10.102 (us): we stay master and re-announce.
    let acts = i.on_input(rx(LOWER_PEER, advert(&same, 100)), t1);
    assert!(matches!(acts[0], Action::SendAdvert { .. }), "{acts:?}");
    assert_eq!(i.state(), State::Master);
    // 192.168.10.200 > us: we yield.
    let higher_addr = Ipv4Addr::new(192, 168, 10, 200);
    i.on_input(rx(higher_addr, advert(&same, 100)), t1);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.current_master(), Some((ip(higher_addr), 100)));
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    // RFC 5798 section 6.4.3: send an advert, reset the Adver_Timer.
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    let other = cfg(ProtocolVersion::V3, 100, 90);
    let t2 = t1 + Duration::from_millis(400);
    let acts = i.on_input(rx(LOWER_PEER, advert(&other, 0)), t2);
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                packet: i.advert(100),
                src: ip(ME),
                destinations: vec![ip(GROUP)],
            },
            Action::StartTimer {
                timer: Timer::Adver,
                at: t2 + Duration::from_secs(1)
            },
        ]
    );
}

#[test]
fn address_owner_goes_straight_to_master() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(ProtocolVersion::V2, 100, 255));
    let acts = i.on_input(Input::Startup, t0);
    let expected = takeover_actions(&i, t0, State::Initialize, Reason::AddressOwner);
    assert!(matches!(&expected[3], Action::SendAdvert { packet, .. } if packet.priority == 255));
    assert_eq!(acts, expected);
}

#[test]
fn initial_state_master_waits_one_interval_plus_minimum_skew() {
    // keepalived vrrp_init_state: ms_down_timer = master_adver_int + VRRP_TIMER_SKEW_MIN.
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V2, 100, 100);
    c.initial_state = InitialState::Master;
    c.preempt = false; // ignored with initial state MASTER, as in keepalived
    let mut i = start(c.clone(), t0);
    let at = t0 + ns(1_003_906_250);
    assert_eq!(i.deadline(Timer::MasterDown), Some(at));
    // A lower-priority master is discarded (preempt forced on).
    let lower = cfg(ProtocolVersion::V2, 100, 90);
    assert!(i
        .on_input(
            rx(LOWER_PEER, advert(&lower, 90)),
            t0 + Duration::from_millis(500)
        )
        .is_empty());
    let acts = i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    assert_eq!(
        acts,
        takeover_actions(&i, at, State::Backup, Reason::Preempted)
    );

    // With a higher-priority master present it stays Backup.
    let mut i = start(c, t0);
    let higher = cfg(ProtocolVersion::V2, 100, 200);
    let t1 = t0 + Duration::from_millis(500);
    i.on_input(rx(PEER, advert(&higher, 200)), t1);
    assert_eq!(i.deadline(Timer::MasterDown), Some(t1 + ns(3_609_375_000)));
}

#[test]
fn failback_gate_holds_preemption_until_it_opens_even_with_initial_state_master() {
    // Connection sync's failback rule: a director that comes back (initial state MASTER,
    // higher priority) accepts the lower-priority master while the gate is closed, whatever
    // the time, and preempts the moment it opens.
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V3, 100, 100);
    c.initial_state = InitialState::Master;
    let c = c.with_failback_closed(true);
    let mut i = start(c.clone(), t0);
    let lower = cfg(ProtocolVersion::V3, 100, 90);
    let t1 = t0 + Duration::from_millis(300);
    i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t1);
    // The lower master's adverts keep it Backup meanwhile (for a minute here).
    for k in 1..=60 {
        let t = t1 + Duration::from_secs(k);
        let acts = i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t);
        assert_eq!(i.state(), State::Backup);
        assert!(acts.contains(&Action::StartTimer {
            timer: Timer::MasterDown,
            at: t + i.master_down_interval()
        }));
    }
    let at = t1 + Duration::from_millis(60_500);
    let acts = i.on_input(Input::FailbackOpen, at);
    assert_eq!(i.state(), State::Master);
    // The Master_Down_Timer the lower master's adverts kept armed goes, then the takeover.
    let mut want = vec![Action::CancelTimer(Timer::MasterDown)];
    want.extend(takeover_actions(&i, at, State::Backup, Reason::Preempted));
    assert_eq!(acts, want);
    // Opening twice does nothing more.
    assert!(i.on_input(Input::FailbackOpen, at).is_empty());

    // With no master on the link the closed gate does not delay the start-up takeover.
    let mut i = start(c.clone(), t0);
    make_master(&mut i);
    assert_eq!(i.state(), State::Master);

    // Nor the takeover from a master that went silent.
    let mut i = start(c, t0);
    i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t1);
    let down = i.deadline(Timer::MasterDown).expect("armed");
    i.on_input(Input::TimerExpired(Timer::MasterDown), down);
    assert_eq!(i.state(), State::Master);

    // Opened while its own preempt delay runs: the delay's end preempts, not the opening.
    let mut b = cfg(ProtocolVersion::V3, 100, 100);
    b.preempt_delay = Duration::from_secs(5);
    let mut i = start(b.clone().with_failback_closed(true), t0);
    let acts = i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t1);
    assert!(acts.contains(&Action::StartTimer {
        timer: Timer::PreemptDelay,
        at: t1 + Duration::from_secs(5)
    }));
    assert!(i
        .on_input(Input::FailbackOpen, t1 + Duration::from_secs(1))
        .is_empty());
    assert_eq!(i.state(), State::Backup);
    i.on_input(
        Input::TimerExpired(Timer::PreemptDelay),
        t1 + Duration::from_secs(5),
    );
    assert_eq!(i.state(), State::Master);

    // The delay ran out while the gate was closed: the opening preempts.
    let mut i = start(b.with_failback_closed(true), t0);
    i.on_input(rx(LOWER_PEER, advert(&lower, 90)), t1);
    i.on_input(
        Input::TimerExpired(Timer::PreemptDelay),
        t1 + Duration::from_secs(5),
    );
    assert_eq!(i.state(), State::Backup);
    i.on_input(Input::FailbackOpen, t1 + Duration::from_secs(6));
    assert_eq!(i.state(), State::Master);

    // A higher-priority master is never preempted, open or not.
    let mut i = start(
        cfg(ProtocolVersion::V3, 100, 100).with_failback_closed(true),
        t0,
    );
    let higher = cfg(ProtocolVersion::V3, 100, 200);
    i.on_input(rx(PEER, advert(&higher, 200)), t1);
    assert!(i.on_input(Input::FailbackOpen, t1).is_empty());
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn shutdown_from_master_sends_priority_zero_and_holds_the_addresses() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    let acts = i.on_input(Input::Shutdown, t1);
    assert_eq!(
        acts,
        vec![
            Action::CancelTimer(Timer::Adver),
            Action::CancelTimer(Timer::GarpRepeat),
            Action::CancelTimer(Timer::GarpRefresh),
            Action::SendAdvert {
                packet: i.advert(0),
                src: ip(ME),
                destinations: vec![ip(GROUP)],
            },
            Action::StateChanged {
                from: State::Master,
                to: State::Initialize,
                reason: Reason::Shutdown
            },
            // No RemoveVips: held for at most three advert intervals.
            Action::StartTimer {
                timer: Timer::Release,
                at: t1 + Duration::from_secs(3),
            },
        ]
    );
    assert!(i.is_releasing());
    assert_eq!(i.counters().priority_zero_sent, 1);
    // The bound runs out (nobody took over): the addresses go.
    let acts = i.on_input(
        Input::TimerExpired(Timer::Release),
        t1 + Duration::from_secs(3),
    );
    assert_eq!(acts, vec![Action::RemoveVips(vips())]);
    assert!(!i.is_releasing());
    assert_eq!(i.next_deadline(), None);
    // Backup shutdown only cancels its timer, and holds nothing.
    let mut b = start(cfg(ProtocolVersion::V3, 100, 90), t0);
    let acts = b.on_input(Input::Shutdown, t0);
    assert_eq!(acts[0], Action::CancelTimer(Timer::MasterDown));
    assert_eq!(b.state(), State::Initialize);
    assert!(!b.is_releasing());
    assert_eq!(b.next_deadline(), None);
}

#[test]
fn a_stopped_master_releases_when_it_hears_the_new_master() {
    let t0 = Instant::now();
    let c = cfg(ProtocolVersion::V3, 100, 100);
    let mut i = start(c.clone(), t0);
    let t1 = make_master(&mut i);
    i.on_input(Input::Shutdown, t1);
    // Another router's priority-0 advert, a wrong VRID and our own loop-back release nothing.
    let other = cfg(ProtocolVersion::V3, 100, 90);
    assert_eq!(i.on_input(rx(PEER, advert(&other, 0)), t1 + ms(1)), vec![]);
    let mut wrong = advert(&other, 90);
    wrong.vrid = Vrid::new(99).unwrap();
    assert_eq!(i.on_input(rx(PEER, wrong), t1 + ms(2)), vec![]);
    assert_eq!(i.on_input(rx(ME, advert(&c, 100)), t1 + ms(3)), vec![]);
    assert!(i.is_releasing());
    // The new master's advert (any priority but 0): the addresses go at once.
    let acts = i.on_input(rx(PEER, advert(&other, 90)), t1 + ms(300));
    assert_eq!(
        acts,
        vec![
            Action::CancelTimer(Timer::Release),
            Action::RemoveVips(vips())
        ]
    );
    assert!(!i.is_releasing());
    assert_eq!(i.next_deadline(), None);
    // Later adverts change nothing: it is stopped.
    assert_eq!(
        i.on_input(rx(PEER, advert(&other, 90)), t1 + ms(400)),
        vec![]
    );
    assert_eq!(i.counters().ignored_inactive, 1);
}

#[test]
fn release_now_and_restart_let_held_addresses_go() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    i.on_input(Input::Shutdown, t1);
    let acts = i.on_input(Input::ReleaseNow, t1 + ms(1));
    assert_eq!(
        acts,
        vec![
            Action::CancelTimer(Timer::Release),
            Action::RemoveVips(vips())
        ]
    );
    assert_eq!(i.on_input(Input::ReleaseNow, t1 + ms(2)), vec![]);
    // Started again while holding: released first, then a backup as any start.
    let mut j = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t2 = make_master(&mut j);
    j.on_input(Input::Shutdown, t2);
    let acts = j.on_input(Input::Startup, t2 + ms(5));
    assert_eq!(acts[0], Action::CancelTimer(Timer::Release));
    assert_eq!(acts[1], Action::RemoveVips(vips()));
    assert_eq!(j.state(), State::Backup);
    // The hold is bounded by 10 s whatever the interval (VRRPv2 at 255 s).
    let mut slow = cfg(ProtocolVersion::V2, 25500, 100);
    slow.garp.refresh_interval_ms = None;
    let mut k = start(slow, t0);
    let t3 = make_master(&mut k);
    k.on_input(Input::Shutdown, t3);
    assert_eq!(
        k.deadline(Timer::Release),
        Some(t3 + Duration::from_secs(10))
    );
}

#[test]
fn fault_on_tracked_interface_and_recovery() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    // Untracked interfaces do not matter.
    assert!(i
        .on_input(Input::InterfaceDown("eth9".into()), t1)
        .is_empty());
    let acts = i.on_input(Input::InterfaceDown("eth1".into()), t1);
    assert_eq!(
        acts,
        vec![
            Action::CancelTimer(Timer::Adver),
            Action::CancelTimer(Timer::GarpRepeat),
            Action::CancelTimer(Timer::GarpRefresh),
            Action::SendAdvert {
                packet: i.advert(0),
                src: ip(ME),
                destinations: vec![ip(GROUP)],
            },
            Action::RemoveVips(vips()),
            Action::StateChanged {
                from: State::Master,
                to: State::Fault,
                reason: Reason::InterfaceDown("eth1".into())
            },
        ]
    );
    // In Fault, adverts are ignored and a second interface going down changes nothing.
    let c = cfg(ProtocolVersion::V3, 100, 90);
    assert!(i.on_input(rx(PEER, advert(&c, 90)), t1).is_empty());
    assert_eq!(i.counters().ignored_inactive, 1);
    assert!(i
        .on_input(Input::InterfaceDown("eth0".into()), t1)
        .is_empty());
    assert!(i.on_input(Input::InterfaceUp("eth1".into()), t1).is_empty());
    let t2 = t1 + Duration::from_secs(2);
    let acts = i.on_input(Input::InterfaceUp("eth0".into()), t2);
    assert_eq!(
        acts,
        vec![
            Action::StateChanged {
                from: State::Fault,
                to: State::Backup,
                reason: Reason::InterfacesUp
            },
            Action::StartTimer {
                timer: Timer::MasterDown,
                at: t2 + ns(3_609_375_000)
            },
        ]
    );
    let reasons: Vec<_> = i.transitions().map(|t| (t.to, t.at)).collect();
    assert_eq!(
        reasons,
        vec![
            (State::Backup, t0),
            (State::Master, t1),
            (State::Fault, t1),
            (State::Backup, t2)
        ]
    );
}

#[test]
fn interface_down_before_startup_starts_in_fault() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(ProtocolVersion::V3, 100, 255));
    assert!(i
        .on_input(Input::InterfaceDown("eth0".into()), t0)
        .is_empty());
    let acts = i.on_input(Input::Startup, t0);
    assert_eq!(
        acts,
        vec![Action::StateChanged {
            from: State::Initialize,
            to: State::Fault,
            reason: Reason::InterfaceDown("eth0".into())
        }]
    );
    // The owner recovers straight to Master.
    let acts = i.on_input(Input::InterfaceUp("eth0".into()), t0);
    assert_eq!(
        acts,
        takeover_actions(&i, t0, State::Fault, Reason::AddressOwner)
    );
}

#[test]
fn v2_auth_mismatch_counted_and_dropped() {
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V2, 100, 90);
    c.auth = Some(AuthPass::new("1234567").unwrap());
    let mut i = start(c.clone(), t0);
    let deadline = i.deadline(Timer::MasterDown);
    let good = advert(&c, 100);
    let mut wrong_pass = good.clone();
    let mut no_auth = good.clone();
    if let Version::V2 {
        auth_data,
        auth_type,
        ..
    } = &mut wrong_pass.version
    {
        auth_data[0] = b'x';
        assert_eq!(*auth_type, AuthType::SimplePassword);
    }
    if let Version::V2 {
        auth_type,
        auth_data,
        ..
    } = &mut no_auth.version
    {
        *auth_type = AuthType::None;
        *auth_data = [0; 8];
    }
    assert!(i.on_input(rx(PEER, wrong_pass), t0).is_empty());
    assert!(i.on_input(rx(PEER, no_auth), t0).is_empty());
    assert_eq!(i.counters().auth_errors, 2);
    assert_eq!(i.deadline(Timer::MasterDown), deadline);
    assert_eq!(i.on_input(rx(PEER, good), t0).len(), 1);
    assert_eq!(i.counters().adverts_received, 1);
}

#[test]
fn ttl_wrong_vrid_version_and_checksum_are_dropped() {
    let t0 = Instant::now();
    let c = cfg(ProtocolVersion::V3, 100, 90);
    let mut i = start(c.clone(), t0);
    let deadline = i.deadline(Timer::MasterDown);
    let p = advert(&c, 100);
    // TTL 254: the sender is not on the link (RFC 5798 section 5.1.1.3).
    let acts = i.on_input(
        Input::AdvertReceived {
            src: ip(PEER),
            dst: ip(GROUP),
            ttl: 254,
            packet: p.clone(),
        },
        t0,
    );
    assert!(acts.is_empty());
    assert_eq!(i.counters().ttl_errors, 1);
    // Another VRID shares the group: ignored.
    let mut other = p.clone();
    other.vrid = Vrid::new(2).unwrap();
    assert!(i.on_input(rx(PEER, other), t0).is_empty());
    assert_eq!(i.counters().other_vrid, 1);
    // A v2 advert to a v3 instance.
    let v2 = advert(&cfg(ProtocolVersion::V2, 100, 100), 100);
    assert!(i.on_input(rx(PEER, v2), t0).is_empty());
    assert_eq!(i.counters().version_errors, 1);
    // Raw datagrams: a corrupted checksum, and a truncated message.
    let mut bytes = p.encode(ip(PEER), ip(GROUP)).unwrap();
    bytes[7] ^= 0xff;
    let dg = |bytes: Vec<u8>| Input::Datagram {
        src: ip(PEER),
        dst: ip(GROUP),
        ttl: 255,
        bytes,
    };
    assert!(i.on_input(dg(bytes.clone()), t0).is_empty());
    assert_eq!(i.counters().checksum_errors, 1);
    assert!(i.on_input(dg(bytes[..10].to_vec()), t0).is_empty());
    assert_eq!(i.counters().length_errors, 1);
    // Our own advert looped back.
    assert!(i.on_input(rx(ME, p.clone()), t0).is_empty());
    assert_eq!(i.counters().own_adverts, 1);
    assert_eq!(i.deadline(Timer::MasterDown), deadline);
    assert_eq!(i.counters().adverts_received, 0);
    // A good datagram is accepted.
    let good = p.encode(ip(PEER), ip(GROUP)).unwrap();
    assert_eq!(i.on_input(dg(good), t0).len(), 1);
    assert_eq!(i.counters().adverts_received, 1);
}

#[test]
fn unicast_peers_get_the_adverts() {
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V3, 100, 100);
    let peers = vec![ip(PEER), ip(Ipv4Addr::new(192, 168, 10, 103))];
    c.unicast_peers = peers.clone();
    let mut i = start(c.clone(), t0);
    // Multicast-addressed adverts are still accepted; unknown sources are not.
    let stranger = Ipv4Addr::new(192, 168, 10, 99);
    assert!(i.on_input(rx(stranger, advert(&c, 200)), t0).is_empty());
    assert_eq!(i.counters().unknown_peer, 1);
    // Unicast to us is accepted, unicast to another address is not.
    let to = |dst: Ipv4Addr| Input::AdvertReceived {
        src: ip(PEER),
        dst: ip(dst),
        ttl: 255,
        packet: advert(&c, 200),
    };
    assert_eq!(i.on_input(to(ME), t0).len(), 1);
    assert!(i
        .on_input(to(Ipv4Addr::new(192, 168, 10, 1)), t0)
        .is_empty());
    assert_eq!(i.counters().destination_errors, 1);
    let at = i.deadline(Timer::MasterDown).unwrap();
    let acts = i.on_input(Input::TimerExpired(Timer::MasterDown), at);
    let dests: Vec<_> = acts
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert { destinations, .. } => Some(destinations.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dests, vec![peers]);
}

#[test]
fn garp_schedule_and_adver_timer() {
    let t0 = Instant::now();
    let mut i = start(cfg(ProtocolVersion::V3, 100, 100), t0);
    let t1 = make_master(&mut i);
    // Adver_Timer: one advert per interval.
    let t2 = t1 + Duration::from_secs(1);
    let acts = i.on_input(Input::TimerExpired(Timer::Adver), t2);
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                packet: i.advert(100),
                src: ip(ME),
                destinations: vec![ip(GROUP)],
            },
            Action::StartTimer {
                timer: Timer::Adver,
                at: t2 + Duration::from_secs(1)
            },
        ]
    );
    // The repeat burst 5 s after takeover, then nothing until the refresh.
    let t3 = t1 + Duration::from_secs(5);
    assert_eq!(
        i.on_input(Input::TimerExpired(Timer::GarpRepeat), t3),
        vec![Action::SendGarp {
            addresses: vips(),
            count: 5
        }]
    );
    assert!(i
        .on_input(Input::TimerExpired(Timer::GarpRepeat), t3)
        .is_empty());
    let t4 = t1 + Duration::from_secs(60);
    assert_eq!(
        i.on_input(Input::TimerExpired(Timer::GarpRefresh), t4),
        vec![
            Action::SendGarp {
                addresses: vips(),
                count: 1
            },
            Action::StartTimer {
                timer: Timer::GarpRefresh,
                at: t4 + Duration::from_secs(60)
            },
        ]
    );
    assert_eq!(i.counters().stale_timers, 1);
}

#[test]
fn keepalived_like_garp_settings_send_no_refresh() {
    // keepalived 2.2.7 (shared/vectors/keepalived/README.md): 5 GARPs, 5 more after 5 s, no
    // periodic refresh.
    let t0 = Instant::now();
    let mut c = cfg(ProtocolVersion::V2, 100, 100);
    c.garp.refresh_interval_ms = None;
    let mut i = start(c, t0);
    let t1 = make_master(&mut i);
    assert_eq!(i.deadline(Timer::GarpRefresh), None);
    assert_eq!(
        i.deadline(Timer::GarpRepeat),
        Some(t1 + Duration::from_secs(5))
    );
}

#[test]
fn from_model_rejects_unrepresentable_settings() {
    use crate::dataplane::vrrp::ConfigError;
    use crate::model::VrrpGroup;
    let mk = |v: serde_json::Value| -> VrrpGroup { serde_json::from_value(v).unwrap() };
    let base = serde_json::json!({
        "name": "g", "vrid": 7, "virtual_addresses": ["10.0.0.1"],
        "nodes": [{"node": "a", "priority": 100, "interface": "eth0"}]
    });
    let me = ip(Ipv4Addr::new(10, 0, 0, 2));
    let g = mk(base.clone());
    let c = InstanceConfig::from_model(&g, g.node("a").unwrap(), me).unwrap();
    assert_eq!(c.version, ProtocolVersion::V2);
    assert_eq!(c.advert_interval, Centiseconds(100));
    let mut v = base.clone();
    v["advert_interval_ms"] = 1500.into();
    let g = mk(v);
    assert_eq!(
        InstanceConfig::from_model(&g, g.node("a").unwrap(), me),
        Err(ConfigError::Interval {
            version: 2,
            ms: 1500
        })
    );
    let mut v = base.clone();
    v["version"] = 3.into();
    v["advert_interval_ms"] = 41_000.into();
    let g = mk(v);
    assert!(InstanceConfig::from_model(&g, g.node("a").unwrap(), me).is_err());
    let mut v = base;
    v["auth_pass"] = "123456789".into();
    let g = mk(v);
    assert!(matches!(
        InstanceConfig::from_model(&g, g.node("a").unwrap(), me),
        Err(ConfigError::AuthPass(_))
    ));
}

#[test]
fn two_address_owners_resolve_by_address() {
    // RFC 9568 erratum 8298: an owner processes another owner's adverts (section 6.4.3).
    let t0 = Instant::now();
    let c = cfg(ProtocolVersion::V3, 100, 255);
    let mut i = start(c.clone(), t0);
    assert_eq!(i.state(), State::Master);
    let acts = i.on_input(rx(PEER, advert(&c, 255)), t0);
    assert!(matches!(acts[0], Action::SendAdvert { .. }), "{acts:?}");
    assert_eq!(i.state(), State::Master, "192.168.10.101 < us");
    i.on_input(rx(Ipv4Addr::new(192, 168, 10, 200), advert(&c, 255)), t0);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.counters().owner_conflicts, 2);
}
