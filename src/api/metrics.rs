//! `GET /metrics`: Prometheus's text exposition format, by `prometheus-client`.
//!
//! Most of it is read at scrape time from what `/api/v1/status` shows (VRRP, health, the data
//! plane) and from the kernel's IPVS table, so the numbers are the ones the status and
//! `ipvsadm -Ln --stats` give; nothing else keeps a second count. What only the API sees (its
//! requests and their latency) is counted as requests pass, in [`ApiMetrics`]; the gRPC calls
//! likewise, by the gRPC server's layer ([`crate::grpc::metrics`], handed in with the
//! [`AppState`]); the health checks' attempts and their latency by the checkers' owner, into
//! the status board's [`crate::dataplane::health::metrics::HealthMetrics`].

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::error::ApiError;
use super::AppState;
use crate::control::status::{DataplaneState, Status, VrrpGroupState};
use crate::dataplane::view::IpvsTableView;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route as declared (`/api/v1/virtual-servers/{id}`), never the raw path: the label's
    /// values stay few whatever clients send.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// What the HTTP front end counts as requests pass (shared handles: the counters are atomics).
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// The middleware (a route layer: only matched routes have a route to name).
pub async fn count(State(m): State<ApiMetrics>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    m.latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status,
        })
        .inc();
    resp
}

/// Scrape metrics (read only for `/metrics`)
///
/// Prometheus text exposition format: VRRP, health checks, the data plane and the kernel's IPVS
/// counters, HTTP and gRPC requests and the process. Needs the `read` role when lbd asks for tokens.
#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body = String, description = "the metrics")))]
pub async fn metrics(
    State(state): State<AppState>,
    axum::Extension(api): axum::Extension<ApiMetrics>,
) -> Result<Response, ApiError> {
    let status = state.service.status();
    // Where the kernel has no IPVS the table is simply left out.
    let table = state.dataplane.ipvs_view().await.ok();
    let mut text = String::new();
    let counted = Counted {
        api: &api,
        grpc: &state.grpc_calls,
        health: &state.service.status_board().health_metrics(),
    };
    let registry = build(&status, table.as_ref(), &counted);
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| ApiError::internal(&e))?;
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(resp)
}

fn gauge(v: i64) -> Gauge {
    let g = Gauge::default();
    g.set(v);
    g
}

