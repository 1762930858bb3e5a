//! keepalived's quorum commands (`quorum_up`, `quorum_down`, check/ipwrapper.c): run when a
//! virtual server gains or loses its quorum, and with `omega` when it is removed or lbd stops.
//!
//! A command runs as MISC_CHECK's do ([`crate::dataplane::health::misc::run`]): no shell (the string is
//! split into argv as keepalived splits it, honouring quotes), in a process group of its own,
//! killed at its timeout (the virtual server's `delay_loop`). Each runs on a task of its own,
//! so a command that hangs delays neither the health checks nor the data plane; its end (exit
//! status and output) is an event.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::control::events::{EventBus, EventKind};
use crate::dataplane::health::misc;
use crate::model::{Id, VirtualServer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuorumCommandKind {
    QuorumUp,
    QuorumDown,
}

/// Why a quorum command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuorumCause {
    /// The healthy weight crossed the quorum (with its hysteresis).
    Health,
    /// `omega`: the virtual server was removed.
    Removed,
    /// `omega`: lbd is stopping.
    Shutdown,
}

/// Starts `vs`'s command for `kind`, if it has one; the task publishes how it ended.
pub fn spawn(
    vs: &VirtualServer,
    kind: QuorumCommandKind,
    cause: QuorumCause,
    events: &EventBus,
) -> Option<JoinHandle<()>> {
    let cmd = match kind {
        QuorumCommandKind::QuorumUp => vs.quorum_up.as_ref(),
        QuorumCommandKind::QuorumDown => vs.quorum_down.as_ref(),
    }?;
    let argv = crate::model::real_server::split_command(cmd);
    let timeout = crate::model::units::millis(vs.delay_loop_ms);
    let events = events.clone();
    let id = vs.id;
    Some(tokio::spawn(async move {
        run(id, argv, timeout, kind, cause, &events).await;
    }))
}

async fn run(
    virtual_server_id: Id,
    argv: Vec<String>,
    timeout: Duration,
    command: QuorumCommandKind,
    cause: QuorumCause,
    events: &EventBus,
) {
    let (ok, result, output) = match misc::run(&argv, timeout, None).await {
        Ok(misc::Exit { code, output }) => (
            code == Some(0),
            code.map_or_else(|| "a signal".to_string(), |c| format!("exit {c}")),
            output,
        ),
        Err(e) => (false, e.to_string(), String::new()),
    };
    if ok {
        tracing::info!(virtual_server_id, ?command, ?cause, "quorum command ran");
    } else {
        tracing::warn!(virtual_server_id, ?command, ?cause, %result, %output, "quorum command failed");
    }
    events.publish(EventKind::QuorumCommand {
        virtual_server_id,
        command,
        cause,
        ok,
        result,
        output,
    });
}
