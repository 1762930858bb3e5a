//! `start` / `run`: open the store, build the service, serve HTTP and gRPC until shutdown, then
//! drain. Every task started here is owned by [`Running`] and ended by its shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::events::EventBus;
use crate::control::service::{Service, ServiceError};
use crate::control::status::{DataplaneStatus, StatusBoard};
use crate::control::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub db: PathBuf,
    pub http_listen: SocketAddr,
    pub grpc_listen: SocketAddr,
    pub node_name: String,
    /// How often the data plane compares the kernel's IPVS table with the desired one.
    pub resync_interval: std::time::Duration,
    /// Request and connection limits of the two front ends.
    pub limits: Limits,
    /// The service manager to tell when lbd is ready and stopping, and whose watchdog to ping
    /// (`None` unless started by systemd as `Type=notify`).
    pub notifier: Option<crate::control::systemd::Notifier>,
    /// Tokens and roles, allowed `Host` names and CORS origins of both APIs.
    pub auth: crate::control::auth::AuthConfig,
    /// Peer sync (`--peer`); `None`: this director runs alone.
    pub peer: Option<crate::peer::PeerConfig>,
    /// Both APIs over TLS (`None`: plain HTTP and gRPC).
    pub tls: Option<crate::control::tls::TlsFiles>,
}

/// Limits on what clients can make the server hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub http: crate::api::limits::HttpLimits,
    /// Per listener (HTTP and gRPC each).
    pub connections: crate::control::listener::ConnLimits,
    /// Largest gRPC request message.
    pub grpc_message_bytes: usize,
}

