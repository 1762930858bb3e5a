//! VRRP (RFC 3768 v2, RFC 5798 v3) without I/O: the advertisement codec ([`packet`]), the
//! timer arithmetic ([`timer`]) and the per-group state machine ([`instance`]).
//!
//! The socket layer (raw IP protocol 112 socket, gratuitous ARP, VIP netlink calls) drives an
//! [`Instance`] with [`Input`]s and carries out its [`Action`]s; nothing here reads a clock or
//! touches the network.

pub mod checksum;
pub mod instance;
pub mod packet;
pub mod timer;

pub use instance::{
    Action, ConfigError, Counters, Input, Instance, InstanceConfig, Reason, State, Transition,
};
pub use packet::{
    decode, validate_ip_header, AuthPass, AuthType, DecodeError, EncodeError, IpHeaderError,
    PacketKind, Version, VrrpPacket,
};
pub use timer::{ProtocolVersion, Timer};

#[cfg(test)]
mod tests;
