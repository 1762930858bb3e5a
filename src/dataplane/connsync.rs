//! The connection-sync daemons lbd wants against those the kernel runs: the steps between them
//! (sans I/O; [`super::actor`] carries them out and reports the outcome).
//!
//! lbd runs a master and a backup daemon with the configured settings on every director, so
//! that each director always holds the connections the other schedules, whichever of them is
//! VRRP master: after a failover and after the failback alike. keepalived switches one daemon
//! per director on VRRP transitions instead, and the director that comes back has no backup
//! daemon running while it was away, so established connections break on failback.
//!
//! The rules:
//! - configured: each role runs as configured; one missing (stopped behind lbd's back) is
//!   started, one with other settings is replaced (stopped, started).
//! - the setting removed: the daemons lbd ran with the old setting are stopped; daemons with
//!   other settings are not lbd's and stay.
//! - never configured (since lbd started): the kernel's daemons are left alone.
//! - lbd stopping leaves them running: a restart of lbd is hitless.

use std::collections::BTreeMap;

use crate::control::status::{SyncDaemonReason, SyncDaemonState, SyncDaemonStatus};
use crate::ipvs::table::{SyncDaemon, SyncRole};
use crate::model::connection_sync::daemon_matches;
use crate::model::ConnectionSync;

/// One step toward the wanted daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Stop(SyncRole),
    Start(SyncDaemon),
}

/// Whether the running daemon `have` is the `want`ed one. `started` is what lbd itself last
/// started for that role: the kernel clamps the max length and reports the clamped value, so
/// the max length is held to the configuration only when lbd did not start the daemon itself
/// (adopted after a restart of lbd); once lbd has started one with these settings, it stays.
fn satisfied(want: &SyncDaemon, have: &SyncDaemon, started: Option<&SyncDaemon>) -> bool {
    daemon_matches(want, have)
        && match started {
            Some(s) => s == want,
            None => want.maxlen.is_none() || want.maxlen == have.maxlen,
        }
}

/// The steps from `have` (what the kernel runs) to what `want` asks; `prev` is the setting
/// of the last pass (to stop lbd's daemons when it is removed).
pub fn plan(
    want: Option<&ConnectionSync>,
    prev: Option<&ConnectionSync>,
    started: &BTreeMap<SyncRole, SyncDaemon>,
    have: &[SyncDaemon],
) -> Vec<Step> {
    let running = |role| have.iter().find(|d| d.role == role);
    let mut steps = Vec::new();
    for role in SyncRole::BOTH {
        match (want, prev) {
            (Some(cs), _) => {
                let w = cs.daemon(role);
                match running(role) {
                    Some(h) if satisfied(&w, h, started.get(&role)) => {}
                    Some(_) => {
                        steps.push(Step::Stop(role));
                        steps.push(Step::Start(w));
                    }
                    None => steps.push(Step::Start(w)),
                }
            }
            (None, Some(old)) => {
                if running(role).is_some_and(|h| daemon_matches(&old.daemon(role), h)) {
                    steps.push(Step::Stop(role));
                }
            }
            (None, None) => {}
        }
    }
    steps
}

/// The status of both roles once the steps were carried out: `have` is what the kernel runs
/// now, `refused` the roles whose start the kernel refused, with its message.
pub fn status(
    want: Option<&ConnectionSync>,
    have: &[SyncDaemon],
    refused: &BTreeMap<SyncRole, String>,
) -> Vec<SyncDaemonStatus> {
    SyncRole::BOTH
        .iter()
        .map(|&role| {
            if let Some(m) = refused.get(&role) {
                return SyncDaemonStatus::not_running(
                    role,
                    SyncDaemonState::Error,
                    SyncDaemonReason::StartRefused,
                    Some(m.clone()),
                );
            }
            match (have.iter().find(|d| d.role == role), want) {
                (Some(h), Some(cs)) if daemon_matches(&cs.daemon(role), h) => {
                    SyncDaemonStatus::running(h, None)
                }
                (Some(h), Some(_)) => {
                    SyncDaemonStatus::running(h, Some(SyncDaemonReason::OtherSettings))
                }
                (Some(h), None) => {
                    SyncDaemonStatus::running(h, Some(SyncDaemonReason::NotConfigured))
                }
                (None, Some(_)) => SyncDaemonStatus::not_running(
                    role,
                    SyncDaemonState::Stopped,
                    SyncDaemonReason::StartRefused,
                    None,
                ),
                (None, None) => SyncDaemonStatus::not_running(
                    role,
                    SyncDaemonState::Stopped,
                    SyncDaemonReason::NotConfigured,
                    None,
                ),
            }
        })
        .collect()
}

