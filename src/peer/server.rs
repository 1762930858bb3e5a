//! The followed side of the peer link: `lbd.peer.v1.Peer/Follow` streams this director's state.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::pb::{self, peer_message::Body, Sealed};
use super::seal::{Context, Key};
use super::{KEEPALIVE, MAX_MESSAGE, PROTOCOL};
use crate::control::service::{Replica, Service};
use crate::control::status::StatusBoard;
use crate::dataplane::health::state::HealthState;
use crate::dataplane::health::HealthMap;

#[derive(Clone)]
pub struct PeerService {
    inner: Arc<Inner>,
}

struct Inner {
    key: Key,
    node: String,
    service: Service,
    board: StatusBoard,
    stop: watch::Receiver<bool>,
}

impl PeerService {
    pub fn new(
        key: Key,
        node: String,
        service: Service,
        board: StatusBoard,
        stop: watch::Receiver<bool>,
    ) -> PeerService {
        PeerService {
            inner: Arc::new(Inner {
                key,
                node,
                service,
                board,
                stop,
            }),
        }
    }

    /// Says in the status (of the peer it came from, when that can be told) and the log why a
    /// follower was refused.
    fn refuse(&self, remote: Option<SocketAddr>, node: Option<&str>, why: String) -> Status {
        tracing::warn!(
            remote = ?remote,
            node = node.unwrap_or("?"),
            "refused a peer: {why}"
        );
        self.inner.board.sync_publisher().send_modify(|s| {
            for p in &mut s.peers {
                if matches_peer(p, remote, node) {
                    p.refused = Some(why.clone());
                    p.following_us = false;
                }
            }
        });
        Status::unauthenticated(format!("peer refused: {why}"))
    }
}

/// Whether a follower is the configured peer `p`: by node name once known, else by address.
fn matches_peer(
    p: &crate::control::status::PeerStatus,
    remote: Option<SocketAddr>,
    node: Option<&str>,
) -> bool {
    if let (Some(known), Some(node)) = (p.node.as_deref(), node) {
        return known == node;
    }
    let Some(remote) = remote else { return false };
    p.address
        .parse::<SocketAddr>()
        .map(|a| a.ip() == remote.ip())
        .unwrap_or_else(|_| {
            p.address
                .rsplit_once(':')
                .is_some_and(|(h, _)| h.trim_matches(['[', ']']) == remote.ip().to_string())
        })
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    type FollowStream = ReceiverStream<Result<Sealed, Status>>;

    async fn follow(&self, req: Request<Sealed>) -> Result<Response<Self::FollowStream>, Status> {
        let remote = req.remote_addr();
        let sealed = req.into_inner();
        let payload = match self.inner.key.open(Context::Hello, b"", &sealed) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(remote, None, e.to_string())),
        };
        let hello = pb::Hello::decode(payload)
            .map_err(|e| Status::invalid_argument(format!("Hello does not decode: {e}")))?;
        if hello.protocol != PROTOCOL {
            return Err(Status::failed_precondition(format!(
                "peer protocol {} is not {PROTOCOL}: run the same lbd version on both directors",
                hello.protocol
            )));
        }
        if hello.nonce.len() != 16 {
            return Err(Status::invalid_argument("Hello.nonce must be 16 bytes"));
        }
        if hello.node == self.inner.node {
            return Err(self.refuse(
                remote,
                Some(&hello.node),
                format!(
                    "the follower says it is {:?}, this director's own name (every director needs its own --node-name)",
                    hello.node
                ),
            ));
        }
        tracing::info!(peer = %hello.node, remote = ?remote, revision = hello.revision, "a peer follows");
        let node = hello.node.clone();
        self.inner.board.sync_publisher().send_modify(|s| {
            for p in &mut s.peers {
                if matches_peer(p, remote, Some(&node)) {
                    p.following_us = true;
                    p.refused = None;
                }
            }
        });
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        tokio::spawn(async move {
            this.stream(hello.nonce, tx).await;
            tracing::info!(peer = %node, "a peer stopped following");
            this.inner.board.sync_publisher().send_modify(|s| {
                for p in &mut s.peers {
                    if matches_peer(p, remote, Some(&node)) {
                        p.following_us = false;
                    }
                }
            });
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

impl PeerService {
    /// Sends the state, then every change, until the follower goes or lbd stops.
    async fn stream(&self, nonce: Vec<u8>, tx: mpsc::Sender<Result<Sealed, Status>>) {
        let inner = &self.inner;
        let mut replica = inner.service.replica();
        let mut health = inner.board.health_watch();
        let mut vrrp = inner.board.vrrp_watch();
        let mut stop = inner.stop.clone();
        let mut seq = 0u64;
        let mut seal = |body: Body| {
            seq += 1;
            let payload = pb::PeerMessage {
                seq,
                body: Some(body),
            }
            .encode_to_vec();
            inner.key.seal(Context::Stream, &nonce, payload)
        };
        let first = state_of(&inner.node, &replica.borrow_and_update());
        let mut master = vrrp.borrow_and_update().master_of_any();
        let mut verdicts = verdicts_of(&health.borrow_and_update());
        for body in [
            Body::State(first),
            Body::Health(pb::Health {
                verdicts: verdicts.clone(),
                master,
            }),
        ] {
            if tx.send(Ok(seal(body))).await.is_err() {
                return;
            }
        }
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        loop {
            let body = tokio::select! {
                r = replica.changed() => {
                    if r.is_err() {
                        return;
                    }
                    Body::State(state_of(&inner.node, &replica.borrow_and_update()))
                }
                r = health.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let now = verdicts_of(&health.borrow_and_update());
                    if now == verdicts {
                        continue;
                    }
                    verdicts = now;
                    Body::Health(pb::Health { verdicts: verdicts.clone(), master })
                }
                r = vrrp.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let now = vrrp.borrow_and_update().master_of_any();
                    if now == master {
                        continue;
                    }
                    master = now;
                    Body::Health(pb::Health { verdicts: verdicts.clone(), master })
                }
                _ = tick.tick() => Body::Keepalive(pb::Keepalive {
                    revision: replica.borrow().snapshot.revision,
                    master,
                }),
                _ = stop.wait_for(|s| *s) => return,
                _ = tx.closed() => return,
            };
            if tx.send(Ok(seal(body))).await.is_err() {
                return;
            }
        }
    }
}

