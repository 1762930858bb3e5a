//! Health checks: one task per checked real server, keepalived's timing, verdicts to the actor.
//!
//! - [`tcp`] (TCP_CHECK), [`http`] (HTTP_GET, and SSL_GET over TLS) and [`misc`] (MISC_CHECK)
//!   are the checkers, one file each.
//! - [`state`] holds the rise/fall hysteresis and what the API shows.
//! - [`Checkers`] (owned by the data-plane actor) starts, keeps and stops the tasks as the
//!   configuration changes. A task whose real server and check are unchanged by an edit keeps
//!   running with its state (keepalived loses health state on reload).
//!
//! Timing, as keepalived's TCP_CHECK: every `delay_loop` a round runs: try, and on failure retry
//! up to `retry` more times `delay_before_retry` apart; a round with one success is healthy.
//! Detection therefore takes at most `delay_loop + connect_timeout*(retry+1) +
//! delay_before_retry*retry`. lbd differs from keepalived 2.2.7 in one place, on purpose: the first
//! round also retries (keepalived removes a server whose very first check fails at once).
//! Real servers start as up, so a restart of lbd never pulls healthy servers; with keepalived's
//! `alpha` they start as down and join after their first successful round.
//! First rounds are spread over `delay_loop` by a hash of the real server's id, so 10,000
//! servers do not fire in the same millisecond; each round runs in its own task, so one slow
//! server never delays another.

pub mod http;
pub mod misc;
pub mod state;
pub mod tcp;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::events::now_unix_ms;
use crate::model::idmap::IdMap;
use crate::model::{CheckKind, Config, Id, VirtualServer};
use state::{HealthState, Hysteresis, RealServerHealth};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("i/o error: {0}")]
    Io(String),
    #[error("{0}")]
    Protocol(String),
    #[error("HTTP status {got} for {path}, expected {expected}")]
    Status {
        expected: String,
        got: u16,
        path: String,
    },
    #[error("the body of {path} has MD5 {got}, expected {expected}")]
    Digest {
        path: String,
        expected: String,
        got: String,
    },
    #[error("the body does not contain {0:?}")]
    Body(String),
    #[error("{0}")]
    Script(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("exit {code}: {output}")]
    Exit { code: String, output: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Tcp,
    /// Every url must pass, in order.
    Http {
        host: String,
        urls: Vec<HttpUrl>,
        body_contains: Option<String>,
        /// SSL_GET: over TLS.
        tls: Option<http::Tls>,
    },
    /// keepalived MISC_CHECK.
    Misc {
        argv: Vec<String>,
        timeout: Duration,
        dynamic: bool,
        user: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub path: String,
    /// Healthy statuses, inclusive ranges.
    pub statuses: Vec<(u16, u16)>,
    /// MD5 of the body, lowercase hex.
    pub digest: Option<String>,
}

/// Everything a checker task needs; a change of any of it restarts the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    pub virtual_server_id: Id,
    pub real_server_id: Id,
    pub target: SocketAddr,
    pub probe: Probe,
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// The checks `cfg` asks for, one per real server that has one.
pub fn specs(cfg: &Config) -> Vec<CheckSpec> {
    cfg.virtual_servers
        .iter()
        .flat_map(|vs| specs_of(vs))
        .collect()
}

/// The checks of one virtual server's real servers.
pub fn specs_of(vs: &VirtualServer) -> Vec<CheckSpec> {
    let mut out = Vec::new();
    for rs in &vs.real_servers {
        let Some(hc) = &rs.health_check else { continue };
        let port = hc.connect_port.or(rs.port).unwrap_or(0);
        let probe = match hc.kind {
            CheckKind::Tcp => Probe::Tcp,
            CheckKind::Http | CheckKind::Https => Probe::Http {
                tls: (hc.kind == CheckKind::Https).then(|| http::Tls {
                    ca_file: hc.tls_ca_file.clone(),
                    server_name: hc.tls_server_name.clone(),
                }),
                host: match (&hc.virtualhost, rs.address) {
                    (Some(h), _) => h.clone(),
                    (None, IpAddr::V6(a)) => format!("[{a}]"),
                    (None, a) => a.to_string(),
                },
                urls: if hc.urls.is_empty() {
                    let s = hc.expected_status.unwrap_or(200);
                    vec![HttpUrl {
                        path: hc.path.clone().unwrap_or_else(|| "/".into()),
                        statuses: vec![(s, s)],
                        digest: None,
                    }]
                } else {
                    hc.urls
                        .iter()
                        .map(|u| HttpUrl {
                            path: u.path.clone(),
                            // keepalived's default: any 2xx.
                            statuses: if u.status_codes.is_empty() {
                                vec![(200, 299)]
                            } else {
                                u.status_codes.iter().map(|r| (r.from, r.to)).collect()
                            },
                            digest: u.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                        })
                        .collect()
                },
                body_contains: hc.body_contains.clone(),
            },
            CheckKind::Misc => Probe::Misc {
                argv: crate::model::real_server::split_command(
                    hc.misc_path.as_deref().unwrap_or(""),
                ),
                timeout: crate::model::units::millis(
                    hc.misc_timeout_ms.unwrap_or(vs.delay_loop_ms),
                ),
                dynamic: hc.misc_dynamic,
                user: hc.user.clone(),
            },
        };
        out.push(CheckSpec {
            virtual_server_id: vs.id,
            real_server_id: rs.id,
            target: SocketAddr::new(rs.address, port),
            probe,
            delay_loop: crate::model::units::millis(vs.delay_loop_ms),
            connect_timeout: crate::model::units::millis(hc.connect_timeout_ms),
            retry: hc.retry,
            delay_before_retry: crate::model::units::millis(hc.delay_before_retry_ms),
            rise: hc.rise.unwrap_or(1),
            fall: hc.fall.unwrap_or(1),
        });
    }
    out
}

/// A change of a real server's health, from its checker to the actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub virtual_server_id: Id,
    pub real_server_id: Id,
    pub target: SocketAddr,
    pub state: HealthState,
    pub error: Option<String>,
    /// The weight a healthy MISC_CHECK with `misc_dynamic` asked for (None: the configured one).
    pub weight: Option<u32>,
}