fn gauge_f(v: f64) -> Gauge<f64, std::sync::atomic::AtomicU64> {
    let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    g.set(v);
    g
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
    vrid: u8,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupStateLabels {
    group: String,
    vrid: u8,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupErrorLabels {
    group: String,
    vrid: u8,
    /// auth, checksum, ttl, interval, version, packet, address_list, send, kernel.
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    /// The peer's address as configured (`--peer`).
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RealServerLabels {
    virtual_server_id: i64,
    real_server_id: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    /// `tcp 192.168.10.100:80`, `fwmark 7 ipv4`: as `ipvsadm -Ln` names it.
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestLabels {
    service: String,
    /// `192.168.10.103:80`.
    destination: String,
}

fn service_name(s: &crate::dataplane::view::IpvsServiceView) -> String {
    let host = |a: std::net::IpAddr, p: u16| match a {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{p}"),
        std::net::IpAddr::V4(v4) => format!("{v4}:{p}"),
    };
    match (s.fwmark, s.address, s.port, s.protocol) {
        (Some(m), _, _, _) => format!(
            "fwmark {m} {}",
            match s.family {
                crate::model::Family::Ipv4 => "ipv4",
                crate::model::Family::Ipv6 => "ipv6",
            }
        ),
        (None, Some(a), Some(p), proto) => format!(
            "{} {}",
            match proto {
                Some(crate::model::Protocol::Udp) => "udp",
                Some(crate::model::Protocol::Sctp) => "sctp",
                _ => "tcp",
            },
            host(a, p)
        ),
        _ => "unknown".into(),
    }
}

/// A metric a family holds, set from one status value.
trait Fill:
    prometheus_client::metrics::TypedMetric
    + prometheus_client::encoding::EncodeMetric
    + Default
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    type Value;
    fn fill(&self, v: Self::Value);
}

impl Fill for Gauge {
    type Value = i64;
    fn fill(&self, v: i64) {
        self.set(v);
    }
}

impl Fill for Gauge<f64, std::sync::atomic::AtomicU64> {
    type Value = f64;
    fn fill(&self, v: f64) {
        self.set(v);
    }
}

impl Fill for Counter {
    type Value = u64;
    fn fill(&self, v: u64) {
        self.inc_by(v);
    }
}

/// A family of `M` with one metric per label set, registered under `name`.
fn family<L, M>(reg: &mut Registry, name: &str, help: &str, values: Vec<(L, M::Value)>)
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
    M: Fill,
{
    let f = Family::<L, M>::default();
    for (l, v) in values {
        f.get_or_create(&l).fill(v);
    }
    // A name ending in its base unit carries the unit too (OpenMetrics' `# UNIT`).
    if let Some(base) = name.strip_suffix("_seconds") {
        reg.register_with_unit(base, help, Unit::Seconds, f);
    } else if let Some(base) = name.strip_suffix("_bytes") {
        reg.register_with_unit(base, help, Unit::Bytes, f);
    } else {
        reg.register(name, help, f);
    }
}

type GaugeF = Gauge<f64, std::sync::atomic::AtomicU64>;

/// What is counted as it happens (rather than read from the status at scrape time).
struct Counted<'a> {
    api: &'a ApiMetrics,
    grpc: &'a crate::grpc::metrics::GrpcMetrics,
    health: &'a crate::dataplane::health::metrics::HealthMetrics,
}

fn build(status: &Status, table: Option<&IpvsTableView>, counted: &Counted) -> Registry {
    let api = counted.api;
    let mut top = Registry::default();
    // The process, under Prometheus' standard names (no lbd_ prefix).
    process(&mut top);
    let reg = top.sub_registry_with_prefix("lbd");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);

    // ---- configuration and data plane
    reg.register(
        "config_revision",
        "The last committed configuration revision",
        gauge(status.revision as i64),
    );
    let d = &status.dataplane;
    reg.register(
        "dataplane_applied_revision",
        "The revision the kernel's IPVS table was last converged to",
        gauge(d.applied_revision.map_or(-1, |r| r as i64)),
    );
    reg.register(
        "dataplane_up",
        "1 when the data plane runs, 0 when it is degraded or not running",
        gauge(i64::from(d.state == DataplaneState::Running)),
    );
    reg.register(
        "ipvs_ops_applied",
        "Kernel IPVS operations applied since start",
        counter(d.ops_applied),
    );
    reg.register(
        "ipvs_drift_repairs",
        "IPVS operations that repaired changes made behind lbd's back",
        counter(d.drift_repairs),
    );
    reg.register(
        "ipvs_errors",
        "Failed kernel IPVS calls since start",
        counter(d.errors),
    );
    reg.register(
        "ipvs_managed_services",
        "IPVS services lbd programs",
        gauge(d.services as i64),
    );
    reg.register(
        "ipvs_managed_destinations",
        "IPVS destinations lbd programs",
        gauge(d.destinations as i64),
    );

    // ---- VRRP
    let groups = &status.vrrp.groups;
    let gl = |g: &crate::control::status::VrrpGroupStatus| GroupLabels {
        group: g.name.clone(),
        vrid: g.vrid,
    };
    let states = [
        (VrrpGroupState::Initialize, "initialize"),
        (VrrpGroupState::Backup, "backup"),
        (VrrpGroupState::Master, "master"),
        (VrrpGroupState::Fault, "fault"),
        (VrrpGroupState::Disabled, "disabled"),
    ];
    family::<_, Gauge>(
        reg,
        "vrrp_state",
        "1 for the state each VRRP group is in on this director",
        groups
            .iter()
            .flat_map(|g| {
                states.iter().map(move |(s, name)| {
                    (
                        GroupStateLabels {
                            group: g.name.clone(),
                            vrid: g.vrid,
                            state: name,
                        },
                        (i64::from(g.state == *s)),
                    )
                })
            })
            .collect(),
    );
    family::<_, Gauge>(
        reg,
        "vrrp_priority",
        "This director's priority in the group",
        groups
            .iter()
            .map(|g| (gl(g), (g.priority.map_or(0, i64::from))))
            .collect(),
    );
    type Pick = fn(&crate::control::status::VrrpCounters) -> u64;
    let counters: [(&str, &str, Pick); 7] = [
        ("vrrp_adverts_sent", "Adverts sent", |c| c.adverts_sent),
        ("vrrp_adverts_received", "Adverts received", |c| {
            c.adverts_received
        }),
        (
            "vrrp_priority_zero_sent",
            "Priority-0 adverts sent (giving up mastership)",
            |c| c.priority_zero_sent,
        ),
        (
            "vrrp_priority_zero_received",
            "Priority-0 adverts received",
            |c| c.priority_zero_received,
        ),
        ("vrrp_became_master", "Transitions to master", |c| {
            c.became_master
        }),
        ("vrrp_released_master", "Transitions out of master", |c| {
            c.released_master
        }),
        ("vrrp_garps_sent", "Gratuitous ARPs sent", |c| c.garps_sent),
    ];
    for (name, help, pick) in counters {
        family::<_, Counter>(
            reg,
            name,
            help,
            groups
                .iter()
                .map(|g| (gl(g), (pick(&g.counters))))
                .collect(),
        );
    }
    let errors: [(&'static str, Pick); 9] = [
        ("auth", |c| c.auth_errors),
        ("checksum", |c| c.checksum_errors),
        ("ttl", |c| c.ttl_errors),
        ("interval", |c| c.interval_errors),
        ("version", |c| c.version_errors),
        ("packet", |c| c.packet_errors),
        ("address_list", |c| c.address_list_errors),
        ("send", |c| c.send_errors),
        ("kernel", |c| c.kernel_errors),
    ];
    family::<_, Counter>(
        reg,
        "vrrp_errors",
        "VRRP errors by kind (RFC 3768 7.1 / RFC 5798 7.1 checks, sends, kernel calls)",
        groups
            .iter()
            .flat_map(|g| {
                errors.iter().map(move |(kind, pick)| {
                    (
                        GroupErrorLabels {
                            group: g.name.clone(),
                            vrid: g.vrid,
                            kind,
                        },
                        (pick(&g.counters)),
                    )
                })
            })
            .collect(),
    );

    // ---- health checks
    let rl = |h: &crate::dataplane::health::state::RealServerHealth| RealServerLabels {
        virtual_server_id: h.virtual_server_id,
        real_server_id: h.real_server_id,
    };
    let health = &status.health;
    family::<_, Gauge>(
        reg,
        "real_server_up",
        "1 when the real server's health check passes, 0 when it fails",
        health
            .iter()
            .map(|h| {
                (
                    rl(h),
                    (i64::from(h.state == crate::dataplane::health::state::HealthState::Up)),
                )
            })
            .collect(),
    );
    family::<_, Counter>(
        reg,
        "health_checks",
        "Health check rounds run",
        health.iter().map(|h| (rl(h), (h.checks))).collect(),
    );
    family::<_, Counter>(
        reg,
        "health_transitions",
        "Up/down changes of the real server",
        health.iter().map(|h| (rl(h), (h.transitions))).collect(),
    );
    family::<_, GaugeF>(
        reg,
        "health_state_age_seconds",
        "Time since the real server's health state last changed",
        health
            .iter()
            .map(|h| {
                (
                    rl(h),
                    (now_ms.saturating_sub(h.since_unix_ms) as f64 / 1000.0),
                )
            })
            .collect(),
    );
    family::<_, GaugeF>(
        reg,
        "health_check_latency_seconds",
        "How long the last check of the real server took",
        health
            .iter()
            .filter_map(|h| h.last_latency_ms.map(|ms| (rl(h), (ms / 1000.0))))
            .collect(),
    );

    // ---- peer sync
    let sync = &status.sync;
    let pl = |p: &crate::control::status::PeerStatus| PeerLabels {
        peer: p.address.clone(),
    };
    let flag = |pick: fn(&crate::control::status::PeerStatus) -> bool| {
        sync.peers
            .iter()
            .map(|p| (pl(p), i64::from(pick(p))))
            .collect::<Vec<_>>()
    };
    family::<_, Gauge>(
        reg,
        "peer_up",
        "1 when the link to the peer is up and its messages authenticate",
        flag(|p| p.reachable),
    );
    family::<_, Gauge>(
        reg,
        "peer_authenticated",
        "1 when the peer's last message authenticated",
        flag(|p| p.authenticated),
    );
    family::<_, Gauge>(
        reg,
        "peer_in_sync",
        "1 when the peer holds this director's revision",
        flag(|p| p.in_sync),
    );
    family::<_, Gauge>(
        reg,
        "peer_master",
        "1 when the peer is VRRP master of at least one group",
        flag(|p| p.master),
    );
    family::<_, Gauge>(
        reg,
        "peer_revision",
        "The peer's configuration revision as last heard",
        sync.peers
            .iter()
            .filter_map(|p| {
                p.peer_revision
                    .map(|r| (pl(p), i64::try_from(r).unwrap_or(i64::MAX)))
            })
            .collect(),
    );
    family::<_, GaugeF>(
        reg,
        "peer_last_contact_age_seconds",
        "Time since the peer's last authenticated message",
        sync.peers
            .iter()
            .filter_map(|p| {
                p.last_contact_unix_ms
                    .map(|t| (pl(p), now_ms.saturating_sub(t) as f64 / 1000.0))
            })
            .collect(),
    );
    family::<_, Gauge>(
        reg,
        "peer_health_disagreements",
        "Real servers this director and the peer see differently (one of them cannot reach it)",
        sync.peers
            .iter()
            .map(|p| (pl(p), p.health_disagreements.len() as i64))
            .collect(),
    );
    reg.register(
        "sync_conflicts",
        "Split edits that lost here and are kept as conflict records",
        gauge(sync.conflicts as i64),
    );
    reg.register(
        "sync_catching_up",
        "1 while a starting director holds its data plane until its peers are heard",
        gauge(i64::from(sync.catching_up)),
    );

    reg.register(
        "health_check_attempts",
        "Health check attempts (a round's first try and its retries) by check type and result: success, failure or timeout",
        counted.health.attempts.clone(),
    );
    reg.register_with_unit(
        "health_check_duration",
        "How long health check attempts took, by check type and result",
        Unit::Seconds,
        counted.health.duration.clone(),
    );

    // ---- the kernel's IPVS table (absent where the kernel has no IPVS)
    if let Some(t) = table {
        type StatPick = fn(&crate::ipvs::wire::Stats) -> u64;
        let stats: [(&str, &str, StatPick); 5] = [
            ("ipvs_connections", "Connections scheduled", |s| s.conns),
            ("ipvs_in_packets", "Packets in", |s| s.inpkts),
            ("ipvs_out_packets", "Packets out", |s| s.outpkts),
            ("ipvs_in_bytes", "Bytes in", |s| s.inbytes),
            ("ipvs_out_bytes", "Bytes out", |s| s.outbytes),
        ];
        for (name, help, pick) in stats {
            family::<_, Counter>(
                reg,
                name,
                &format!("{help} per IPVS service (the kernel's counters)"),
                t.services
                    .iter()
                    .map(|s| {
                        (
                            ServiceLabels {
                                service: service_name(s),
                            },
                            (pick(&s.stats)),
                        )
                    })
                    .collect(),
            );
        }
        let dests = || {
            t.services.iter().flat_map(|s| {
                let svc = service_name(s);
                s.destinations.iter().map(move |d| {
                    let dest = match d.address {
                        std::net::IpAddr::V6(a) => format!("[{a}]:{}", d.port),
                        std::net::IpAddr::V4(a) => format!("{a}:{}", d.port),
                    };
                    (
                        DestLabels {
                            service: svc.clone(),
                            destination: dest,
                        },
                        d,
                    )
                })
            })
        };
        family::<_, Gauge>(
            reg,
            "ipvs_destination_active_connections",
            "Active connections of each destination",
            dests()
                .map(|(l, d)| (l, (i64::from(d.active_conns))))
                .collect(),
        );
        family::<_, Gauge>(
            reg,
            "ipvs_destination_inactive_connections",
            "Inactive connections of each destination",
            dests()
                .map(|(l, d)| (l, (i64::from(d.inactive_conns))))
                .collect(),
        );
        family::<_, Gauge>(
            reg,
            "ipvs_destination_weight",
            "Weight of each destination in the kernel",
            dests().map(|(l, d)| (l, (i64::from(d.weight)))).collect(),
        );
        family::<_, Counter>(
            reg,
            "ipvs_destination_connections",
            "Connections scheduled to each destination",
            dests().map(|(l, d)| (l, (d.stats.conns))).collect(),
        );
    }

    // ---- the API
    reg.register(
        "http_requests",
        "HTTP requests by route and status",
        api.requests.clone(),
    );
    reg.register_with_unit(
        "http_request_duration",
        "HTTP request latency by route",
        Unit::Seconds,
        api.latency.clone(),
    );
    reg.register(
        "grpc_requests",
        "gRPC calls by method and status code",
        counted.grpc.requests.clone(),
    );
    reg.register_with_unit(
        "grpc_request_duration",
        "gRPC call latency by method (a stream's whole life)",
        Unit::Seconds,
        counted.grpc.duration.clone(),
    );
    top
}

/// `process_*` from /proc/self, as Prometheus' client libraries name them.
fn process(reg: &mut Registry) {
    let page = 4096f64;
    let ticks = 100f64;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The command name may hold spaces: the fields after it start past the last ')'.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // Fields 14, 15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss), counted
            // from 1 in proc(5); `rest` starts at field 3.
            reg.register_with_unit(
                "process_cpu",
                "User and system CPU time",
                Unit::Seconds,
                counter_f((num(11) + num(12)) / ticks),
            );
            reg.register_with_unit(
                "process_virtual_memory",
                "Virtual memory size",
                Unit::Bytes,
                gauge_f(num(20)),
            );
            reg.register_with_unit(
                "process_resident_memory",
                "Resident memory size",
                Unit::Bytes,
                gauge_f(num(21) * page),
            );
            if let Some(boot) = boot_time() {
                reg.register_with_unit(
                    "process_start_time",
                    "Start time since the Unix epoch",
                    Unit::Seconds,
                    gauge_f(boot + num(19) / ticks),
                );
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        reg.register(
            "process_open_fds",
            "Open file descriptors",
            gauge(dir.count() as i64),
        );
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        if let Some(max) = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<i64>().ok())
        {
            reg.register("process_max_fds", "Open file descriptor limit", gauge(max));
        }
    }
}

fn counter_f(v: f64) -> Counter<f64, std::sync::atomic::AtomicU64> {
    let c = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    c.inc_by(v);
    c
}

/// The boot time (seconds since the epoch), from /proc/stat's `btime`.
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
