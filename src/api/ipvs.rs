//! `/api/v1/ipvs`: the kernel's IPVS table as lbd reads it (what `ipvsadm -Ln` shows).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::etag;
use crate::dataplane::table::{FamilyKey, IpvsTable, ProtocolKey, ServiceKey, Stats, Timeouts};
use crate::model::Forwarding;
use crate::service::Service;

#[derive(Debug, Serialize, ToSchema)]
pub struct IpvsTableView {
    /// The kernel's connection timeouts (`ipvsadm -L --timeout`), when it reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    pub services: Vec<IpvsServiceView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IpvsServiceView {
    /// tcp, udp, sctp; absent for a fwmark service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    pub family: String,
    pub scheduler: String,
    pub flags: u32,
    /// Persistence timeout in seconds (0: not persistent).
    pub timeout_secs: u32,
    pub netmask_prefix: u8,
    /// Totals and rates, as `ipvsadm -Ln --stats` / `--rate` show them.
    pub stats: Stats,
    pub destinations: Vec<IpvsDestView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IpvsDestView {
    pub address: String,
    pub port: u16,
    pub forwarding: Forwarding,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Stats,
}

pub fn view(t: &IpvsTable) -> IpvsTableView {
    let services = t
        .services
        .iter()
        .map(|(k, s)| {
            let counters = t.counters.get(k).cloned().unwrap_or_default();
            let (protocol, address, port, fwmark, family) = match k {
                ServiceKey::Addr {
                    protocol,
                    address,
                    port,
                } => (
                    Some(
                        match protocol {
                            ProtocolKey::Tcp => "tcp",
                            ProtocolKey::Udp => "udp",
                            ProtocolKey::Sctp => "sctp",
                        }
                        .to_string(),
                    ),
                    Some(address.to_string()),
                    Some(*port),
                    None,
                    if address.is_ipv4() { "ipv4" } else { "ipv6" },
                ),
                ServiceKey::Fwmark { family, mark } => (
                    None,
                    None,
                    None,
                    Some(*mark),
                    if *family == FamilyKey::Ipv4 {
                        "ipv4"
                    } else {
                        "ipv6"
                    },
                ),
            };
            IpvsServiceView {
                protocol,
                address,
                port,
                fwmark,
                family: family.to_string(),
                scheduler: s.spec.scheduler.clone(),
                flags: s.spec.flags,
                timeout_secs: s.spec.timeout,
                netmask_prefix: s.spec.netmask_prefix,
                stats: counters.stats,
                destinations: s
                    .dests
                    .iter()
                    .map(|(dk, ds)| {
                        let c = counters.dests.get(dk).copied().unwrap_or_default();
                        IpvsDestView {
                            address: dk.address.to_string(),
                            port: dk.port,
                            forwarding: ds.forwarding,
                            weight: ds.weight,
                            upper_threshold: ds.upper_threshold,
                            lower_threshold: ds.lower_threshold,
                            active_conns: c.active_conns,
                            inactive_conns: c.inactive_conns,
                            persistent_conns: c.persistent_conns,
                            stats: c.stats,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    IpvsTableView {
        timeouts: t.timeouts,
        services,
    }
}

/// The kernel's whole IPVS table (services lbd does not manage included), read now.
#[utoipa::path(get, path = "/api/v1/ipvs", tag = "status",
    responses((status = 200, body = IpvsTableView),
              (status = 503, body = ErrorBody, description = "IPVS is unavailable (status says why)")))]
pub async fn table(State(svc): State<Service>) -> Result<Response, ApiError> {
    let rev = svc.snapshot().revision;
    let h = svc.dataplane().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the data plane is not running",
        )
    })?;
    let t = h.kernel_table().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    })?;
    Ok(etag(rev, Json(view(&t))))
}

/// The kernel's IPVS connection table (what `ipvsadm -Lnc` shows).
#[utoipa::path(get, path = "/api/v1/ipvs/connections", tag = "status",
    responses((status = 200, body = Vec<crate::ipvs::conn::Connection>),
              (status = 503, body = ErrorBody, description = "IPVS is unavailable")))]
pub async fn connections(State(svc): State<Service>) -> Result<Response, ApiError> {
    let rev = svc.snapshot().revision;
    let conns = tokio::task::spawn_blocking(crate::ipvs::conn::read)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("IPVS is unavailable: /proc/net/ip_vs_conn: {e}"),
            )
        })?;
    Ok(etag(rev, Json(conns)))
}
