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
    /// keepalived MISC_CHECK: a command (run without a shell); exit 0 is healthy.
    Misc,
    /// keepalived SSL_GET: the http check over TLS (certificate not verified unless
    /// `tls_ca_file` is given, as keepalived).
    Https,
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
    /// http only: several urls, every one must pass (keepalived's HTTP_GET with several `url`
    /// blocks, status code ranges or a digest). Instead of `path` and `expected_status`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<UrlCheck>,
    /// misc only: the command line (keepalived `misc_path`), split on white space (quotes
    /// group), run without a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misc_path: Option<String>,
    /// misc only: the command is killed after this long (default: the virtual server's
    /// delay_loop, as keepalived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misc_timeout_ms: Option<u32>,
    /// misc only: exit 0 is healthy, 1 is not, 2-255 is healthy with weight `code - 2`
    /// (keepalived `misc_dynamic`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub misc_dynamic: bool,
    /// misc only: run the command as this user (keepalived `user`; lbd must run as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// https only: verify the server's certificate against the CA certificates in this PEM
    /// file (absent: no verification, keepalived's SSL_GET default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// https only: the name sent as SNI and, with `tls_ca_file`, verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// http/https only: the Host header (keepalived `virtualhost`; default: the real server's
    /// address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
}

/// Splits a command line on white space, with double or single quotes grouping (keepalived's
/// `misc_path` reading; no shell, no expansion).
pub fn split_command(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One `url` block of keepalived's HTTP_GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlCheck {
    pub path: String,
    /// Healthy statuses: codes and ranges ("200", "200-299"); empty: 200-299 (keepalived's
    /// default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>, example = json!(["200-299"]))]
    pub status_codes: Vec<StatusRange>,
    /// MD5 of the body, 32 hex digits, as keepalived's `digest` (genhash prints it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A status code or an inclusive range of them, written "204" or "200-299".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub from: u16,
    pub to: u16,
}

impl StatusRange {
    pub fn contains(self, status: u16) -> bool {
        (self.from..=self.to).contains(&status)
    }
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

impl std::str::FromStr for StatusRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let code = |x: &str| -> Result<u16, String> {
            match x.trim().parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(format!(
                    "`{s}` is not an HTTP status (100..=599) or a range of them (\"200-299\")"
                )),
            }
        };
        // A range that runs backwards is refused by validation (rule `status_range`): a
        // pattern can say what a code is, not that one is below another.
        Ok(StatusRange {
            from: code(a)?,
            to: code(b)?,
        })
    }
}

impl Serialize for StatusRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
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
