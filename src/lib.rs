//! lbd: a load-balancer director in one daemon (VRRP + IPVS + health checks), managed over
//! HTTP and gRPC.
//!
//! # Layout, by layer
//!
//! Configuration flows down, status flows up.
//!
//! - [`daemon`]: `run(config, shutdown)` wires every part below together and drains on shutdown.
//! - Front ends, thin over [`control::service`]:
//!   - [`api`]: HTTP (axum, utoipa OpenAPI), the dashboard, the event stream and `/metrics`.
//!   - [`grpc`]: the same operations over gRPC (tonic).
//! - [`control`]: the control plane.
//!   - [`control::service`]: validate → store → publish the new [`model::Snapshot`].
//!   - [`control::store`]: the SQLite file; the only code that reads or writes it.
//!   - [`control::events`]: the event bus, and the task that persists events.
//!   - [`control::status`]: the status board (watch channels the data plane writes).
//!   - [`control::auth`]: bearer tokens and roles, `Host`/`Origin` checks.
//!   - [`control::listener`]: connection caps and timeouts for both front ends.
//!   - [`control::tls`]: TLS (rustls) for both front ends, reloaded on SIGHUP.
//!   - [`control::systemd`]: `sd_notify` readiness, stopping and the watchdog.
//! - [`model`]: domain types, validation and config diffs; no I/O.
//! - [`peer`]: peer sync between directors over authenticated gRPC (`lbd.peer.v1.Peer`, its own
//!   listener): [`peer::server`] streams this director's state, [`peer::link`] follows each
//!   peer's, [`peer::seal`] is the shared secret's MAC on every message;
//!   [`control::replication`] is the rule that decides between two configurations.
//! - [`dataplane`]: the data plane; one actor owns the kernel.
//!   - [`dataplane::actor`]: the actor; a snapshot or a verdict becomes kernel operations.
//!   - [`dataplane::desired`]: a snapshot (with health) to the IPVS table lbd wants.
//!   - [`dataplane::reconcile`]: wanted vs kernel table → the [`ipvs::table::IpvsOp`]s between.
//!   - [`dataplane::owned`]: the record of the services lbd created.
//!   - [`dataplane::quorum`]: keepalived's quorum up/down commands.
//!   - [`dataplane::view`]: the kernel's table and connections as the APIs show them.
//!   - [`dataplane::health`]: the health checkers (TCP, HTTP/SSL, MISC), one task each.
//!   - [`dataplane::vrrp`]: VRRP: sans-IO codec, timers and state machine, plus the engine
//!     thread and its raw socket.
//!   - [`dataplane::vrrp_commands`]: VRRP groups' track scripts and notify commands, on tasks
//!     of the data plane (never on the VRRP thread); the actor also tells the engine which
//!     tracked virtual servers fail ([`dataplane::vrrp::track`]: weights and the effective
//!     priority).
//!   - [`dataplane::connsync`]: the IPVS connection-sync daemons wanted vs running (sans-IO).
//!   - [`dataplane::failback`]: the failback gate: a returning director preempts only once its
//!     backup sync daemon has received the master's connections (sans-IO).
//! - [`kernel`]: the privileged boundary, the [`kernel::Kernel`] trait.
//!   - [`kernel::netlink`]: `NetlinkKernel`, the real one; [`kernel::memory`] for tests.
//!   - [`kernel::nlsocket`]: the netlink socket generic netlink and rtnetlink share.
//!   - [`kernel::rtnl`], [`kernel::interface`], [`kernel::garp`], [`kernel::ndisc`]: addresses,
//!     routes, rules and links (and the watch of their deletions), interface reads, gratuitous
//!     ARP, unsolicited IPv6 Neighbor Advertisements.
//!   - [`kernel::vmac`]: VRRP virtual-MAC interfaces (macvlan, keepalived's `use_vmac`).
//! - [`ipvs`]: IPVS below the kernel adapter.
//!   - [`ipvs::table`]: the table types the data plane and the kernel adapter share.
//!   - [`ipvs::wire`], [`ipvs::uapi`], [`ipvs::socket`], [`ipvs::conn`]: the generic-netlink
//!     wire format, its constants, the socket, and `/proc/net/ip_vs_conn`.
//! - [`keepalived`]: keepalived.conf import and export.
//! - [`cli`]: `lbd ctl` ([`cli::ctl`], [`cli::ipvsadm`]) and `lbd realserver`
//!   ([`cli::realserver_host`]).
//!
//! # Where to look
//!
//! - A VRRP advert is sent: [`dataplane::vrrp::engine`] carries out an instance's
//!   `Action::SendAdvert` on [`dataplane::vrrp::network::VrrpSocket::send`].
//! - A config change becomes a kernel operation: [`dataplane::actor`]'s pass diffs
//!   ([`dataplane::reconcile`]) and calls [`kernel::Kernel::ipvs_apply`], which
//!   [`kernel::netlink::NetlinkKernel`] turns into IPVS netlink commands.
//! - The SQLite file is written: [`control::store::Store`], and only there (config commits,
//!   the data plane's owned services, the events batches).
//! - A number on `/metrics` comes from: [`api::metrics`], which reads most of them at scrape
//!   time from the status and the kernel's table; what is counted as it happens is the HTTP
//!   requests ([`api::metrics::ApiMetrics`], a route layer), the gRPC calls
//!   ([`grpc::metrics`], a tower layer on the tonic server, handed to the HTTP side in
//!   [`api::AppState`]) and the health checks' attempts ([`dataplane::health::metrics`]: timed
//!   in the checker task, sent with its report, counted by the actor's `Checkers::apply` into
//!   the [`control::status::StatusBoard`]'s `HealthMetrics`).
//!
//! # Tasks, threads and channels
//!
//! ```text
//!   HTTP front end (axum)         gRPC front end (tonic)
//!           │ calls                       │ calls
//!           └──────────────┬──────────────┘
//!                          ▼
//!          control::service::Service ── commit ──▶ control::store (the SQLite file)
//!                          │                              ▲
//!                          │ watch<Arc<Snapshot>>         │ event batches
//!                          ▼                              │
//!   DataplaneHandle ─ mpsc Command ─▶ dataplane::actor    events::persist (task)
//!   (API, gRPC, watchdog;             (one task; owns the         ▲
//!    oneshot replies)                 Kernel: IPVS ops,           │
//!                                     big applies on              │
//!                                     spawn_blocking)             │
//!   health checkers ─ mpsc Report ─▶ actor                        │
//!   (a task each)      (verdicts)                                 │
//!   actor ─ std mpsc Configure/Stop + eventfd ─▶ VRRP engine      │
//!     (OS thread "lbd-vrrp": SCHED_FIFO, ppoll; raw socket        │
//!      for adverts; a Kernel of its own: VIPs, gratuitous ARP)    │
//!                                                                 │
//!   actor, checkers, engine ─ watch ─▶ StatusBoard ─▶ /status     │
//!   service, actor, engine ─ publish ─▶ EventBus ─ broadcast ─┬───┘
//!                                                             └─▶ event streams (HTTP, gRPC)
//! ```
//!
//! The daemon also runs the token reload task (SIGHUP or a changed file), with TLS the task
//! that reloads the certificate (SIGHUP; a `watch` the listeners read per connection), and
//! the systemd watchdog task, which pings only while the actor answers through its handle.

pub mod api;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod grpc;
pub mod ipvs;
pub mod keepalived;
pub mod kernel;
pub mod model;
pub mod peer;
