//! Which configuration wins between directors: the rule peer sync follows, without I/O.
//!
//! Every committed revision has an identity, its number and the director that made it (its
//! *origin*); a director keeps the identities of its newest revisions, its *lineage*. When a
//! director hears a peer's state it compares tips:
//!
//! - the same tip: in sync;
//! - its own tip is in the peer's lineage: the peer is ahead, and this director fast-forwards to
//!   the peer's configuration (same ids, same revision number, same origins);
//! - the peer's tip is in its own lineage: this director is ahead, and the peer will follow it;
//! - neither: both were edited while they could not talk, a *split edit*. Nothing is merged. The
//!   tip with the **higher revision wins; at equal revisions, the origin whose name sorts first
//!   wins** (a tip whose origin is unknown, from before peer sync, counts as its director's
//!   name). The losing director keeps its configuration as a conflict record and takes the
//!   winner's; an operator re-applies the record (a normal write, which then wins by revision) or
//!   dismisses it.
//!
//! Revision 0 (the empty configuration every director starts from) is everyone's ancestor. A
//! director that was away for more revisions than a lineage holds ([`LINEAGE_LEN`]) cannot tell
//! a fast-forward from a split; it takes the split rule, so its config is kept as a conflict
//! record instead of silently replaced.

use std::collections::VecDeque;

use serde::Serialize;
use utoipa::ToSchema;

/// How many revision identities a director keeps in memory and sends to its peers.
pub const LINEAGE_LEN: usize = 1024;

/// One revision's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct RevisionId {
    pub revision: u64,
    /// The director that made it; empty when unknown (a revision made before peer sync).
    pub origin: String,
}

impl RevisionId {
    pub fn new(revision: u64, origin: impl Into<String>) -> RevisionId {
        RevisionId {
            revision,
            origin: origin.into(),
        }
    }

    /// Whether this identity names one revision for sure: revision 0, or a known origin.
    fn is_known(&self) -> bool {
        self.revision == 0 || !self.origin.is_empty()
    }
}

/// A director's newest revision identities, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    entries: VecDeque<RevisionId>,
}

impl Lineage {
    pub fn from_entries(mut entries: Vec<RevisionId>) -> Lineage {
        entries.sort_by_key(|e| e.revision);
        entries.dedup_by_key(|e| e.revision);
        let skip = entries.len().saturating_sub(LINEAGE_LEN);
        Lineage {
            entries: entries.into_iter().skip(skip).collect(),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &RevisionId> {
        self.entries.iter()
    }

    /// The identity of `revision` (the tip, usually): its origin if known.
    pub fn id_of(&self, revision: u64) -> RevisionId {
        let origin = self
            .entries
            .iter()
            .rev()
            .find(|e| e.revision == revision)
            .map(|e| e.origin.clone())
            .unwrap_or_default();
        RevisionId { revision, origin }
    }

    /// Whether `id` is one of these revisions (revision 0 always is).
    pub fn contains(&self, id: &RevisionId) -> bool {
        id.revision == 0 || (id.is_known() && self.entries.iter().any(|e| e == id))
    }

    /// Adds a newer revision (an older or equal one replaces what follows it: a split edit's
    /// loser takes the winner's history from there).
    pub fn push(&mut self, id: RevisionId) {
        while self
            .entries
            .back()
            .is_some_and(|e| e.revision >= id.revision)
        {
            self.entries.pop_back();
        }
        self.entries.push_back(id);
        while self.entries.len() > LINEAGE_LEN {
            self.entries.pop_front();
        }
    }
}

/// What a director does with a peer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The same tip.
    InSync,
    /// The peer is ahead: take its configuration.
    FastForward,
    /// This director is ahead: the peer follows.
    Ahead,
    /// A split edit. `peer_wins`: take the peer's configuration and keep ours as a conflict.
    Split { peer_wins: bool },
}

/// The rule of the module comment. `local_tip` / `peer_tip` are the two tips; `local_name` /
/// `peer_name` the two directors (for tips of unknown origin).
pub fn decide(
    local: &Lineage,
    local_tip: &RevisionId,
    local_name: &str,
    peer: &Lineage,
    peer_tip: &RevisionId,
    peer_name: &str,
) -> Decision {
    if local_tip.is_known() && local_tip == peer_tip {
        return Decision::InSync;
    }
    if peer_tip.revision > local_tip.revision && peer.contains(local_tip) {
        return Decision::FastForward;
    }
    if local_tip.revision > peer_tip.revision && local.contains(peer_tip) {
        return Decision::Ahead;
    }
    let name = |t: &RevisionId, director: &str| -> String {
        if t.origin.is_empty() {
            director.to_string()
        } else {
            t.origin.clone()
        }
    };
    let peer_wins = match peer_tip.revision.cmp(&local_tip.revision) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => name(peer_tip, peer_name) < name(local_tip, local_name),
    };
    Decision::Split { peer_wins }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lineage(ids: &[(u64, &str)]) -> Lineage {
        Lineage::from_entries(ids.iter().map(|&(r, o)| RevisionId::new(r, o)).collect())
    }

