//! Connection sync's failback gate (sans I/O; [`super::actor`] feeds it what it reads from the
//! kernel and opens the VRRP engine's gate when it says so).
//!
//! A director that comes back (a reboot, a restart of lbd) and outranks the current master
//! would preempt it at once. The connections the current master forwards then reach a director
//! whose IPVS table has never seen them: each is answered with a reset. The kernel's backup sync
//! daemon fills that table, but only as the master's daemon sends each connection again: at its
//! 3rd packet and every 50th after (`net.ipv4.vs.sync_threshold`), flushed at least every 2 s.
//! So the returning director must first *receive the stream*, then preempt.
//!
//! The rule: the gate opens once
//! - this director's backup daemon has run for `hold` (`connection_sync.failback_hold_ms`), and
//! - the number of connections that came by sync has not grown for `hold`: every connection
//!   the master's daemon is still sending has arrived,
//!
//! or, whatever the stream does, after the bound ([`FAILBACK_BOUND_FACTOR`] times `hold`, at
//! most [`FAILBACK_BOUND_MAX`]): a master whose connections keep arriving (new ones every
//! second) is still preempted. Starting from no master (both away) is never held: the gate only
//! holds *preemption* (see `InstanceConfig::failback_closed`).
//!
//! A fixed hold from when VRRP first hears the master (lbd's first rule) raced the daemons: VRRP
//! starts before the first pass of the data plane starts the backup daemon, and on a slow
//! start the hold ran out before the daemon had received anything.
//!
//! What no rule can do: a connection idle for the whole wait sends no packet, so the master's
//! daemon never sends it again, and it is reset on its next packet after the failback. The
//! README says so.

use std::time::{Duration, Instant};

use crate::control::status::{FailbackReason, FailbackState, FailbackStatus};

/// The bound is this many holds (3 s: 30 s)...
pub const FAILBACK_BOUND_FACTOR: u32 = 10;
/// ...and never more than this.
pub const FAILBACK_BOUND_MAX: Duration = Duration::from_secs(600);
/// How often the data plane looks while the gate is closed.
pub const FAILBACK_LOOK_EVERY: Duration = Duration::from_millis(500);

/// When the gate opened, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub reason: FailbackReason,
    /// From the start of the wait.
    pub waited: Duration,
    /// Connections by sync when it opened.
    pub synced: u64,
}

#[derive(Debug, Clone)]
pub struct FailbackGate {
    hold: Duration,
    bound: Duration,
    started: Instant,
    /// Since when the backup daemon has been seen running without a break.
    daemon_since: Option<Instant>,
    /// The most connections by sync seen, and when that number was reached.
    most: u64,
    grew_at: Option<Instant>,
    synced: u64,
    opened: Option<Opened>,
}

