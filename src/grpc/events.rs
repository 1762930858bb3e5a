//! `WatchEvents`: the event stream as typed protobuf messages (one oneof case per kind, enums
//! for states and reasons).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::Status;

use super::pb;
use crate::control::events::{Event, EventKind, VrrpReason, VrrpState, Watched};
use crate::dataplane::health::state::HealthState;

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchedEvent, Status>> + Send>>;

/// The bus's stream as gRPC messages; a lagged reader's stream ends with ABORTED.
pub fn watch(w: impl Stream<Item = Watched> + Send + 'static) -> WatchStream {
    Box::pin(w.map(|item| match item {
        Watched::Event(e) => Ok(message(&e)),
        Watched::Lagged { missed, last_seq } => Err(Status::aborted(format!(
            "lagged: this reader fell {missed} events behind and was dropped; call again with since={last_seq}"
        ))),
    }))
}

pub fn message(e: &Event) -> pb::WatchedEvent {
    use pb::watched_event::Kind;
    let kind = match &e.kind {
        EventKind::ConfigCommitted { revision, changes } => {
            Kind::ConfigCommitted(pb::ConfigCommitted {
                revision: *revision,
                changes: *changes as u64,
            })
        }
        EventKind::DataplaneApplied {
            revision,
            ops,
            drift,
        } => Kind::DataplaneApplied(pb::DataplaneApplied {
            revision: *revision,
            ops: *ops as u64,
            drift: *drift,
        }),
        EventKind::DataplaneDegraded { reason } => Kind::DataplaneDegraded(pb::DataplaneDegraded {
            reason: reason.clone(),
        }),
        EventKind::VrrpStateChanged {
            group,
            vrid,
            from,
            to,
            reason,
            detail,
        } => Kind::VrrpStateChanged(pb::VrrpStateChanged {
            group: group.clone(),
            vrid: u32::from(*vrid),
            from: vrrp_state(*from) as i32,
            to: vrrp_state(*to) as i32,
            reason: vrrp_reason(*reason) as i32,
            detail: detail.clone(),
        }),
        EventKind::VrrpReconfigured {
            group,
            vrid,
            in_place,
            changes,
        } => Kind::VrrpReconfigured(pb::VrrpReconfigured {
            group: group.clone(),
            vrid: u32::from(*vrid),
            in_place: *in_place,
            changes: changes.clone(),
        }),
        EventKind::VrrpPriorityChanged {
            group,
            vrid,
            from,
            to,
            cause,
        } => Kind::VrrpPriorityChanged(pb::VrrpPriorityChanged {
            group: group.clone(),
            vrid: u32::from(*vrid),
            from: u32::from(*from),
            to: u32::from(*to),
            cause: cause.clone(),
        }),
        EventKind::VrrpCommand {
            group,
            command,
            ok,
            result,
            output,
        } => Kind::VrrpCommand(pb::VrrpCommand {
            group: group.clone(),
            command: command.clone(),
            ok: *ok,
            result: result.clone(),
            output: output.clone(),
        }),
        EventKind::HealthChanged {
            virtual_server_id,
            real_server_id,
            target,
            state,
            error,
        } => Kind::HealthChanged(pb::HealthChanged {
            virtual_server_id: *virtual_server_id,
            real_server_id: *real_server_id,
            target: target.clone(),
            state: match state {
                HealthState::Up => pb::HealthState::Up,
                HealthState::Down => pb::HealthState::Down,
            } as i32,
            error: error.clone(),
        }),
        EventKind::QuorumChanged {
            virtual_server_id,
            up,
            alive_weight,
        } => Kind::QuorumChanged(pb::QuorumChanged {
            virtual_server_id: *virtual_server_id,
            up: *up,
            alive_weight: *alive_weight,
        }),
        EventKind::QuorumCommand {
            virtual_server_id,
            command,
            cause,
            ok,
            result,
            output,
        } => {
            use crate::dataplane::quorum::{QuorumCause, QuorumCommandKind};
            Kind::QuorumCommand(pb::QuorumCommand {
                virtual_server_id: *virtual_server_id,
                command: match command {
                    QuorumCommandKind::QuorumUp => pb::QuorumCommandKind::QuorumUp,
                    QuorumCommandKind::QuorumDown => pb::QuorumCommandKind::QuorumDown,
                } as i32,
                cause: match cause {
                    QuorumCause::Health => pb::QuorumCause::Health,
                    QuorumCause::Removed => pb::QuorumCause::Removed,
                    QuorumCause::Shutdown => pb::QuorumCause::Shutdown,
                } as i32,
                ok: *ok,
                result: result.clone(),
                output: output.clone(),
            })
        }
        EventKind::PeerSync {
            peer,
            kind,
            revision,
            detail,
        } => {
            use crate::control::events::PeerSyncKind as K;
            Kind::PeerSync(pb::PeerSync {
                peer: peer.clone(),
                kind: match kind {
                    K::Connected => pb::PeerSyncKind::Connected,
                    K::Disconnected => pb::PeerSyncKind::Disconnected,
                    K::Refused => pb::PeerSyncKind::Refused,
                    K::Took => pb::PeerSyncKind::Took,
                    K::Rejected => pb::PeerSyncKind::Rejected,
                    K::WonSplit => pb::PeerSyncKind::WonSplit,
                    K::LostSplit => pb::PeerSyncKind::LostSplit,
                } as i32,
                revision: *revision,
                detail: detail.clone(),
            })
        }
        EventKind::VrrpSyncGroupChanged { sync_group, to } => {
            Kind::VrrpSyncGroupChanged(pb::VrrpSyncGroupChanged {
                sync_group: sync_group.clone(),
                to: vrrp_state(*to) as i32,
            })
        }
        EventKind::FailbackGateOpened {
            reason,
            waited_ms,
            synced,
        } => Kind::FailbackGateOpened(pb::FailbackGateOpened {
            reason: super::convert::failback_reason(*reason) as i32,
            waited_ms: *waited_ms,
            synced: *synced,
        }),
    };
    pb::WatchedEvent {
        seq: e.seq,
        time_unix_ms: e.time_unix_ms,
        kind: Some(kind),
    }
}