pub type HealthBoard = Arc<Mutex<BTreeMap<Id, RealServerHealth>>>;

fn lock(b: &HealthBoard) -> std::sync::MutexGuard<'_, BTreeMap<Id, RealServerHealth>> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running checker tasks. Dropping it stops them all.
pub struct Checkers {
    tasks: HashMap<Id, (CheckSpec, JoinHandle<()>)>,
    /// The virtual servers of the last sync, and which of their real servers have checks.
    synced: IdMap<Arc<VirtualServer>>,
    by_vs: IdMap<Vec<Id>>,
    board: HealthBoard,
    tx: mpsc::Sender<Verdict>,
    /// Real servers (virtual server id, real server id) whose checks started since the last
    /// [`Checkers::take_started_down`] with the state down (`alpha`): no verdict says so.
    started_down: Vec<(Id, Id)>,
}

impl Checkers {
    pub fn new(board: HealthBoard, tx: mpsc::Sender<Verdict>) -> Self {
        Checkers {
            tasks: HashMap::new(),
            synced: IdMap::default(),
            by_vs: IdMap::default(),
            board,
            tx,
            started_down: Vec::new(),
        }
    }

    /// The real servers whose checks started as down (`alpha`) since the last call.
    pub fn take_started_down(&mut self) -> Vec<(Id, Id)> {
        std::mem::take(&mut self.started_down)
    }

    /// Brings the tasks in line with `cfg`: starts new checks, restarts changed ones (keeping
    /// their state), stops removed ones. Returns the ids of real servers no longer checked.
    ///
    /// Only virtual servers that are not the very ones of the last sync (shared `Arc`s) are
    /// looked at, so a change to one virtual server costs the same in any size of table.
    pub fn sync(&mut self, cfg: &Config) -> Vec<Id> {
        let mut gone = Vec::new();
        let changes = cfg.changes_since(&self.synced, |a| a, |_| false);
        for id in changes.removed {
            self.synced.remove(&id);
            for rs in self.by_vs.remove(&id).unwrap_or_default() {
                if let Some((_, t)) = self.tasks.remove(&rs) {
                    t.abort();
                }
                gone.push(rs);
            }
        }
        for vs in changes.changed {
            let wanted = specs_of(&vs);
            let keep: HashSet<Id> = wanted.iter().map(|s| s.real_server_id).collect();
            for rs in self.by_vs.remove(&vs.id).unwrap_or_default() {
                if !keep.contains(&rs) {
                    if let Some((_, t)) = self.tasks.remove(&rs) {
                        t.abort();
                    }
                    gone.push(rs);
                }
            }
            let ids: Vec<Id> = wanted.iter().map(|s| s.real_server_id).collect();
            for spec in wanted {
                self.start(spec, vs.alpha);
            }
            if !ids.is_empty() {
                self.by_vs.insert(vs.id, ids);
            }
            self.synced.insert(vs.id, vs);
        }
        {
            let mut b = lock(&self.board);
            for id in &gone {
                b.remove(id);
            }
        }
        gone
    }