fn state_of(node: &str, r: &Replica) -> pb::State {
    pb::State {
        node: node.to_string(),
        lineage: r
            .lineage
            .entries()
            .filter(|e| e.revision <= r.snapshot.revision)
            .map(|e| pb::RevisionId {
                revision: e.revision,
                origin: e.origin.clone(),
            })
            .chain(
                // The tip itself when the lineage does not know it (a revision from before
                // peer sync): the follower sees its number, with no origin.
                r.lineage
                    .entries()
                    .all(|e| e.revision != r.snapshot.revision)
                    .then(|| pb::RevisionId {
                        revision: r.snapshot.revision,
                        origin: String::new(),
                    }),
            )
            .collect(),
        next_id: u64::try_from(r.next_id).unwrap_or(0),
        // Serialising the model's own types cannot fail (string keys, no non-finite floats).
        config_json: serde_json::to_vec(&r.snapshot.config).unwrap_or_default(),
    }
}

fn verdicts_of(h: &HealthMap) -> Vec<pb::RealServerVerdict> {
    h.values()
        .map(|r| pb::RealServerVerdict {
            virtual_server_id: u64::try_from(r.virtual_server_id).unwrap_or(0),
            real_server_id: u64::try_from(r.real_server_id).unwrap_or(0),
            verdict: match r.state {
                HealthState::Up => pb::Verdict::Up,
                HealthState::Down => pb::Verdict::Down,
            } as i32,
        })
        .collect()
}

/// Serves `lbd.peer.v1.Peer` on `listener` until `shutdown`; over mutual TLS with `tls`, where
/// a client whose certificate is refused is reported in the status like a bad secret.
pub async fn serve(
    listener: TcpListener,
    svc: PeerService,
    tls: Option<crate::control::tls::MutualTls>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (refused_tx, mut refused_rx) = mpsc::channel::<crate::control::listener::Refusal>(64);
    let tls_rx = tls.map(|t| {
        let acceptor = tokio_rustls::TlsAcceptor::from(t.server);
        // The peer's certificates are read at start-up (a restart takes new ones).
        watch::channel(Arc::new(crate::control::tls::ServerTls {
            http: acceptor.clone(),
            grpc: acceptor,
            status: crate::control::tls::TlsStatus {
                mutual: true,
                reload_error: None,
            },
        }))
        .1
    });
    let reporter = svc.clone();
    let reports = tokio::spawn(async move {
        while let Some((remote, why)) = refused_rx.recv().await {
            reporter.refuse(remote, None, why);
        }
    });
    let r = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .concurrency_limit_per_connection(8)
        .add_service(
            pb::peer_server::PeerServer::new(svc)
                .max_decoding_message_size(64 * 1024)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        // A peer port faces the network: the same connection cap and idle timeout as the API
        // (a follower's stream carries a keepalive each second, so it is never idle).
        .serve_with_incoming_shutdown(
            crate::control::listener::governed_incoming_reporting(
                listener,
                crate::control::listener::ConnLimits {
                    max_connections: 64,
                    ..Default::default()
                },
                tls_rx,
                Some(refused_tx),
            ),
            shutdown,
        )
        .await;
    reports.abort();
    r
}
