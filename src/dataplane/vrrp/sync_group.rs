//! VRRP sync groups (keepalived `vrrp_sync_group`): groups that fail over together. Sans-IO:
//! given a member's transition and what every member is now, it says which [`Input`]s the
//! other members get; the engine feeds them.
//!
//! The rules (keepalived 2.x, `vrrp_sync.c` and `vrrp_track.c`):
//!
//! - **Fault**: while one member is in Fault of its own (an interface, a weight-0 tracked
//!   object), every other member is held in Fault ([`Input::SyncHold`]); a master among them
//!   hands over with a priority-0 advert, as on its own Fault. When no member is faulty any
//!   more, the held ones start again (Backup, or Master for an address owner).
//! - **Master**: when a member becomes master (for a reason of its own: its Master_Down_Timer,
//!   a preemption, a priority-0 advert of the master), the members in Backup become master at
//!   once ([`Input::SyncMaster`]).
//! - **Backup**: when a master member becomes backup (a higher-priority master), the other
//!   masters become backup too ([`Input::SyncBackup`]; no priority-0 advert, as keepalived).
//!   When it left because one of its objects was deleted, the others leave as it did, with a
//!   priority-0 advert and Skew_Time to come back ([`Input::SyncRestart`], keepalived's
//!   `set_vrrp_backup`).
//!
//! - **Prefer backup**: a member may take over (its Master_Down_Timer, a preemption) only
//!   when every other member is master or wants to be (keepalived `vrrp_sync_can_goto_master`:
//!   "prefer backup state to avoid thrashing"). Otherwise it waits in Backup
//!   ([`Input::SyncWait`]) and looks again after Master_Down_Interval. When the directors'
//!   priorities disagree (this director outranks the other in one member and not in another),
//!   the group stays with the current master instead of flapping. When the other director
//!   dies, every member's timer runs out, and the last one to want master takes the group.
//!
//! A transition a sync group caused (reason [`Reason::SyncGroup`]) moves nobody else, so one
//! change settles in one round.
//!
//! The whole sync group's state (for its notify commands): Fault when a member is, Master
//! when every member is, Backup otherwise (Initialize when every member is stopped).

use std::collections::BTreeMap;

use super::engine::{notify_runs, NotifyRun};
use super::instance::{Input, Reason, State};
use crate::model::VrrpSyncGroup;

/// What the coordinator needs to know of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberView {
    pub state: State,
    /// In Fault for a reason of its own ([`super::Instance::own_fault`]).
    pub own_fault: bool,
    /// Held in Fault by its sync group ([`super::Instance::sync_held`]).
    pub held: bool,
    /// Master, or would be if its sync group let it ([`super::Instance::wants_master`]).
    pub wants_master: bool,
    /// Kept from taking over by its sync group ([`super::Instance::sync_waiting`]).
    pub waiting: bool,
}

/// The sync groups of the configuration and each one's last whole-group state.
#[derive(Debug, Default)]
pub struct SyncGroups {
    groups: Vec<VrrpSyncGroup>,
    states: BTreeMap<String, State>,
}

impl SyncGroups {
    /// Takes a new list of sync groups; a sync group that stays keeps its last state.
    pub fn set(&mut self, groups: Vec<VrrpSyncGroup>) {
        self.states
            .retain(|name, _| groups.iter().any(|g| &g.name == name));
        self.groups = groups;
    }

    pub fn groups(&self) -> &[VrrpSyncGroup] {
        &self.groups
    }

    /// The sync group `member` (a VRRP group's name) is in.
    pub fn of(&self, member: &str) -> Option<&VrrpSyncGroup> {
        self.groups
            .iter()
            .find(|g| g.groups.iter().any(|m| m == member))
    }