    #[test]
    fn same_tip_is_in_sync() {
        let a = lineage(&[(1, "a"), (2, "b")]);
        let t = RevisionId::new(2, "b");
        assert_eq!(decide(&a, &t, "a", &a, &t, "b"), Decision::InSync);
    }

    #[test]
    fn a_peer_that_continued_our_history_is_a_fast_forward() {
        let ours = lineage(&[(1, "a"), (2, "a")]);
        let theirs = lineage(&[(1, "a"), (2, "a"), (3, "b"), (4, "b")]);
        let d = decide(
            &ours,
            &RevisionId::new(2, "a"),
            "a",
            &theirs,
            &RevisionId::new(4, "b"),
            "b",
        );
        assert_eq!(d, Decision::FastForward);
        // And the other way round: ahead.
        let d = decide(
            &theirs,
            &RevisionId::new(4, "b"),
            "b",
            &ours,
            &RevisionId::new(2, "a"),
            "a",
        );
        assert_eq!(d, Decision::Ahead);
    }

    #[test]
    fn an_empty_director_fast_forwards_to_anything() {
        let theirs = lineage(&[(7, "b")]);
        let d = decide(
            &Lineage::default(),
            &RevisionId::new(0, ""),
            "a",
            &theirs,
            &RevisionId::new(7, "b"),
            "b",
        );
        assert_eq!(d, Decision::FastForward);
    }

    #[test]
    fn split_edits_higher_revision_wins_then_the_name_that_sorts_first() {
        let base = [(1, "a"), (2, "a")];
        let mut ours = lineage(&base);
        ours.push(RevisionId::new(3, "a"));
        let mut theirs = lineage(&base);
        theirs.push(RevisionId::new(3, "b"));
        theirs.push(RevisionId::new(4, "b"));
        let a3 = RevisionId::new(3, "a");
        let b4 = RevisionId::new(4, "b");
        assert_eq!(
            decide(&ours, &a3, "a", &theirs, &b4, "b"),
            Decision::Split { peer_wins: true }
        );
        assert_eq!(
            decide(&theirs, &b4, "b", &ours, &a3, "a"),
            Decision::Split { peer_wins: false }
        );
        // Equal revisions: "a" sorts first and wins, on both sides.
        let b3 = RevisionId::new(3, "b");
        assert_eq!(
            decide(&ours, &a3, "a", &theirs, &b3, "b"),
            Decision::Split { peer_wins: false }
        );
        assert_eq!(
            decide(&theirs, &b3, "b", &ours, &a3, "a"),
            Decision::Split { peer_wins: true }
        );
    }

    #[test]
    fn unknown_origins_never_match_and_fall_back_to_director_names() {
        // Two directors configured on their own before peer sync, both at revision 5.
        let t = RevisionId::new(5, "");
        let none = Lineage::default();
        assert_eq!(
            decide(&none, &t, "lk02", &none, &t, "lk01"),
            Decision::Split { peer_wins: true }
        );
        assert_eq!(
            decide(&none, &t, "lk01", &none, &t, "lk02"),
            Decision::Split { peer_wins: false }
        );
    }

    #[test]
    fn push_replaces_what_follows_and_stays_bounded() {
        let mut l = lineage(&[(1, "a"), (2, "a"), (3, "a")]);
        l.push(RevisionId::new(2, "b"));
        assert_eq!(
            l.entries().cloned().collect::<Vec<_>>(),
            vec![RevisionId::new(1, "a"), RevisionId::new(2, "b")]
        );
        for r in 3..(LINEAGE_LEN as u64 + 10) {
            l.push(RevisionId::new(r, "a"));
        }
        assert_eq!(l.entries().count(), LINEAGE_LEN);
        assert!(!l.contains(&RevisionId::new(1, "a")));
        assert!(l.contains(&RevisionId::new(0, "anything")));
        assert_eq!(l.id_of(LINEAGE_LEN as u64 + 9).origin, "a");
    }
}
