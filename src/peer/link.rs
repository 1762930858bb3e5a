//! The following side of the peer link: one task per configured peer keeps its `Follow` stream
//! open, reconnecting with back-off, and hands what arrives to the service (states) and the data
//! plane (health verdicts).
//!
//! The health rule: this director uses the peer's verdicts when the peer says it is VRRP master
//! of at least one group, this director is master of none, and the link is up (a message within
//! [`SILENCE`]). Otherwise it uses its own. So the table of the director that forwards traffic is
//! always its own checks' work, and a backup's table is the master's, ready for a takeover.

use std::time::{Duration, Instant};

use prost::Message;
use tokio::sync::{mpsc, watch};
use tonic::transport::Endpoint;

use super::pb::{self, peer_message::Body};
use super::seal::{Context, Key};
use super::{MAX_MESSAGE, PROTOCOL, SILENCE};
use crate::control::events::{now_unix_ms, EventKind, PeerSyncKind};
use crate::control::replication::{Lineage, RevisionId};
use crate::control::service::{Adopted, PeerState, Service};
use crate::control::status::{HealthDisagreement, PeerStatus, StatusBoard};
use crate::dataplane::actor::{DataplaneHandle, PeerVerdicts};
use crate::dataplane::health::state::HealthState;
use crate::dataplane::health::HealthMap;
use crate::model::Config;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct Link {
    /// This peer's place in the configured list (and in the status).
    pub index: usize,
    pub address: String,
    pub key: Key,
    /// Mutual TLS to the peer (its certificate must name the host part of `address`).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub service: Service,
    pub dataplane: DataplaneHandle,
    pub board: StatusBoard,
    /// Told once, after the first state or the first failure (the start-up hold).
    pub settled: mpsc::Sender<usize>,
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("unreachable: {0}")]
    Connect(String),
    #[error("the peer refused us: {0}")]
    Refused(String),
    #[error("the peer's stream failed: {0}")]
    Stream(String),
    #[error("no message from the peer for {0:?}")]
    Silent(Duration),
    #[error("the peer closed the stream")]
    Closed,
    #[error("a message from the peer does not authenticate: {0}")]
    BadMac(super::seal::SealError),
    #[error("a message from the peer does not decode: {0}")]
    Decode(String),
    #[error("message {got} from the peer came where {want} was due (lost or replayed)")]
    OutOfOrder { got: u64, want: u64 },
}

impl LinkError {
    fn is_auth(&self) -> bool {
        matches!(self, LinkError::Refused(_) | LinkError::BadMac(_))
    }
}

/// What the link knows of the peer's health view.
#[derive(Default)]
struct PeerHealthView {
    master: bool,
    verdicts: Vec<(i64, i64, bool)>,
}

