//! The data plane: desired state in, kernel converges.
//!
//! The control plane hands over a configuration [`crate::model::Snapshot`] per revision;
//! [`desired`] turns it (with health state) into the IPVS table lbd wants, and [`reconcile`]
//! diffs that against what the kernel reports into the few operations that converge it.
//! (The actor that owns this loop and the netlink kernel come with the IPVS work.)

pub mod actor;
pub mod desired;
pub mod health;
pub mod owned;
pub mod quorum;
pub mod reconcile;
pub mod view;
pub mod vrrp;
