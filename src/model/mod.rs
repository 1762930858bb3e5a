//! Domain types and validation, no I/O. The API serializes these types directly (snake_case
//! JSON); the gRPC layer converts them to and from `proto/`.

pub mod config;
pub mod connection_sync;
pub mod diff;
pub mod idmap;
pub mod ipvs_timeouts;
pub mod limits;
pub mod real_server;
pub mod units;
pub mod validate;
pub mod virtual_server;
pub mod vrrp_group;
pub mod vrrp_routes;
pub mod vrrp_settings;

pub use config::{Config, Snapshot};
pub use connection_sync::ConnectionSync;
pub use diff::{Change, ChangeOp, EntityKind, FieldChange};
pub use ipvs_timeouts::IpvsTimeouts;
pub use real_server::{CheckKind, HealthCheck, RealServer, StatusRange, UrlCheck};
pub use units::{Centiseconds, Priority, TimeoutSecs, Vrid, Weight};
pub use validate::{ErrorKind, ValidationError};
pub use virtual_server::{
    Family, Forwarding, Id, Protocol, Scheduler, SchedulerFlag, SorryServer, VirtualServer, VsKey,
};
pub use vrrp_group::{
    GarpSettings, InitialState, Notify, TrackScript, TrackWeight, TrackedInterface,
    TrackedVirtualServer, VirtualAddress, VrrpGroup, VrrpNode,
};
pub use vrrp_routes::{Prefix, RouteType, Scope, VirtualRoute, VirtualRule};
pub use vrrp_settings::{VrrpSettings, VrrpSyncGroup};