impl Link {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_MIN;
        let mut settled = false;
        loop {
            let began = Instant::now();
            let r = tokio::select! {
                r = self.follow(&mut settled) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            let e = match r {
                Ok(()) => LinkError::Closed,
                Err(e) => e,
            };
            let was_up = self.current().reachable;
            self.status(|p| {
                p.reachable = false;
                p.error = Some(e.to_string());
                p.in_sync = false;
                if e.is_auth() {
                    p.authenticated = false;
                }
            });
            if was_up || e.is_auth() {
                tracing::warn!(peer = %self.address, "peer link down: {e}");
                self.event(
                    if e.is_auth() {
                        PeerSyncKind::Refused
                    } else {
                        PeerSyncKind::Disconnected
                    },
                    None,
                    Some(e.to_string()),
                );
            } else {
                tracing::debug!(peer = %self.address, "peer link: {e}");
            }
            self.dataplane
                .peer_verdicts(PeerVerdicts {
                    peer: self.address.clone(),
                    verdicts: None,
                })
                .await
                .ok();
            if !settled {
                settled = true;
                let _ = self.settled.try_send(self.index);
            }
            if began.elapsed() > Duration::from_secs(10) {
                backoff = BACKOFF_MIN;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Edits this peer's status.
    fn status(&self, f: impl FnOnce(&mut PeerStatus)) {
        self.board.sync_publisher().send_modify(|s| {
            if let Some(p) = s.peers.get_mut(self.index) {
                f(p)
            }
        });
    }

    /// This peer's status as it stands.
    fn current(&self) -> PeerStatus {
        self.board
            .sync()
            .peers
            .get(self.index)
            .cloned()
            .unwrap_or_default()
    }

    fn event(&self, kind: PeerSyncKind, revision: Option<u64>, detail: Option<String>) {
        self.service.events().publish(EventKind::PeerSync {
            peer: self.address.clone(),
            kind,
            revision,
            detail,
        });
    }

    /// One connection: follow until it fails.
    async fn follow(&self, settled: &mut bool) -> Result<(), LinkError> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.address))
            .map_err(|e| LinkError::Connect(e.to_string()))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10));
        let channel = match &self.tls {
            None => endpoint.connect().await,
            Some(cfg) => {
                let host = host_of(&self.address).to_string();
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| LinkError::Connect(format!("{host}: {e}")))?;
                let (cfg, addr) = (cfg.clone(), self.address.clone());
                // tonic's own TLS would build a second crypto stack; this is the rustls one
                // the front ends use, on tonic's custom-connector hook.
                let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
                    let (cfg, addr, name) = (cfg.clone(), addr.clone(), name.clone());
                    async move {
                        let tcp = tokio::net::TcpStream::connect(addr.as_str()).await?;
                        tcp.set_nodelay(true)?;
                        let s = tokio_rustls::TlsConnector::from(cfg)
                            .connect(name, tcp)
                            .await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                });
                endpoint.connect_with_connector(connector).await
            }
        }
        .map_err(|e| {
            let why = source_chain(&e);
            // A certificate the peer or we refused is an authentication failure.
            if why.contains("certificate") || why.contains("alert") {
                LinkError::Refused(why)
            } else {
                LinkError::Connect(why)
            }
        })?;
        let mut client = pb::peer_client::PeerClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(64 * 1024);
        let mut nonce = vec![0u8; 16];
        getrandom::getrandom(&mut nonce).map_err(|e| LinkError::Connect(e.to_string()))?;
        let hello = pb::Hello {
            protocol: PROTOCOL,
            node: self.service.node().to_string(),
            nonce: nonce.clone(),
            revision: self.service.snapshot().revision,
        };
        let sealed = self.key.seal(Context::Hello, b"", hello.encode_to_vec());
        let mut stream = match tokio::time::timeout(SILENCE, client.follow(sealed)).await {
            Err(_) => return Err(LinkError::Silent(SILENCE)),
            Ok(Err(s)) if s.code() == tonic::Code::Unauthenticated => {
                return Err(LinkError::Refused(s.message().to_string()))
            }
            Ok(Err(s)) => {
                let why = source_chain(&s);
                // With TLS 1.3 the peer refuses our certificate after our side of the
                // handshake is done: the refusal shows up here, as its alert.
                return Err(
                    if self.tls.is_some() && (why.contains("alert") || why.contains("certificate"))
                    {
                        LinkError::Refused(why)
                    } else {
                        LinkError::Stream(why)
                    },
                );
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let mut want = 1u64;
        let mut view = PeerHealthView::default();
        // Whether the data plane was last told to use this peer's verdicts (None: not told yet).
        let mut using: Option<bool> = None;
        let mut vrrp = self.board.vrrp_watch();
        let mut health = self.board.health_watch();
        // The link is down when nothing authentic arrived for SILENCE (the other branches wake
        // the loop often, so the bound is a deadline, not a timeout per wait).
        let mut heard = tokio::time::Instant::now();
        loop {
            // What woke the loop decides what to recompute: VRRP status moves with every
            // advert, so it only re-decides whose verdicts the table uses.
            let mut verdicts_moved = false;
            let mut health_moved = false;
            let sealed = tokio::select! {
                m = stream.message() => match m {
                    Err(s) => return Err(LinkError::Stream(s.message().to_string())),
                    Ok(None) => return Err(LinkError::Closed),
                    Ok(Some(m)) => Some(m),
                },
                _ = tokio::time::sleep_until(heard + SILENCE) => {
                    return Err(LinkError::Silent(SILENCE));
                }
                // Our own VRRP state or verdicts moved: the health rule may switch sides.
                r = vrrp.changed() => { r.ok(); None }
                r = health.changed() => { r.ok(); health_moved = true; None }
            };
            if let Some(sealed) = sealed {
                let payload = self
                    .key
                    .open(Context::Stream, &nonce, &sealed)
                    .map_err(LinkError::BadMac)?;
                let msg = pb::PeerMessage::decode(payload)
                    .map_err(|e| LinkError::Decode(e.to_string()))?;
                if msg.seq != want {
                    return Err(LinkError::OutOfOrder { got: msg.seq, want });
                }
                want += 1;
                heard = tokio::time::Instant::now();
                let first_contact = !self.current().reachable;
                self.status(|p| {
                    p.reachable = true;
                    p.authenticated = true;
                    p.error = None;
                    p.last_contact_unix_ms = Some(now_unix_ms());
                });
                if first_contact {
                    tracing::info!(peer = %self.address, "peer link up");
                    self.event(PeerSyncKind::Connected, None, None);
                }
                match msg.body {
                    Some(Body::State(s)) => {
                        self.on_state(s).await;
                        if !*settled {
                            *settled = true;
                            let _ = self.settled.try_send(self.index);
                        }
                    }
                    Some(Body::Health(h)) => {
                        verdicts_moved = true;
                        view.master = h.master;
                        view.verdicts = h
                            .verdicts
                            .iter()
                            .map(|v| {
                                (
                                    i64::try_from(v.virtual_server_id).unwrap_or(0),
                                    i64::try_from(v.real_server_id).unwrap_or(0),
                                    v.verdict == pb::Verdict::Down as i32,
                                )
                            })
                            .collect();
                    }
                    Some(Body::Keepalive(k)) => {
                        view.master = k.master;
                        let ours = self.service.snapshot().revision;
                        self.status(|p| {
                            p.peer_revision = Some(k.revision);
                            p.in_sync = k.revision == ours;
                            p.master = k.master;
                        });
                    }
                    // A newer peer's message kind this version does not know.
                    None => {}
                }
            }
            // The verdicts the data plane should use from this peer, sent when they change.
            let use_peer = view.master && !vrrp.borrow().master_of_any();
            if using != Some(use_peer) || (use_peer && verdicts_moved) {
                self.dataplane
                    .peer_verdicts(PeerVerdicts {
                        peer: self.address.clone(),
                        verdicts: use_peer.then(|| view.verdicts.clone()),
                    })
                    .await
                    .ok();
                using = Some(use_peer);
            }
            if verdicts_moved || health_moved {
                let disagreements = disagreements(&health.borrow(), &view.verdicts);
                self.status(|p| {
                    p.master = view.master;
                    p.health_disagreements = disagreements;
                });
            }
        }
    }

    async fn on_state(&self, s: pb::State) {
        let peer_node = s.node.clone();
        self.status(|p| p.node = Some(peer_node.clone()));
        let state = match parse_state(s) {
            Ok(st) => st,
            Err(why) => {
                tracing::warn!(peer = %self.address, "{why}");
                self.status(|p| p.error = Some(why.clone()));
                self.event(PeerSyncKind::Rejected, None, Some(why));
                return;
            }
        };
        let tip_revision = state.tip.revision;
        self.status(|p| p.peer_revision = Some(tip_revision));
        match self.service.adopt(state).await {
            Ok(Adopted::InSync) => self.status(|p| p.in_sync = true),
            Ok(Adopted::Ahead) => self.status(|p| p.in_sync = false),
            Ok(Adopted::TieLost) => {
                tracing::info!(peer = %self.address, revision = tip_revision, "split edit at equal revisions lost by name: waiting for the peer's re-stamped revision");
                self.status(|p| p.in_sync = false);
            }
            Ok(Adopted::WonSplit) => {
                tracing::warn!(peer = %self.address, "split edit: ours wins; the peer keeps its side as a conflict record");
                self.status(|p| p.in_sync = false);
                self.event(
                    PeerSyncKind::WonSplit,
                    Some(tip_revision),
                    Some(format!(
                        "{peer_node}'s revision {tip_revision} loses to ours"
                    )),
                );
            }
            Ok(Adopted::Took {
                revision,
                changes,
                conflict,
            }) => {
                self.status(|p| p.in_sync = true);
                self.event(
                    if conflict {
                        PeerSyncKind::LostSplit
                    } else {
                        PeerSyncKind::Took
                    },
                    Some(revision),
                    Some(format!("{changes} changes from {peer_node}")),
                );
            }
            Err(e) => {
                let why = format!("the peer's revision {tip_revision} is refused here: {e}");
                tracing::warn!(peer = %self.address, "{why}");
                self.status(|p| {
                    p.in_sync = false;
                    p.error = Some(why.clone());
                });
                self.event(PeerSyncKind::Rejected, Some(tip_revision), Some(why));
            }
        }
    }
}