    /// Starts the check `spec`, or restarts it when its settings changed (keeping its state). A
    /// new one starts as up, or as down with `alpha`.
    fn start(&mut self, spec: CheckSpec, alpha: bool) {
        let id = spec.real_server_id;
        if let Some((old, _)) = self.tasks.get(&id) {
            if *old == spec {
                return;
            }
        }
        let initial = {
            let mut b = lock(&self.board);
            let entry = b.entry(id).or_insert_with(|| {
                if alpha {
                    self.started_down.push((spec.virtual_server_id, id));
                }
                RealServerHealth {
                    virtual_server_id: spec.virtual_server_id,
                    real_server_id: id,
                    state: if alpha {
                        HealthState::Down
                    } else {
                        HealthState::Up
                    },
                    since_unix_ms: now_unix_ms(),
                    last_check_unix_ms: None,
                    last_latency_ms: None,
                    last_error: None,
                    transitions: 0,
                    checks: 0,
                }
            });
            entry.state
        };
        let task = tokio::spawn(run(
            spec.clone(),
            initial,
            self.board.clone(),
            self.tx.clone(),
        ));
        if let Some((_, old)) = self.tasks.insert(id, (spec, task)) {
            old.abort();
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for Checkers {
    fn drop(&mut self) {
        for (_, t) in self.tasks.values() {
            t.abort();
        }
    }
}

/// Where in `period` a real server's first round falls: a fixed spread by id (Fibonacci hashing).
pub fn first_offset(id: Id, period: Duration) -> Duration {
    let h = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let frac = (h >> 11) as f64 / (1u64 << 53) as f64;
    period.mul_f64(frac)
}

/// One attempt; a healthy one may ask for a weight (MISC_CHECK's `misc_dynamic`).
pub async fn attempt(spec: &CheckSpec) -> Result<Option<u32>, CheckError> {
    match &spec.probe {
        Probe::Tcp => tcp::check(spec.target, spec.connect_timeout)
            .await
            .map(|()| None),
        Probe::Misc {
            argv,
            timeout,
            dynamic,
            user,
        } => misc::check(argv, *timeout, *dynamic, user.as_deref()).await,
        Probe::Http {
            host,
            urls,
            body_contains,
            tls,
        } => {
            // keepalived: every url of an HTTP_GET must pass.
            for u in urls {
                let c = http::HttpCheck {
                    path: &u.path,
                    host: host.clone(),
                    statuses: &u.statuses,
                    body_contains: body_contains.as_deref(),
                    digest: u.digest.as_deref(),
                };
                http::check(spec.target, spec.connect_timeout, &c, tls.as_ref()).await?;
            }
            Ok(None)
        }
    }
}

/// One round: the first attempt and up to `retry` retries. Returns the latency of the success
/// (and the weight it asks for), or the last error.
pub async fn round(spec: &CheckSpec) -> Result<(Duration, Option<u32>), CheckError> {
    let mut last = CheckError::Io("no attempt".into());
    for i in 0..=spec.retry {
        if i > 0 {
            tokio::time::sleep(spec.delay_before_retry).await;
        }
        let t = Instant::now();
        match attempt(spec).await {
            Ok(w) => return Ok((t.elapsed(), w)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn run(spec: CheckSpec, initial: HealthState, board: HealthBoard, tx: mpsc::Sender<Verdict>) {
    tokio::time::sleep(first_offset(spec.real_server_id, spec.delay_loop)).await;
    let mut state = initial;
    let mut weight: Option<u32> = None;
    let mut hyst = Hysteresis::new(spec.rise, spec.fall);
    loop {
        let result = round(&spec).await;
        let error = result.as_ref().err().map(|e| e.to_string());
        let changed = hyst.round(state, result.is_ok());
        {
            let mut b = lock(&board);
            if let Some(h) = b.get_mut(&spec.real_server_id) {
                h.checks += 1;
                h.last_check_unix_ms = Some(now_unix_ms());
                h.last_latency_ms = result.as_ref().ok().map(|d| d.0.as_secs_f64() * 1e3);
                h.last_error = error.clone();
                if let Some(new) = changed {
                    h.state = new;
                    h.since_unix_ms = now_unix_ms();
                    h.transitions += 1;
                }
            }
        }
        // A dynamic weight holds until a healthy round says otherwise (keepalived keeps it too).
        let new_weight = match &result {
            Ok((_, w)) => *w,
            Err(_) => weight,
        };
        if changed.is_some() || new_weight != weight {
            weight = new_weight;
            let new = changed.unwrap_or(state);
            state = new;
            let v = Verdict {
                virtual_server_id: spec.virtual_server_id,
                real_server_id: spec.real_server_id,
                target: spec.target,
                state: new,
                error,
                weight,
            };
            if tx.send(v).await.is_err() {
                // The actor is gone: nothing left to tell.
                return;
            }
        }
        tokio::time::sleep(spec.delay_loop).await;
    }
}