impl Limits {
    /// The gRPC message limit, where 0 means "the default" (16 MiB: the protobuf form of the
    /// whole 2,277 / 37,205 table is about 3 MiB).
    pub fn grpc_message_bytes(&self) -> usize {
        if self.grpc_message_bytes == 0 {
            16 * 1024 * 1024
        } else {
            self.grpc_message_bytes
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the database {path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("cannot load the configuration: {0}")]
    Service(#[from] ServiceError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] crate::control::auth::AuthError),
    #[error(transparent)]
    Peer(#[from] crate::peer::PeerError),
    #[error(transparent)]
    Tls(#[from] crate::control::tls::TlsError),
    #[error("the {0} server failed: {1}")]
    Serve(&'static str, String),
}

/// A started server: its bound addresses, its service, and the tasks it owns.
pub struct Running {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// Where peers reach this director (with `--peer`).
    pub peer_addr: Option<SocketAddr>,
    pub service: Service,
    /// The data plane's handle (the one the HTTP and gRPC servers were given).
    pub dataplane: crate::dataplane::actor::DataplaneHandle,
    store: Store,
    notifier: Option<crate::control::systemd::Notifier>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
}

/// Hostname, the default node name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "lbd".to_string())
}

pub async fn start(cfg: ServerConfig) -> Result<Running, ServerError> {
    start_with_kernel(cfg, Box::new(crate::kernel::netlink::NetlinkKernel::new())).await
}

/// Like [`start`], with the data plane on `kernel` (benchmarks of the control path use the
/// in-memory kernel on machines without IPVS).
pub async fn start_with_kernel(
    cfg: ServerConfig,
    kernel: Box<dyn crate::kernel::Kernel>,
) -> Result<Running, ServerError> {
    // Tokens first: an API that would be open beyond loopback does not start at all.
    let (auth, token_watch) =
        crate::control::auth::Auth::start(&cfg.auth, &[cfg.http_listen, cfg.grpc_listen])?;
    // The certificate too: a start with TLS files that do not load fails.
    let (tls, tls_watch) = match &cfg.tls {
        Some(files) => {
            let (rx, w) = crate::control::tls::start(files)?;
            (Some(rx), Some(w))
        }
        None => (None, None),
    };
    let auth = auth.with_tls(tls.clone());
    // Sockets next: a start that cannot listen must not leave a new database file behind.
    let http =
        crate::control::listener::bind(cfg.http_listen).map_err(|source| ServerError::Bind {
            what: "http",
            addr: cfg.http_listen,
            source,
        })?;
    let grpc =
        crate::control::listener::bind(cfg.grpc_listen).map_err(|source| ServerError::Bind {
            what: "grpc",
            addr: cfg.grpc_listen,
            source,
        })?;
    let peer_listener =
        match &cfg.peer {
            Some(p) => Some(crate::control::listener::bind(p.listen).map_err(|source| {
                ServerError::Bind {
                    what: "peer",
                    addr: p.listen,
                    source,
                }
            })?),
            None => None,
        };
    let store = Store::open(&cfg.db)
        .await
        .map_err(|source| ServerError::Store {
            path: cfg.db.clone(),
            source,
        })?;
    let status = StatusBoard::new(DataplaneStatus::not_running("starting"));
    let stored = store
        .load_events(crate::control::events::HISTORY)
        .await
        .map_err(|source| ServerError::Store {
            path: cfg.db.clone(),
            source,
        })?;
    let events = EventBus::with_history(stored.events, stored.last_seq);
    let service = Service::new(
        cfg.node_name.clone(),
        store.clone(),
        events.clone(),
        status.clone(),
    )
    .await?;

    let http_addr = local_addr(&http, cfg.http_listen);
    let grpc_addr = local_addr(&grpc, cfg.grpc_listen);
    let (stop, _) = watch::channel(false);

    let mut tasks = Vec::new();
    // With peers, the data plane holds until it has caught up with them (see `crate::peer`).
    let (hold_tx, hold_rx) = crate::peer::hold(cfg.peer.is_some());
    // The data plane: one actor owns the kernel; it converges IPVS to every committed snapshot.
    let (dataplane, actor) = crate::dataplane::actor::spawn_with_owned(
        kernel,
        service.subscribe(),
        status.clone(),
        events.clone(),
        crate::dataplane::actor::ActorConfig {
            node_name: cfg.node_name.clone(),
            resync_interval: cfg.resync_interval,
            hold: cfg.peer.is_some().then_some(hold_rx),
            ..Default::default()
        },
        Box::new(store.clone()),
    );
    let mut peer_addr = None;
    if let (Some(p), Some(listener)) = (cfg.peer.clone(), peer_listener) {
        let started = crate::peer::start(
            p,
            listener,
            service.clone(),
            dataplane.clone(),
            status,
            hold_tx,
            stop.subscribe(),
        );
        peer_addr = Some(started.addr);
        tasks.extend(started.tasks);
    }
    // The gRPC server counts its calls here; `/metrics` on the HTTP server shows them.
    let grpc_calls = crate::grpc::metrics::GrpcMetrics::default();
    let app = crate::api::router_with_auth(
        crate::api::AppState {
            service: service.clone(),
            dataplane: dataplane.clone(),
            grpc_calls: grpc_calls.clone(),
        },
        cfg.limits.http,
        auth.clone(),
    );
    // The token file's reloads (SIGHUP, or a change); without one, SIGHUP is caught and
    // ignored rather than ending lbd.
    tasks.push((
        "tokens",
        tokio::spawn(
            crate::control::auth::reload(
                token_watch,
                crate::control::auth::catch_sighup(),
                std::time::Duration::from_secs(2),
                stop.subscribe(),
            )
            .map(Ok),
        ),
    ));
    // The TLS files' reloads, on the same SIGHUP (every catcher of a signal sees it).
    if let Some(w) = tls_watch {
        tasks.push((
            "tls",
            tokio::spawn(
                crate::control::tls::reload(
                    w,
                    crate::control::auth::catch_sighup(),
                    stop.subscribe(),
                )
                .map(Ok),
            ),
        ));
    }
    let mut rx = stop.subscribe();
    let conn_limits = cfg.limits.connections;
    let http_tls = tls.clone();
    tasks.push((
        "http",
        tokio::spawn(async move {
            crate::control::listener::serve_http(http, app, conn_limits, http_tls, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| e.to_string())
        }),
    ));
    let mut rx = stop.subscribe();
    let svc = service.clone();
    let dp = dataplane.clone();
    let limits = cfg.limits;
    tasks.push((
        "grpc",
        tokio::spawn(async move {
            crate::grpc::serve(
                grpc,
                svc,
                dp,
                limits,
                crate::grpc::Front {
                    auth,
                    tls,
                    calls: grpc_calls,
                },
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
            )
            .await
            .map_err(|e| e.to_string())
        }),
    ));
    tasks.push((
        "dataplane",
        tokio::spawn(async move { actor.await.map_err(|e| e.to_string()) }),
    ));
    // The events table's one writer; it writes what is left when `stop` is sent.
    tasks.push((
        "events",
        tokio::spawn(
            crate::control::events::persist(events, store.clone(), stop.subscribe()).map(Ok),
        ),
    ));
    tracing::info!(%http_addr, %grpc_addr, tls = cfg.tls.is_some(), node = %cfg.node_name, db = %cfg.db.display(), "lbd serving");
    if let Some(n) = &cfg.notifier {
        n.ready(&format!("serving HTTP on {http_addr}, gRPC on {grpc_addr}"));
        if let Some(every) = n.watchdog() {
            tracing::info!(
                watchdog_ms = every.as_millis() as u64,
                "pinging the systemd watchdog while the data plane answers"
            );
            tasks.push((
                "watchdog",
                tokio::spawn(
                    n.clone()
                        .watchdog_loop(dataplane.clone(), stop.subscribe())
                        .map(Ok),
                ),
            ));
        }
    }
    Ok(Running {
        http_addr,
        grpc_addr,
        peer_addr,
        service,
        dataplane,
        store,
        notifier: cfg.notifier,
        stop,
        tasks,
    })
}

fn local_addr(l: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    l.local_addr().unwrap_or(fallback)
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and closes the database.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(n) = &self.notifier {
            n.stopping();
        }
        // VRRP first: a master's priority-0 advert must not wait for HTTP clients to finish.
        // A master then holds its addresses until the new master is heard (bounded by
        // RELEASE_BOUND_MAX); the APIs and the data plane keep serving meanwhile.
        let h = &self.dataplane;
        let bound =
            crate::dataplane::vrrp::instance::RELEASE_BOUND_MAX + std::time::Duration::from_secs(2);
        let _ = tokio::time::timeout(bound, h.stop_vrrp()).await;
        // keepalived's `omega`: quorum_down of the virtual servers that had their quorum.
        // Each command is killed at its own timeout; the bound here only guards the wait.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(120), h.omega()).await;
        // Live event streams never end by themselves; the servers wait for them.
        self.service.events().close();
        let _ = self.stop.send(true);
        let mut first_err = None;
        for (what, t) in std::mem::take(&mut self.tasks) {
            if what == "dataplane" {
                // The actor only reads inputs; ending it leaves the kernel table as it is (a
                // restart converges from there without touching what is already right).
                t.abort();
                continue;
            }
            let r = match t.await {
                Ok(r) => r,
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = r {
                tracing::error!(server = what, error = %e, "server ended with an error");
                first_err.get_or_insert(ServerError::Serve(what, e));
            }
        }
        self.store.close().await;
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropped without shutdown (a test that failed): end the tasks rather than leak them.
        let _ = self.stop.send(true);
        for (_, t) in &self.tasks {
            t.abort();
        }
    }
}

/// Serves until `shutdown` resolves, then drains.
pub async fn run(cfg: ServerConfig, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let running = start(cfg).await?;
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await
}
