//! IPVS over generic netlink: the kernel UAPI constants ([`uapi`]), wire types and framing
//! ([`wire`]), and a socket that sends requests and dumps tables ([`socket`]).
//!
//! This is the low layer the data plane's netlink kernel will use; it knows nothing of lbd's
//! model. Tested against a real kernel in the guest (tests/guest_ipvs.rs).

pub mod conn;
pub mod socket;
pub mod table;
pub mod uapi;
pub mod wire;

pub use socket::{IpvsError, IpvsSocket};
pub use wire::{DestAttrs, SvcAttrs};