/// Both roles in error: the kernel could not be asked.
pub fn unavailable(message: &str) -> Vec<SyncDaemonStatus> {
    SyncRole::BOTH
        .iter()
        .map(|&role| {
            SyncDaemonStatus::not_running(
                role,
                SyncDaemonState::Error,
                SyncDaemonReason::KernelUnavailable,
                Some(message.to_string()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs() -> ConnectionSync {
        serde_json::from_str(r#"{"interface": "eth0", "sync_id": 42}"#).unwrap()
    }

    /// As the kernel reports a daemon it started with `d`'s settings.
    fn running(d: &SyncDaemon) -> SyncDaemon {
        SyncDaemon {
            maxlen: Some(d.maxlen.unwrap_or(1472)),
            group: Some(d.group.unwrap_or("224.0.0.81".parse().unwrap())),
            port: Some(d.port.unwrap_or(8848)),
            ttl: Some(d.ttl.unwrap_or(1)),
            ..d.clone()
        }
    }

    #[test]
    fn both_daemons_start_and_a_matching_pair_is_left_alone() {
        let c = cs();
        let none = BTreeMap::new();
        assert_eq!(
            plan(Some(&c), None, &none, &[]),
            [
                Step::Start(c.daemon(SyncRole::Master)),
                Step::Start(c.daemon(SyncRole::Backup))
            ]
        );
        let have = [
            running(&c.daemon(SyncRole::Master)),
            running(&c.daemon(SyncRole::Backup)),
        ];
        assert_eq!(plan(Some(&c), Some(&c), &none, &have), []);
        let st = status(Some(&c), &have, &BTreeMap::new());
        assert!(st
            .iter()
            .all(|s| s.state == SyncDaemonState::Running && s.reason.is_none()));
    }

    #[test]
    fn a_stopped_daemon_is_restarted_and_another_is_replaced() {
        let c = cs();
        let none = BTreeMap::new();
        // `ipvsadm --stop-daemon master` behind lbd's back.
        let have = [running(&c.daemon(SyncRole::Backup))];
        assert_eq!(
            plan(Some(&c), Some(&c), &none, &have),
            [Step::Start(c.daemon(SyncRole::Master))]
        );
        // Someone restarted the backup with sync id 7.
        let mut other = c.daemon(SyncRole::Backup);
        other.sync_id = 7;
        let have = [running(&c.daemon(SyncRole::Master)), running(&other)];
        assert_eq!(
            plan(Some(&c), Some(&c), &none, &have),
            [
                Step::Stop(SyncRole::Backup),
                Step::Start(c.daemon(SyncRole::Backup))
            ]
        );
        assert_eq!(
            status(Some(&c), &have, &BTreeMap::new())[1].reason,
            Some(SyncDaemonReason::OtherSettings)
        );
    }

    #[test]
    fn a_clamped_maxlen_is_not_drift_once_lbd_started_the_daemon() {
        let mut c = cs();
        c.maxlen = Some(9000);
        let w = c.daemon(SyncRole::Master);
        let clamped = SyncDaemon {
            maxlen: Some(1472),
            ..running(&w)
        };
        let have = [clamped, running(&c.daemon(SyncRole::Backup))];
        // Adopted (lbd did not start it): the max length is held to the configuration once...
        assert_eq!(
            plan(Some(&c), Some(&c), &BTreeMap::new(), &have[..1]),
            [
                Step::Stop(SyncRole::Master),
                Step::Start(w.clone()),
                Step::Start(c.daemon(SyncRole::Backup))
            ]
        );
        // ...and after lbd started it with that, the kernel's clamped value stands.
        let started: BTreeMap<_, _> = SyncRole::BOTH.iter().map(|&r| (r, c.daemon(r))).collect();
        assert_eq!(plan(Some(&c), Some(&c), &started, &have), []);
        // A changed configuration restarts it.
        let mut c2 = c.clone();
        c2.maxlen = Some(1400);
        assert_eq!(
            plan(Some(&c2), Some(&c), &started, &have),
            [
                Step::Stop(SyncRole::Master),
                Step::Start(c2.daemon(SyncRole::Master)),
                Step::Stop(SyncRole::Backup),
                Step::Start(c2.daemon(SyncRole::Backup))
            ]
        );
    }

    #[test]
    fn removing_the_setting_stops_lbds_daemons_only_and_unmanaged_is_left_alone() {
        let c = cs();
        let mut foreign = c.daemon(SyncRole::Backup);
        foreign.interface = "eth9".into();
        let have = [running(&c.daemon(SyncRole::Master)), running(&foreign)];
        assert_eq!(
            plan(None, Some(&c), &BTreeMap::new(), &have),
            [Step::Stop(SyncRole::Master)]
        );
        assert_eq!(plan(None, None, &BTreeMap::new(), &have), []);
        let st = status(None, &have, &BTreeMap::new());
        assert_eq!(st[1].reason, Some(SyncDaemonReason::NotConfigured));
        assert_eq!(st[1].state, SyncDaemonState::Running);
        let refused: BTreeMap<_, _> = [(SyncRole::Master, "No such device".to_string())].into();
        let st = status(Some(&c), &[], &refused);
        assert_eq!(
            (st[0].state, st[0].reason),
            (SyncDaemonState::Error, Some(SyncDaemonReason::StartRefused))
        );
    }
}
