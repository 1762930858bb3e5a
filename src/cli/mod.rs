//! The command line beside the daemon (`src/main.rs` parses the arguments and calls these).
//!
//! - [`ctl`]: `lbd ctl`, the client that talks to a running lbd over its HTTP API.
//! - [`ipvsadm`]: ipvsadm's vocabulary for `lbd ctl`: scheduler and forwarding words, addresses,
//!   and the rule syntax of `ipvsadm -S` / `-R`.
//! - [`realserver_host`]: `lbd realserver up|down --vip ADDR`, which sets up an LVS-DR real
//!   server's host (the VIP on `lo`, the ARP sysctls); not to be confused with
//!   [`crate::model::real_server`], the configuration type.

pub mod ctl;
pub mod ipvsadm;
pub mod realserver_host;
