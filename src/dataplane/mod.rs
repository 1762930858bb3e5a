//! The data plane: desired state in, kernel converges.
//!
//! The control plane hands over a configuration [`crate::model::Snapshot`] per revision;
//! [`desired`] turns it (with health state) into the IPVS table lbd wants, and [`reconcile`]
//! diffs that against what the kernel reports into the few operations that converge it.
//! [`actor`] owns that loop, the kernel, the health checkers ([`health`]) and the VRRP engine
//! ([`vrrp`]); [`owned`] records the services lbd created, [`quorum`] runs keepalived's quorum
//! commands, and [`view`] is the kernel's table as the APIs show it. The table types themselves
//! are [`crate::ipvs::table`]'s, shared with the kernel adapter. [`connsync`] plans the IPVS
//! connection-sync daemons, and [`failback`] is the gate that holds a returning director's
//! preemption until its backup daemon has received the master's connections.

pub mod actor;
pub mod connsync;
pub mod desired;
pub mod failback;
pub mod health;
pub mod owned;
pub mod quorum;
pub mod reconcile;
pub mod view;
pub mod vrrp;
pub mod vrrp_commands;