    /// What the other members get after `member` went `from` -> `to` for `reason`.
    pub fn follow(
        &self,
        member: &str,
        from: State,
        to: State,
        reason: &Reason,
        view: impl Fn(&str) -> Option<MemberView>,
    ) -> Vec<(String, Input)> {
        let mut out = Vec::new();
        if matches!(reason, Reason::SyncGroup(_)) {
            return out;
        }
        let Some(sg) = self.of(member) else {
            return out;
        };
        for other in sg.groups.iter().filter(|m| *m != member) {
            let Some(v) = view(other) else { continue };
            match (from, to, v.state) {
                (_, State::Master, State::Backup) => out.push((
                    other.clone(),
                    Input::SyncMaster(format!("{}: {member} became master", sg.name)),
                )),
                (State::Master, State::Backup, State::Master) => {
                    let why = format!("{}: {member} became backup", sg.name);
                    out.push((
                        other.clone(),
                        if matches!(reason, Reason::ObjectDeleted(_)) {
                            Input::SyncRestart(why)
                        } else {
                            Input::SyncBackup(why)
                        },
                    ));
                }
                _ => {}
            }
        }
        out
    }

    /// The holds that differ from what each member should have: held while another member of
    /// its sync group is faulty of its own.
    pub fn holds(&self, view: impl Fn(&str) -> Option<MemberView>) -> Vec<(String, Input)> {
        self.constraints(
            view,
            |o| o.own_fault,
            |v| v.held,
            |why| Input::SyncHold(why.map(|(sg, o)| format!("{sg}: {o} fault"))),
        )
    }

    /// The "prefer backup" waits that differ from what each member should have: it waits
    /// while another (running) member neither is master nor wants to be.
    pub fn waits(&self, view: impl Fn(&str) -> Option<MemberView>) -> Vec<(String, Input)> {
        self.constraints(
            view,
            |o| !o.wants_master,
            |v| v.waiting,
            |why| Input::SyncWait(why.map(|(sg, o)| format!("{sg}: {o} does not want master"))),
        )
    }

    /// A constraint one member's state puts on the others of its sync group, where it differs
    /// from what each (running) member has: `constrains(other)` says whether another member
    /// imposes it, `has(member)` whether the member has it now, `input(Some((sync group,
    /// other)))` imposes it and `input(None)` lifts it.
    fn constraints(
        &self,
        view: impl Fn(&str) -> Option<MemberView>,
        constrains: impl Fn(&MemberView) -> bool,
        has: impl Fn(&MemberView) -> bool,
        input: impl Fn(Option<(&str, &str)>) -> Input,
    ) -> Vec<(String, Input)> {
        let mut out = Vec::new();
        for sg in &self.groups {
            let views: Vec<(&String, Option<MemberView>)> =
                sg.groups.iter().map(|m| (m, view(m))).collect();
            for (m, v) in &views {
                let Some(v) = v else { continue };
                let by = views
                    .iter()
                    .find(|(o, ov)| o != m && ov.as_ref().is_some_and(&constrains))
                    .map(|(o, _)| *o);
                match (by, has(v)) {
                    (Some(o), false) => out.push(((*m).clone(), input(Some((&sg.name, o))))),
                    (None, true) => out.push(((*m).clone(), input(None))),
                    _ => {}
                }
            }
        }
        out
    }

    /// Whole-group state changes since the last call, with the notify commands to run.
    pub fn group_changes(
        &mut self,
        view: impl Fn(&str) -> Option<MemberView>,
    ) -> Vec<(String, State, Vec<NotifyRun>)> {
        let mut out = Vec::new();
        for sg in &self.groups {
            let states: Vec<State> = sg
                .groups
                .iter()
                .filter_map(|m| view(m).map(|v| v.state))
                .collect();
            let Some(now) = whole_state(&states) else {
                continue;
            };
            if self.states.get(&sg.name) == Some(&now) {
                continue;
            }
            let first = !self.states.contains_key(&sg.name);
            self.states.insert(sg.name.clone(), now);
            // The first state known (Initialize -> ...) is news as for an instance; a stop
            // is news only after a state.
            if first && now == State::Initialize {
                continue;
            }
            out.push((sg.name.clone(), now, group_notify_runs(sg, now)));
        }
        out
    }
}

