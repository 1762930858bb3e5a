//! IPVS below the kernel adapter: the table types the data plane and the kernel adapter share
//! ([`table`]), and IPVS over generic netlink: the kernel UAPI constants ([`uapi`]), wire types
//! and framing ([`wire`]), a socket that sends requests and dumps tables ([`socket`]), and the
//! connection table read from `/proc/net/ip_vs_conn` ([`conn`]).
//!
//! The netlink part is the low layer `crate::kernel::netlink` uses; it knows nothing of lbd's
//! model. Tested against a real kernel in the guest (tests/guest_ipvs.rs).

pub mod conn;
pub mod socket;
pub mod table;
pub mod uapi;
pub mod wire;

pub use socket::{IpvsError, IpvsSocket};
pub use wire::{DestAttrs, SvcAttrs};