/// The largest id a peer may use: JSON readers (the dashboard) hold ids as doubles, and the id
/// counter must never overflow.
const MAX_ID: i64 = 1 << 53;

/// A peer's `State` as the service takes it, or why not: the tip is the newest revision in its
/// lineage, only the newest `LINEAGE_LEN` entries count (a peer cannot make this director sort
/// millions), and ids must be positive and below [`MAX_ID`] (the service's validation checks
/// everything else, as for any write).
pub fn parse_state(s: pb::State) -> Result<PeerState, String> {
    let keep = s
        .lineage
        .len()
        .saturating_sub(crate::control::replication::LINEAGE_LEN);
    let entries: Vec<RevisionId> = s.lineage[keep..]
        .iter()
        .map(|e| RevisionId::new(e.revision, e.origin.clone()))
        .collect();
    let tip = entries
        .iter()
        .max_by_key(|e| e.revision)
        .cloned()
        .unwrap_or_else(|| RevisionId::new(0, ""));
    let config: Config = serde_json::from_slice(&s.config_json).map_err(|e| {
        format!(
            "the peer's revision {} does not parse here: {e}",
            tip.revision
        )
    })?;
    let ids = config
        .virtual_servers
        .iter()
        .flat_map(|v| std::iter::once(v.id).chain(v.real_servers.iter().map(|r| r.id)));
    let ids = ids.chain(config.vrrp_groups.iter().map(|g| g.id));
    for id in ids {
        if !(1..MAX_ID).contains(&id) {
            return Err(format!(
                "the peer's revision {} has the id {id}, out of 1..2^53",
                tip.revision
            ));
        }
    }
    let next_id = i64::try_from(s.next_id)
        .ok()
        .filter(|n| *n <= MAX_ID)
        .ok_or_else(|| format!("the peer's next id {} is out of range", s.next_id))?;
    Ok(PeerState {
        node: s.node,
        tip,
        lineage: Lineage::from_entries(entries),
        next_id,
        config,
    })
}

