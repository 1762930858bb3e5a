//! VRRP (RFC 3768 v2, RFC 5798 v3).
//!
//! Sans-IO: the advertisement codec ([`packet`]), the timer arithmetic ([`timer`]), the
//! per-group state machine ([`instance`]) and the configuration diff it takes edits by
//! ([`change`]) read no clock and touch no network.
//!
//! With I/O: [`network`] is the raw IP protocol 112 sockets (IPv4, and IPv6 with its control
//! messages); [`engine`] is the thread that drives the instances with [`Input`]s and carries
//! out their [`Action`]s (adverts on the sockets, virtual addresses and gratuitous ARP or
//! unsolicited NAs through the [`crate::kernel::Kernel`] trait). [`sync_group`] is the
//! sans-IO rule of keepalived's sync groups the engine applies between instances; [`watch`] is
//! the sans-IO side of keepalived's tracking of a master's addresses, routes and rules.

pub mod change;
pub mod checksum;
pub mod engine;
pub mod instance;
pub mod network;
pub mod packet;
pub mod sync_group;
pub mod timer;
pub mod track;
pub mod watch;

pub use change::Change;
pub use instance::{
    Action, ConfigError, Counters, Input, Instance, InstanceConfig, Reason, State, Transition,
};
pub use packet::{
    decode, validate_ip_header, AuthPass, AuthType, DecodeError, EncodeError, IpHeaderError,
    PacketKind, Version, VrrpPacket,
};
pub use timer::{ProtocolVersion, Timer};
pub use track::{TrackKey, TrackState, Tracker};

#[cfg(test)]
pub(crate) mod tests;