impl FailbackGate {
    /// A closed gate (the wait starts `now`) for `hold`.
    pub fn new(hold: Duration, now: Instant) -> Self {
        let bound = hold
            .saturating_mul(FAILBACK_BOUND_FACTOR)
            .min(FAILBACK_BOUND_MAX)
            .max(hold);
        FailbackGate {
            hold,
            bound,
            started: now,
            daemon_since: None,
            most: 0,
            grew_at: None,
            synced: 0,
            opened: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.opened.is_some()
    }

    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// One look at `now`: whether this director's backup daemon runs, and how many connections
    /// came by sync (`None`: the kernel could not say). Returns the opening, once.
    pub fn observe(
        &mut self,
        now: Instant,
        backup_running: bool,
        synced: Option<u64>,
    ) -> Option<Opened> {
        if self.opened.is_some() {
            return None;
        }
        if backup_running {
            self.daemon_since.get_or_insert(now);
        } else {
            // Stopped (or not started yet): what it received before no longer counts as a
            // stream that is still arriving.
            self.daemon_since = None;
        }
        if let Some(n) = synced {
            self.synced = n;
            if n > self.most {
                self.most = n;
                self.grew_at = Some(now);
            }
        }
        let waited = now.saturating_duration_since(self.started);
        let quiet = self.daemon_since.map(|d| match self.grew_at {
            Some(g) if g > d => g,
            _ => d,
        });
        let reason = match quiet {
            Some(q) if now.saturating_duration_since(q) >= self.hold => {
                Some(FailbackReason::StreamReceived)
            }
            _ if waited >= self.bound => Some(FailbackReason::Bound),
            _ => None,
        };
        let opened = reason.map(|reason| Opened {
            reason,
            waited,
            synced: self.synced,
        });
        self.opened = opened;
        opened
    }

    /// What the status shows at `now`.
    pub fn status(&self, now: Instant) -> FailbackStatus {
        match self.opened {
            Some(o) => FailbackStatus {
                state: FailbackState::Open,
                reason: Some(o.reason),
                synced: o.synced,
                waited_ms: o.waited.as_millis() as u64,
                bound_ms: self.bound.as_millis() as u64,
            },
            None => FailbackStatus {
                state: FailbackState::Waiting,
                reason: None,
                synced: self.synced,
                waited_ms: now.saturating_duration_since(self.started).as_millis() as u64,
                bound_ms: self.bound.as_millis() as u64,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(3);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn opens_once_the_daemon_ran_and_the_stream_went_quiet_for_the_hold() {
        let t0 = Instant::now();
        let mut g = FailbackGate::new(HOLD, t0);
        assert_eq!(g.bound(), Duration::from_secs(30));
        // No backup daemon yet (the first pass has not started it): closed, however quiet.
        assert_eq!(g.observe(t0 + ms(2_000), false, Some(0)), None);
        assert_eq!(g.observe(t0 + ms(4_000), false, Some(0)), None);
        // It runs from 4.5 s; connections arrive until 9 s.
        assert_eq!(g.observe(t0 + ms(4_500), true, Some(0)), None);
        for (k, n) in [(5_000, 3), (6_000, 7), (7_500, 8), (9_000, 12)] {
            assert_eq!(g.observe(t0 + ms(k), true, Some(n)), None, "at {k} ms");
        }
        // A connection that closed (fewer) is not news; quiet until 12 s.
        assert_eq!(g.observe(t0 + ms(11_000), true, Some(11)), None);
        assert_eq!(g.observe(t0 + ms(11_999), true, Some(11)), None);
        assert_eq!(
            g.observe(t0 + ms(12_000), true, Some(11)),
            Some(Opened {
                reason: FailbackReason::StreamReceived,
                waited: ms(12_000),
                synced: 11
            })
        );
        assert!(g.is_open());
        // Once.
        assert_eq!(g.observe(t0 + ms(13_000), true, Some(11)), None);
        let s = g.status(t0 + ms(20_000));
        assert_eq!(
            (s.state, s.reason, s.synced, s.waited_ms),
            (
                FailbackState::Open,
                Some(FailbackReason::StreamReceived),
                11,
                12_000
            )
        );
    }

    #[test]
    fn nothing_to_receive_opens_after_the_hold_of_the_daemon() {
        let t0 = Instant::now();
        let mut g = FailbackGate::new(HOLD, t0);
        assert_eq!(g.observe(t0, true, Some(0)), None);
        assert_eq!(g.observe(t0 + ms(2_999), true, Some(0)), None);
        let o = g.observe(t0 + HOLD, true, Some(0)).expect("open");
        assert_eq!(o.reason, FailbackReason::StreamReceived);
        // A daemon kept running across a restart of lbd, with connections already synced: the
        // count it starts from is not growth.
        let mut g = FailbackGate::new(HOLD, t0);
        assert_eq!(g.observe(t0, true, Some(40)), None);
        assert!(g.observe(t0 + HOLD, true, Some(40)).is_some());
    }

    #[test]
    fn a_stream_that_keeps_growing_or_no_daemon_opens_at_the_bound() {
        let t0 = Instant::now();
        let mut g = FailbackGate::new(HOLD, t0);
        let mut n = 0;
        let mut at = t0;
        while at < t0 + ms(29_500) {
            n += 1;
            assert_eq!(g.observe(at, true, Some(n)), None);
            at += ms(500);
        }
        let o = g.observe(t0 + ms(30_000), true, Some(n + 1)).expect("open");
        assert_eq!(o.reason, FailbackReason::Bound);
        assert_eq!(g.status(t0 + ms(31_000)).bound_ms, 30_000);

        // The daemon never runs (the kernel refuses it), the counts unreadable: the bound.
        let mut g = FailbackGate::new(HOLD, t0);
        assert_eq!(g.observe(t0 + ms(29_999), false, None), None);
        let s = g.status(t0 + ms(29_999));
        assert_eq!((s.state, s.waited_ms), (FailbackState::Waiting, 29_999));
        assert_eq!(
            g.observe(t0 + ms(30_000), false, None).map(|o| o.reason),
            Some(FailbackReason::Bound)
        );
    }

    #[test]
    fn a_daemon_restarted_meanwhile_starts_its_hold_again() {
        let t0 = Instant::now();
        let mut g = FailbackGate::new(HOLD, t0);
        assert_eq!(g.observe(t0, true, Some(5)), None);
        assert_eq!(g.observe(t0 + ms(2_500), false, Some(5)), None);
        assert_eq!(g.observe(t0 + ms(3_000), true, Some(5)), None);
        assert_eq!(g.observe(t0 + ms(5_999), true, Some(5)), None);
        assert!(g.observe(t0 + ms(6_000), true, Some(5)).is_some());
    }

    #[test]
    fn the_bound_is_ten_holds_at_most_ten_minutes_and_never_below_the_hold() {
        let t0 = Instant::now();
        assert_eq!(FailbackGate::new(ms(100), t0).bound(), ms(1_000));
        assert_eq!(
            FailbackGate::new(Duration::from_secs(120), t0).bound(),
            Duration::from_secs(600)
        );
        assert_eq!(
            FailbackGate::new(Duration::from_secs(600), t0).bound(),
            Duration::from_secs(600)
        );
    }
}