/// Real servers the two directors' own checks see differently.
fn disagreements(local: &HealthMap, peer: &[(i64, i64, bool)]) -> Vec<HealthDisagreement> {
    peer.iter()
        .filter_map(|&(vs, rs, peer_down)| {
            let l = local.get(&rs)?;
            let local_up = l.state == HealthState::Up;
            (local_up == peer_down).then_some(HealthDisagreement {
                virtual_server_id: vs,
                real_server_id: rs,
                local_up,
                peer_up: !peer_down,
            })
        })
        .collect()
}

/// The host part of `host:port` (`[v6]:port` too).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// An error with its sources ("transport error: connection refused").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lineage: &[(u64, &str)], next_id: u64, config: &str) -> pb::State {
        pb::State {
            node: "lk01".into(),
            lineage: lineage
                .iter()
                .map(|&(revision, origin)| pb::RevisionId {
                    revision,
                    origin: origin.into(),
                })
                .collect(),
            next_id,
            config_json: config.as_bytes().to_vec(),
        }
    }

    const ONE: &str = r#"{"virtual_servers":[{"id":1,"address":"192.168.10.100","port":80,
        "real_servers":[{"id":2,"address":"192.168.10.103"}]}]}"#;

    #[test]
    fn the_tip_is_the_newest_revision_whatever_the_order() {
        let s = parse_state(state(&[(3, "b"), (5, "a"), (4, "b")], 3, ONE)).unwrap();
        assert_eq!(s.tip, RevisionId::new(5, "a"));
        assert_eq!(s.config.virtual_servers[0].real_servers[0].id, 2);
        assert_eq!(s.next_id, 3);
        let empty = parse_state(state(&[], 1, "{}")).unwrap();
        assert_eq!(empty.tip, RevisionId::new(0, ""));
    }

    #[test]
    fn ids_out_of_range_and_bad_json_are_refused() {
        let neg = ONE.replace(r#""id":2"#, r#""id":-7"#);
        assert!(parse_state(state(&[(1, "a")], 3, &neg))
            .unwrap_err()
            .contains("-7"));
        let huge = ONE.replace(r#""id":1,"#, r#""id":9007199254740993,"#);
        assert!(parse_state(state(&[(1, "a")], 3, &huge)).is_err());
        assert!(parse_state(state(&[(1, "a")], u64::MAX, ONE))
            .unwrap_err()
            .contains("next id"));
        assert!(
            parse_state(state(&[(1, "a")], 3, "{\"virtual_servers\": 5}"))
                .unwrap_err()
                .contains("does not parse")
        );
    }

    #[test]
    fn only_the_newest_lineage_entries_count() {
        let long: Vec<(u64, &str)> = (1..=5_000).map(|r| (r, "a")).collect();
        let s = parse_state(state(&long, 3, "{}")).unwrap();
        assert_eq!(s.tip.revision, 5_000);
        assert_eq!(
            s.lineage.entries().count(),
            crate::control::replication::LINEAGE_LEN
        );
        assert!(!s.lineage.contains(&RevisionId::new(1, "a")));
    }

    #[test]
    fn host_of_strips_the_port_and_brackets() {
        assert_eq!(host_of("192.168.10.102:7946"), "192.168.10.102");
        assert_eq!(host_of("[fd00::2]:7946"), "fd00::2");
        assert_eq!(host_of("lk02.example:7946"), "lk02.example");
    }
}
