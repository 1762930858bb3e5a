//! Real servers (keepalived's `real_server` block) and their health checks.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::units::Weight;
use super::virtual_server::{Forwarding, Id};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealServer {
    #[serde(default)]
    #[schema(read_only)]
    pub id: Id,
    #[schema(value_type = String, example = "192.168.10.103")]
    pub address: IpAddr,
    /// Defaults to the virtual server's port. With dr or tun forwarding the kernel cannot change
    /// the port, so it must equal the virtual server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub weight: Weight,
    /// Overrides the virtual server's forwarding method for this real server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<Forwarding>,
    /// On failure set weight 0 (existing connections drain) instead of removing the server.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// IPVS upper connection threshold (0 or absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_threshold: Option<u32>,
    /// IPVS lower connection threshold (0 or absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// keepalived TCP_CHECK: a TCP connect.
    Tcp,
    /// keepalived HTTP_GET: a plain-HTTP GET with an expected status.
    Http,
}

/// A health check. Timing follows keepalived: every `delay_loop` of the virtual server, try; on
/// failure retry `retry` times `delay_before_retry_ms` apart before declaring the server down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// Defaults to the real server's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<u16>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u32,
    /// keepalived `retry` (older configs: `nb_get_retry`).
    #[serde(default = "default_retry")]
    pub retry: u32,
    #[serde(default = "default_delay_before_retry_ms")]
    pub delay_before_retry_ms: u32,
    /// Consecutive successes needed to come up (absent: 1, keepalived's behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rise: Option<u32>,
    /// Consecutive failed rounds needed to go down (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall: Option<u32>,
    /// http only: the path to GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// http only: the status that counts as healthy (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_status: Option<u16>,
    /// http only: a substring the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

/// keepalived's defaults: connect_timeout 5 s, retry 1, delay_before_retry 1 s.
pub fn default_connect_timeout_ms() -> u32 {
    5_000
}
pub fn default_retry() -> u32 {
    1
}
pub fn default_delay_before_retry_ms() -> u32 {
    1_000
}
