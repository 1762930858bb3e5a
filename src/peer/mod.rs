//! Peer sync: the directors of a pair (or more) hold one configuration and one health view.
//!
//! Each director serves `lbd.peer.v1.Peer` on its own listener (`--peer-listen`, never the public
//! gRPC port) and *follows* every configured peer (`--peer`): [`link`] opens the peer's `Follow`
//! stream, which starts with the peer's whole state and then carries every commit, its health
//! verdicts and a keepalive each second ([`server`]). Both directors follow each other, so a
//! commit is pushed to every peer at once, and a director that returns pulls the current state
//! the moment its link reconnects. Every message is authenticated with the shared secret
//! ([`seal`]).
//!
//! What a received state does is [`crate::control::replication`]'s rule, carried out by
//! [`crate::control::service::Service::adopt`] (the same validation as any write). Health
//! verdicts: a director that is VRRP master of no group uses the verdicts of a peer that is
//! master of one and was heard within [`SILENCE`]; otherwise its own (see [`link`]).
//!
//! At start-up a director with peers holds its data plane (no IPVS programming, no VRRP) until
//! every peer has either sent its state or failed one attempt, for at most the catch-up bound, so
//! a restarted director never programs or preempts from a stale configuration. A peer that cannot
//! be reached does not hold anything: the director runs on what it has and its status says so.

pub mod link;
pub mod seal;
pub mod server;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::control::service::Service;
use crate::control::status::{PeerStatus, StatusBoard, SyncMode, SyncStatus};
use crate::dataplane::actor::DataplaneHandle;

/// The generated protobuf types and service stubs of `proto/lbd/peer/v1/peer.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("lbd.peer.v1");
}

/// The protocol version this lbd speaks (`Hello.protocol`).
pub const PROTOCOL: u32 = 1;
/// How often a followed director sends a keepalive.
pub const KEEPALIVE: Duration = Duration::from_secs(1);
/// A link that has heard nothing for this long is down (three keepalives).
pub const SILENCE: Duration = Duration::from_secs(3);
/// The largest peer message (the whole 2,277-service configuration as JSON is about 5 MiB).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The peers' `--peer-listen` addresses (`host:port`).
    pub peers: Vec<String>,
    /// Where this director serves its peers.
    pub listen: SocketAddr,
    /// The shared secret; with mutual TLS alone, [`seal::Key::tls_only`].
    pub key: seal::Key,
    /// Mutual TLS on the link (`--peer-ca`, `--peer-cert`, `--peer-key`): the peers'
    /// certificates must chain to the CA and name the address they are reached at.
    pub tls: Option<crate::control::tls::MutualTls>,
    /// The longest a starting director holds its data plane for its peers.
    pub catch_up: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot read the peer secret file {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the peer secret file {path}: {source}")]
    Secret {
        path: String,
        source: seal::SealError,
    },
}

/// Reads `--peer-secret-file`.
pub fn read_key(path: &std::path::Path) -> Result<seal::Key, PeerError> {
    let text = std::fs::read(path).map_err(|source| PeerError::SecretFile {
        path: path.display().to_string(),
        source,
    })?;
    seal::Key::from_file_contents(&text).map_err(|source| PeerError::Secret {
        path: path.display().to_string(),
        source,
    })
}

/// The data plane's start-up hold: `true` until the peers have been heard (see the module
/// comment). Without peers it starts released.
pub fn hold(peers: bool) -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(peers)
}

/// A running peer sync: the bound address and the tasks it owns.
pub struct Started {
    pub addr: SocketAddr,
    pub tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
}

/// Starts the server on `listener` (bound from `cfg.listen`), one link per peer, and the
/// start-up hold's release. Everything ends when `stop` turns true.
pub fn start(
    cfg: PeerConfig,
    listener: tokio::net::TcpListener,
    service: Service,
    dataplane: DataplaneHandle,
    board: StatusBoard,
    hold: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
) -> Started {
    let addr = listener.local_addr().unwrap_or(cfg.listen);
    let status = board.sync_publisher();
    status.send_replace(SyncStatus {
        mode: if cfg.tls.is_some() {
            SyncMode::MutualTls
        } else {
            SyncMode::SharedSecret
        },
        catching_up: *hold.borrow(),
        peers: cfg
            .peers
            .iter()
            .map(|a| PeerStatus {
                address: a.clone(),
                ..PeerStatus::default()
            })
            .collect(),
        conflicts: 0,
    });
    let mut tasks = Vec::new();
    let srv = server::PeerService::new(
        cfg.key.clone(),
        service.node().to_string(),
        service.clone(),
        board.clone(),
        stop.clone(),
    );
    let mut rx = stop.clone();
    let tls = cfg.tls.clone();
    tasks.push((
        "peer server",
        tokio::spawn(async move {
            server::serve(listener, srv, tls, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| e.to_string())
        }),
    ));
    let (settled_tx, settled_rx) = mpsc::channel(cfg.peers.len().max(1));
    for (index, address) in cfg.peers.iter().enumerate() {
        let link = link::Link {
            index,
            address: address.clone(),
            key: cfg.key.clone(),
            tls: cfg.tls.as_ref().map(|t| t.client.clone()),
            service: service.clone(),
            dataplane: dataplane.clone(),
            board: board.clone(),
            settled: settled_tx.clone(),
        };
        let stop = stop.clone();
        tasks.push((
            "peer link",
            tokio::spawn(async move {
                link.run(stop).await;
                Ok(())
            }),
        ));
    }
    tasks.push((
        "peer catch-up",
        tokio::spawn(release_hold(
            cfg.peers.len(),
            cfg.catch_up,
            settled_rx,
            hold,
            status,
        )),
    ));
    Started { addr, tasks }
}

/// Releases the data plane once every link has settled (taken its peer's state, or failed one
/// attempt), or after `bound`.
async fn release_hold(
    peers: usize,
    bound: Duration,
    mut settled: mpsc::Receiver<usize>,
    hold: watch::Sender<bool>,
    status: watch::Sender<SyncStatus>,
) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::sleep(bound);
    tokio::pin!(deadline);
    let timed_out = loop {
        if seen.len() >= peers {
            break false;
        }
        tokio::select! {
            i = settled.recv() => match i {
                Some(i) => { seen.insert(i); }
                None => break false,
            },
            _ = &mut deadline => break true,
        }
    };
    if timed_out {
        tracing::warn!(
            heard = seen.len(),
            peers,
            "peer catch-up bound reached: the data plane starts on the local configuration"
        );
    } else {
        tracing::info!("caught up with the peers: the data plane starts");
    }
    hold.send_replace(false);
    status.send_modify(|s| s.catching_up = false);
    Ok(())
}
