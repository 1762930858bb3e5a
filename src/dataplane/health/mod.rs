//! Health checks: one task per checked real server, keepalived's timing, verdicts to the actor.
//!
//! - [`tcp`] (TCP_CHECK), [`http`] (HTTP_GET, and SSL_GET over TLS) and [`misc`] (MISC_CHECK)
//!   are the checkers, one file each.
//! - [`state`] holds the rise/fall hysteresis and what the API shows.
//! - [`Checkers`] (owned by the data-plane actor) starts, keeps and stops the tasks as the
//!   configuration changes. A task whose real server and check are unchanged by an edit keeps
//!   running with its state (keepalived loses health state on reload).
//! - Each task sends a [`Report`] per round to its owner over one mpsc channel; it shares no
//!   state. The owner hands the reports to [`Checkers::apply`], which keeps the health of every
//!   checked real server, publishes it on a watch channel (the status reads that), and returns
//!   the [`Verdict`]s (changes) the data plane acts on. It also counts the round's attempts and
//!   their latency, timed by the task, into the [`metrics::HealthMetrics`] it was given. A report from a task that has since been
//!   restarted or stopped is dropped, so a late one cannot undo a newer state.
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
pub mod metrics;
pub mod misc;
pub mod state;
pub mod tcp;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::control::events::now_unix_ms;
use crate::model::idmap::IdMap;
use crate::model::{CheckKind, Config, Id, VirtualServer};
use metrics::{Attempt, HealthMetrics, Outcome};
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

/// What one round of a checker task tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub real_server_id: Id,
    /// Which start of the check sent it (see [`Checkers::apply`]).
    pub generation: u64,
    /// The check type ([`metrics::kind`]).
    pub kind: &'static str,
    /// Each attempt of the round (the first try and the retries), timed where it ran.
    pub attempts: Vec<Attempt>,
    pub at_unix_ms: u64,
    /// The latency of a successful round.
    pub latency_ms: Option<f64>,
    /// Why the round failed.
    pub error: Option<String>,
    /// Set when the round changed the state or the dynamic weight.
    pub verdict: Option<Verdict>,
}

/// The health of every checked real server, by real server id, as [`Checkers`] publishes it.
pub type HealthMap = BTreeMap<Id, RealServerHealth>;

struct Task {
    spec: CheckSpec,
    generation: u64,
    handle: JoinHandle<()>,
}

/// The running checker tasks and their health map. Dropping it stops them all.
pub struct Checkers {
    tasks: HashMap<Id, Task>,
    /// The virtual servers of the last sync, and which of their real servers have checks.
    synced: IdMap<Arc<VirtualServer>>,
    by_vs: IdMap<Vec<Id>>,
    /// The health map: this is its one writer; readers hold receivers.
    health: watch::Sender<HealthMap>,
    /// Where the reports' attempts are counted (the status board's, for `/metrics`).
    metrics: HealthMetrics,
    tx: mpsc::Sender<Report>,
    next_generation: u64,
    /// Real servers (virtual server id, real server id) whose checks started since the last
    /// [`Checkers::take_started_down`] with the state down (`alpha`): no verdict says so.
    started_down: Vec<(Id, Id)>,
}

impl Checkers {
    /// Checkers that publish health on `health`, count attempts in `metrics`, and whose tasks
    /// report on `tx` (the owner receives them and passes them to [`Checkers::apply`]).
    pub fn new(
        health: watch::Sender<HealthMap>,
        metrics: HealthMetrics,
        tx: mpsc::Sender<Report>,
    ) -> Self {
        Checkers {
            tasks: HashMap::new(),
            synced: IdMap::default(),
            by_vs: IdMap::default(),
            health,
            metrics,
            tx,
            next_generation: 0,
            started_down: Vec::new(),
        }
    }

