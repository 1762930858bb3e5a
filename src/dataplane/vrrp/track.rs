//! Tracked objects and the effective priority (sans-IO, no clock).
//!
//! keepalived's weighted tracking (`track_interface`, `track_script` with `weight`), plus lbd's
//! tracked virtual servers: every tracked object is up or failing, and
//!
//! - weight 0: failing puts the instance in Fault (the only behaviour before weights);
//! - weight < 0: failing lowers the priority by |weight|;
//! - weight > 0: being up raises the priority by weight.
//!
//! The effective priority is the configured one plus these, clamped to 1..=254
//! (keepalived's `vrrp_set_effective_priority`). The address owner (configured 255) is never
//! moved: its weights are ignored, as keepalived does.

use std::collections::BTreeMap;
use std::fmt;

/// Something an instance tracks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrackKey {
    /// A network interface: failing while its link is down.
    Interface(String),
    /// A virtual server by its key as [`crate::model::VsKey`] prints it: failing while none of
    /// its real servers is healthy.
    VirtualServer(String),
    /// A `track_scripts` entry by name: failing while its script fails (after `fall`).
    Script(String),
}

impl fmt::Display for TrackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackKey::Interface(i) => write!(f, "interface {i}"),
            TrackKey::VirtualServer(v) => write!(f, "virtual server {v}"),
            TrackKey::Script(s) => write!(f, "script {s}"),
        }
    }
}

impl fmt::Display for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} weight {}", self.key, self.weight)
    }
}

/// One tracked object and its weight.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tracker {
    pub key: TrackKey,
    /// 0: Fault while failing; < 0: subtracted while failing; > 0: added while up.
    pub weight: i32,
}

/// The address owner's priority, never moved by weights.
const OWNER: u8 = 255;

/// What is known of each tracked object: `true` failing, `false` up; an object not in the map
/// is not known yet (no verdict, no script result) and counts neither way.
pub type TrackState = BTreeMap<TrackKey, bool>;

/// The effective priority of an instance configured with `base`, given what is known of its
/// trackers.
pub fn effective_priority(base: u8, trackers: &[Tracker], known: &TrackState) -> u8 {
    if base == OWNER {
        return base;
    }
    let total = trackers.iter().fold(i64::from(base), |acc, t| {
        match (t.weight, known.get(&t.key)) {
            (w, Some(true)) if w < 0 => acc + i64::from(w),
            (w, Some(false)) if w > 0 => acc + i64::from(w),
            _ => acc,
        }
    });
    u8::try_from(total.clamp(1, i64::from(OWNER) - 1)).unwrap_or(1)
}

/// The first failing object of weight 0 (a Fault cause), if any.
pub fn fault_cause<'a>(trackers: &'a [Tracker], known: &TrackState) -> Option<&'a TrackKey> {
    trackers
        .iter()
        .find(|t| t.weight == 0 && known.get(&t.key) == Some(&true))
        .map(|t| &t.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: TrackKey, weight: i32) -> Tracker {
        Tracker { key, weight }
    }

    #[test]
    fn weights_follow_keepalived() {
        let eth1 = TrackKey::Interface("eth1".into());
        let chk = TrackKey::Script("chk".into());
        let trackers = vec![t(eth1.clone(), -20), t(chk.clone(), 5)];
        let mut known = TrackState::new();
        // Nothing known: the configured priority.
        assert_eq!(effective_priority(100, &trackers, &known), 100);
        known.insert(eth1.clone(), false);
        known.insert(chk.clone(), false);
        assert_eq!(effective_priority(100, &trackers, &known), 105);
        known.insert(eth1.clone(), true);
        assert_eq!(effective_priority(100, &trackers, &known), 85);
        known.insert(chk, true);
        assert_eq!(effective_priority(100, &trackers, &known), 80);
        // Clamped to 1..=254.
        assert_eq!(effective_priority(10, &[t(eth1.clone(), -200)], &known), 1);
        let up = TrackState::from([(eth1.clone(), false)]);
        assert_eq!(effective_priority(250, &[t(eth1.clone(), 10)], &up), 254);
        // The owner never moves.
        assert_eq!(effective_priority(255, &[t(eth1, -50)], &known), 255);
    }

    #[test]
    fn weight_zero_is_a_fault_cause() {
        let vs = TrackKey::VirtualServer("tcp 10.0.0.1:80".into());
        let trackers = vec![t(vs.clone(), 0)];
        let mut known = TrackState::new();
        assert_eq!(fault_cause(&trackers, &known), None);
        known.insert(vs.clone(), false);
        assert_eq!(fault_cause(&trackers, &known), None);
        known.insert(vs.clone(), true);
        assert_eq!(fault_cause(&trackers, &known), Some(&vs));
        // A weight-0 object never moves the priority.
        assert_eq!(effective_priority(100, &trackers, &known), 100);
    }
}