pub(super) fn vrrp_state(s: VrrpState) -> pb::VrrpState {
    match s {
        VrrpState::Initialize => pb::VrrpState::Initialize,
        VrrpState::Backup => pb::VrrpState::Backup,
        VrrpState::Master => pb::VrrpState::Master,
        VrrpState::Fault => pb::VrrpState::Fault,
    }
}

pub(super) fn vrrp_reason(r: VrrpReason) -> pb::VrrpReason {
    match r {
        VrrpReason::Startup => pb::VrrpReason::Startup,
        VrrpReason::AddressOwner => pb::VrrpReason::AddressOwner,
        VrrpReason::MasterDown => pb::VrrpReason::MasterDown,
        VrrpReason::MasterStopped => pb::VrrpReason::MasterStopped,
        VrrpReason::Preempted => pb::VrrpReason::Preempted,
        VrrpReason::InitialStateMaster => pb::VrrpReason::InitialStateMaster,
        VrrpReason::HigherPriorityMaster => pb::VrrpReason::HigherPriorityMaster,
        VrrpReason::InterfaceDown => pb::VrrpReason::InterfaceDown,
        VrrpReason::InterfacesUp => pb::VrrpReason::InterfacesUp,
        VrrpReason::Shutdown => pb::VrrpReason::Shutdown,
        VrrpReason::TrackFailed => pb::VrrpReason::TrackFailed,
        VrrpReason::SyncGroup => pb::VrrpReason::SyncGroup,
        VrrpReason::ObjectDeleted => pb::VrrpReason::ObjectDeleted,
    }
}

pub(super) fn health_state(s: HealthState) -> pb::HealthState {
    match s {
        HealthState::Up => pb::HealthState::Up,
        HealthState::Down => pb::HealthState::Down,
    }
}