    /// Folds the tasks' reports into the health map, publishes it once, and returns the
    /// verdicts among them. A report from a task that is no longer the current one for its
    /// real server (restarted with new settings, or stopped) is dropped: it is old news (its
    /// attempts still count in the metrics: they were made).
    pub fn apply(&mut self, reports: impl IntoIterator<Item = Report>) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        let tasks = &self.tasks;
        let metrics = &self.metrics;
        self.health.send_if_modified(|map| {
            let mut modified = false;
            for r in reports {
                metrics.record(r.kind, &r.attempts);
                let current = tasks
                    .get(&r.real_server_id)
                    .is_some_and(|t| t.generation == r.generation);
                let Some(h) = map.get_mut(&r.real_server_id).filter(|_| current) else {
                    tracing::debug!(
                        real_server_id = r.real_server_id,
                        generation = r.generation,
                        "a report from a stopped or restarted check; dropped"
                    );
                    continue;
                };
                modified = true;
                h.checks += 1;
                h.last_check_unix_ms = Some(r.at_unix_ms);
                h.last_latency_ms = r.latency_ms;
                h.last_error = r.error;
                if let Some(v) = r.verdict {
                    if v.state != h.state {
                        h.state = v.state;
                        h.since_unix_ms = r.at_unix_ms;
                        h.transitions += 1;
                    }
                    verdicts.push(v);
                }
            }
            modified
        });
        verdicts
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
                if let Some(t) = self.tasks.remove(&rs) {
                    t.handle.abort();
                }
                gone.push(rs);
            }
        }
        for vs in changes.changed {
            let wanted = specs_of(&vs);
            let keep: HashSet<Id> = wanted.iter().map(|s| s.real_server_id).collect();
            for rs in self.by_vs.remove(&vs.id).unwrap_or_default() {
                if !keep.contains(&rs) {
                    if let Some(t) = self.tasks.remove(&rs) {
                        t.handle.abort();
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
        if !gone.is_empty() {
            self.health.send_modify(|map| {
                for id in &gone {
                    map.remove(id);
                }
            });
        }
        gone
    }

    /// Starts the check `spec`, or restarts it when its settings changed (keeping its state). A
    /// new one starts as up, or as down with `alpha`.
    fn start(&mut self, spec: CheckSpec, alpha: bool) {
        let id = spec.real_server_id;
        if let Some(t) = self.tasks.get(&id) {
            if t.spec == spec {
                return;
            }
        }
        let mut initial = HealthState::Up;
        let started_down = &mut self.started_down;
        self.health.send_if_modified(|map| {
            let mut added = false;
            let entry = map.entry(id).or_insert_with(|| {
                added = true;
                if alpha {
                    started_down.push((spec.virtual_server_id, id));
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
            initial = entry.state;
            added
        });
        self.next_generation += 1;
        let generation = self.next_generation;
        let handle = tokio::spawn(run(spec.clone(), generation, initial, self.tx.clone()));
        let task = Task {
            spec,
            generation,
            handle,
        };
        if let Some(old) = self.tasks.insert(id, task) {
            old.handle.abort();
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
        for t in self.tasks.values() {
            t.handle.abort();
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

/// What one round gives: the latency of the success and the weight it asks for, or the last
/// error.
pub type RoundResult = Result<(Duration, Option<u32>), CheckError>;

/// One round: the first attempt and up to `retry` retries. Returns the latency of the success
/// (and the weight it asks for), or the last error.
pub async fn round(spec: &CheckSpec) -> RoundResult {
    round_timed(spec).await.0
}

/// [`round`], with every attempt's duration and outcome (the metrics' latency is measured
/// here, around the attempt alone: the waits between retries are not in it).
pub async fn round_timed(spec: &CheckSpec) -> (RoundResult, Vec<Attempt>) {
    let mut attempts = Vec::with_capacity(1);
    let mut last = CheckError::Io("no attempt".into());
    for i in 0..=spec.retry {
        if i > 0 {
            tokio::time::sleep(spec.delay_before_retry).await;
        }
        let t = Instant::now();
        let r = attempt(spec).await;
        let duration = t.elapsed();
        attempts.push(Attempt {
            duration,
            outcome: Outcome::of(&r),
        });
        match r {
            Ok(w) => return (Ok((duration, w)), attempts),
            Err(e) => last = e,
        }
    }
    (Err(last), attempts)
}

/// One checker task: a round every `delay_loop`, each reported to the owner. It ends when
/// aborted or when the owner is gone.
async fn run(spec: CheckSpec, generation: u64, initial: HealthState, tx: mpsc::Sender<Report>) {
    tokio::time::sleep(first_offset(spec.real_server_id, spec.delay_loop)).await;
    let mut state = initial;
    let mut weight: Option<u32> = None;
    let mut hyst = Hysteresis::new(spec.rise, spec.fall);
    let kind = metrics::kind(&spec.probe);
    loop {
        let (result, attempts) = round_timed(&spec).await;
        let error = result.as_ref().err().map(|e| e.to_string());
        let changed = hyst.round(state, result.is_ok());
        // A dynamic weight holds until a healthy round says otherwise (keepalived keeps it too).
        let new_weight = match &result {
            Ok((_, w)) => *w,
            Err(_) => weight,
        };
        let verdict = (changed.is_some() || new_weight != weight).then(|| {
            weight = new_weight;
            state = changed.unwrap_or(state);
            Verdict {
                virtual_server_id: spec.virtual_server_id,
                real_server_id: spec.real_server_id,
                target: spec.target,
                state,
                error: error.clone(),
                weight,
            }
        });
        let report = Report {
            real_server_id: spec.real_server_id,
            generation,
            kind,
            attempts,
            at_unix_ms: now_unix_ms(),
            latency_ms: result.as_ref().ok().map(|d| d.0.as_secs_f64() * 1e3),
            error,
            verdict,
        };
        if tx.send(report).await.is_err() {
            // The owner is gone: nothing left to tell.
            return;
        }
        tokio::time::sleep(spec.delay_loop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::status::{DataplaneStatus, StatusBoard};

    /// One virtual server with one TCP-checked real server (id 2) whose first round is minutes
    /// away (delay_loop one hour), so only the reports a test sends arrive.
    fn cfg() -> Config {
        serde_json::from_value(serde_json::json!({"virtual_servers": [{
            "id": 1, "address": "10.0.0.1", "port": 80, "delay_loop_ms": 3_600_000,
            "real_servers": [{"id": 2, "address": "127.0.0.1", "port": 9,
                "health_check": {"type": "tcp"}}]}]}))
        .unwrap()
    }

    fn report(generation: u64, state: Option<HealthState>) -> Report {
        Report {
            real_server_id: 2,
            generation,
            kind: "tcp",
            attempts: vec![Attempt {
                duration: Duration::from_millis(3),
                outcome: Outcome::Failure,
            }],
            at_unix_ms: 1_000,
            latency_ms: None,
            error: Some("connect failed: refused".into()),
            verdict: state.map(|state| Verdict {
                virtual_server_id: 1,
                real_server_id: 2,
                target: "127.0.0.1:9".parse().unwrap(),
                state,
                error: Some("connect failed: refused".into()),
                weight: None,
            }),
        }
    }

    #[tokio::test]
    async fn a_verdict_sent_on_the_channel_changes_the_published_health() {
        let board = StatusBoard::new(DataplaneStatus::default());
        let mut status = board.health_watch();
        let (tx, mut rx) = mpsc::channel(8);
        let mut c = Checkers::new(board.health_publisher(), board.health_metrics(), tx.clone());
        c.sync(&cfg());
        assert_eq!(board.health_list()[0].state, HealthState::Up);
        status.mark_unchanged();

        // What the task sends after a failed round that crosses `fall`, through the channel.
        let generation = c.tasks[&2].generation;
        tx.send(report(generation, Some(HealthState::Down)))
            .await
            .unwrap();
        let verdicts = c.apply([rx.recv().await.unwrap()]);
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].state, HealthState::Down);
        assert!(status.has_changed().unwrap(), "the status watch saw it");
        let h = status.borrow_and_update()[&2].clone();
        assert_eq!(h.state, HealthState::Down);
        assert_eq!((h.transitions, h.checks), (1, 1));
        assert_eq!(h.since_unix_ms, 1_000);
        assert_eq!(h.last_error.as_deref(), Some("connect failed: refused"));

        // A round that changes nothing: counted, no verdict.
        assert!(c.apply([report(generation, None)]).is_empty());
        assert_eq!(board.health_list()[0].checks, 2);
        assert_eq!(board.health_list()[0].state, HealthState::Down);

        // Each report's attempts are counted on the board, by type and result.
        let labels = metrics::AttemptLabels {
            kind: "tcp",
            result: "failure",
        };
        let m = board.health_metrics();
        assert_eq!(m.attempts.get_or_create(&labels).get(), 2);
    }

    #[tokio::test]
    async fn reports_of_a_restarted_or_stopped_check_are_dropped_and_nothing_stops() {
        let board = StatusBoard::new(DataplaneStatus::default());
        let (tx, _rx) = mpsc::channel(8);
        let mut c = Checkers::new(board.health_publisher(), board.health_metrics(), tx);
        let mut cfg = cfg();
        c.sync(&cfg);
        let old = c.tasks[&2].generation;
        // An edit of the check restarts its task (a new generation), keeping its state.
        Arc::make_mut(&mut cfg.virtual_servers[0]).real_servers[0]
            .health_check
            .as_mut()
            .unwrap()
            .retry = 5;
        c.sync(&cfg);
        let new = c.tasks[&2].generation;
        assert_ne!(old, new);
        // The old task's last report, still in the queue: old news.
        assert!(c.apply([report(old, Some(HealthState::Down))]).is_empty());
        assert_eq!(board.health_list()[0].state, HealthState::Up);
        assert_eq!(board.health_list()[0].checks, 0);
        // A report for a real server nobody checks: dropped too; the next one still counts.
        let mut stray = report(new, Some(HealthState::Down));
        stray.real_server_id = 99;
        let verdicts = c.apply([stray, report(new, Some(HealthState::Down))]);
        assert_eq!(verdicts.len(), 1);
        assert_eq!(board.health_list()[0].state, HealthState::Down);
        // Stopped: its entry is gone, and its reports with it.
        Arc::make_mut(&mut cfg.virtual_servers[0]).real_servers[0].health_check = None;
        assert_eq!(c.sync(&cfg), vec![2]);
        assert!(board.health_list().is_empty());
        assert!(c.apply([report(new, Some(HealthState::Up))]).is_empty());
        assert!(board.health_list().is_empty());
    }
}