/// The state of a sync group whose running members are in `states` (`None`: none runs).
pub fn whole_state(states: &[State]) -> Option<State> {
    if states.is_empty() {
        return None;
    }
    Some(if states.contains(&State::Fault) {
        State::Fault
    } else if states.iter().all(|s| *s == State::Master) {
        State::Master
    } else if states.contains(&State::Backup) || states.contains(&State::Master) {
        State::Backup
    } else {
        State::Initialize
    })
}

/// A sync group's notify commands for `to`: as an instance's, with `GROUP` instead of
/// `INSTANCE` and priority 0 for `notify` (keepalived's arguments for a sync group).
pub fn group_notify_runs(sg: &VrrpSyncGroup, to: State) -> Vec<NotifyRun> {
    let mut runs = notify_runs(&sg.name, &sg.notify, to, 0);
    for r in &mut runs {
        if r.which == "notify" {
            let n = r.argv.len();
            if n >= 4 && r.argv[n - 4] == "INSTANCE" {
                r.argv[n - 4] = "GROUP".into();
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sg() -> SyncGroups {
        let mut s = SyncGroups::default();
        s.set(vec![VrrpSyncGroup {
            name: "VG".into(),
            groups: vec!["A".into(), "B".into(), "C".into()],
            notify: crate::model::Notify {
                master: Some("/bin/m".into()),
                any: Some("/bin/any x".into()),
                ..Default::default()
            },
        }]);
        s
    }

    fn v(state: State, own_fault: bool, held: bool) -> Option<MemberView> {
        Some(MemberView {
            state,
            own_fault,
            held,
            wants_master: state == State::Master,
            waiting: false,
        })
    }

    /// A member as the "prefer backup" rule sees it.
    fn w(state: State, wants_master: bool, waiting: bool) -> Option<MemberView> {
        Some(MemberView {
            state,
            own_fault: false,
            held: false,
            wants_master,
            waiting,
        })
    }

    #[test]
    fn a_member_waits_while_another_does_not_want_master() {
        let s = sg();
        // All three backups content with their masters: each waits (for the others).
        let view = |_: &str| w(State::Backup, false, false);
        let mut out: Vec<String> = s.waits(view).into_iter().map(|(m, _)| m).collect();
        out.sort();
        assert_eq!(out, ["A", "B", "C"]);
        // A's takeover came due and it waits; B still hears its master: A keeps waiting
        // (nothing new), C too; B waits for C.
        let view = |m: &str| match m {
            "A" => w(State::Backup, true, true),
            "B" => w(State::Backup, false, true),
            _ => w(State::Backup, false, true),
        };
        assert!(s.waits(view).is_empty());
        // B and C want master now: A is free; B and C wait no more either (A wants too).
        let view = |m: &str| w(State::Backup, true, m == "A");
        let out = s.waits(view);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "A");
        assert_eq!(out[0].1, Input::SyncWait(None));
        // A master counts as wanting master; a member not running counts for nothing.
        let view = |m: &str| match m {
            "A" => w(State::Backup, true, true),
            "B" => w(State::Master, true, false),
            _ => None,
        };
        assert_eq!(
            s.waits(view),
            vec![("A".to_string(), Input::SyncWait(None))]
        );
        // The reason names the reluctant member.
        let view = |m: &str| match m {
            "C" => w(State::Backup, false, false),
            _ => w(State::Backup, true, false),
        };
        let out = s.waits(view);
        assert!(out
            .iter()
            .any(|(m, i)| m == "A"
                && *i == Input::SyncWait(Some("VG: C does not want master".into()))));
    }

    #[test]
    fn a_member_becoming_master_takes_the_backups_along() {
        let s = sg();
        let view = |m: &str| match m {
            "A" => v(State::Master, false, false),
            "B" => v(State::Backup, false, false),
            _ => v(State::Master, false, false),
        };
        let out = s.follow("A", State::Backup, State::Master, &Reason::MasterDown, view);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "B");
        assert!(matches!(&out[0].1, Input::SyncMaster(w) if w.contains("VG: A")));
        // Caused by the sync group: nobody else moves (no ping-pong).
        let out = s.follow(
            "A",
            State::Backup,
            State::Master,
            &Reason::SyncGroup("x".into()),
            view,
        );
        assert!(out.is_empty());
        // Not a member: nothing.
        assert!(s
            .follow("Z", State::Backup, State::Master, &Reason::MasterDown, view)
            .is_empty());
    }

    #[test]
    fn a_master_becoming_backup_takes_the_other_masters_along() {
        let s = sg();
        let view = |m: &str| match m {
            "A" => v(State::Backup, false, false),
            "B" => v(State::Master, false, false),
            _ => v(State::Backup, false, false),
        };
        let why = Reason::HigherPriorityMaster {
            src: "192.0.2.2".parse().unwrap(),
            priority: 200,
        };
        let out = s.follow("A", State::Master, State::Backup, &why, view);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "B");
        assert!(matches!(out[0].1, Input::SyncBackup(_)));
        // Backup after Fault is not "leaving master": nothing.
        assert!(s
            .follow(
                "A",
                State::Fault,
                State::Backup,
                &Reason::InterfacesUp,
                view
            )
            .is_empty());
    }

    #[test]
    fn one_faulty_member_holds_the_others_until_it_recovers() {
        let s = sg();
        // A faulty of its own: B and C are held, A is not (its own fault is enough).
        let view = |m: &str| match m {
            "A" => v(State::Fault, true, false),
            _ => v(State::Master, false, false),
        };
        let mut held: Vec<String> = s
            .holds(view)
            .into_iter()
            .map(|(m, i)| {
                assert!(matches!(i, Input::SyncHold(Some(ref w)) if w == "VG: A fault"));
                m
            })
            .collect();
        held.sort();
        assert_eq!(held, ["B", "C"]);
        // Already held: nothing more.
        let view = |m: &str| match m {
            "A" => v(State::Fault, true, false),
            _ => v(State::Fault, false, true),
        };
        assert!(s.holds(view).is_empty());
        // A recovered: the held ones are released.
        let view = |m: &str| match m {
            "A" => v(State::Backup, false, false),
            _ => v(State::Fault, false, true),
        };
        let out = s.holds(view);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(_, i)| matches!(i, Input::SyncHold(None))));
        // Two faulty: each holds the other; one recovering still holds it.
        let view = |m: &str| match m {
            "A" => v(State::Fault, true, true),
            "B" => v(State::Backup, false, true),
            _ => v(State::Fault, true, true),
        };
        assert!(s.holds(view).is_empty());
    }

    #[test]
    fn whole_group_state_and_its_notify() {
        assert_eq!(whole_state(&[]), None);
        assert_eq!(
            whole_state(&[State::Master, State::Fault]),
            Some(State::Fault)
        );
        assert_eq!(
            whole_state(&[State::Master, State::Master]),
            Some(State::Master)
        );
        assert_eq!(
            whole_state(&[State::Master, State::Backup]),
            Some(State::Backup)
        );
        let mut s = sg();
        let all = |st| move |_: &str| v(st, false, false);
        let c = s.group_changes(all(State::Master));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].1, State::Master);
        let argv: Vec<Vec<String>> = c[0].2.iter().map(|r| r.argv.clone()).collect();
        assert_eq!(argv[0], ["/bin/m"]);
        assert_eq!(argv[1], ["/bin/any", "x", "GROUP", "VG", "MASTER", "0"]);
        // Unchanged: no news.
        assert!(s.group_changes(all(State::Master)).is_empty());
        let c = s.group_changes(all(State::Backup));
        assert_eq!(c[0].1, State::Backup);
    }
}
