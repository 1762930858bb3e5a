//! lbd: a load-balancer director in one daemon (VRRP + IPVS + health checks), managed over
//! HTTP and gRPC.
//!
//! Configuration flows down, status flows up:
//!
//! - [`model`]: domain types, validation and config diffs; no I/O.
//! - [`store`]: the SQLite file; the only code that touches it.
//! - [`service`]: the one service layer both front ends call (validate → store → publish the
//!   new [`model::Snapshot`] on a watch channel for the data plane).
//! - [`api`] (axum + utoipa OpenAPI) and [`grpc`] (tonic): thin front ends over [`service`].
//! - [`auth`]: bearer tokens and roles for both front ends, and the `Host`/`Origin` checks.
//! - [`events`] and [`status`]: the one status/event stream every reader shares.
//! - [`server`]: `run(config, shutdown)` wires them together and drains on shutdown.
//! - [`systemd`]: `sd_notify` readiness, stopping and a watchdog earned by the data-plane
//!   actor's answers (`packaging/lbd.service`).
//! - [`listener`]: accepting connections for both front ends within a connection cap and
//!   header/idle timeouts (the body limits are the API's, in [`api::limits`]).

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
