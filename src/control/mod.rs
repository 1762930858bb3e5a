//! The control plane: what the operator asks for, where it is kept, and what is reported back.
//!
//! - [`service`]: the one service layer both front ends call: validate, store, publish the new
//!   [`crate::model::Snapshot`] on a watch channel for the data plane.
//! - [`store`]: the SQLite store; the only code that reads or writes the database file.
//! - [`events`]: the event bus (a broadcast channel plus recent history) and the task that
//!   persists events to the store in batches.
//! - [`status`]: what `/api/v1/status` and gRPC `GetStatus` report, from the data plane's status
//!   watch channel.
//! - [`auth`]: bearer tokens and roles for both front ends, and the `Host`/`Origin` checks.
//! - [`listener`]: accepting connections for both front ends within a connection cap and
//!   header/idle timeouts.
//! - [`replication`]: the rule that decides between two directors' configurations (peer sync):
//!   fast-forward, ahead, or a split edit and who wins it.
//! - [`tls`]: rustls configurations: the front ends' certificate (reloaded on SIGHUP) and
//!   mutual TLS from `(ca, cert, key)`.
//! - [`systemd`]: `sd_notify` readiness, stopping and a watchdog earned by the data-plane actor's
//!   answers (`packaging/lbd.service`).

pub mod auth;
pub mod events;
pub mod listener;
pub mod replication;
pub mod service;
pub mod status;
pub mod store;
pub mod systemd;
pub mod tls;
