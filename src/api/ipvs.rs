//! `/api/v1/ipvs`: the kernel's IPVS table as lbd reads it (what `ipvsadm -Ln` shows), and
//! zeroing its counters (`ipvsadm -Z`).

use std::net::IpAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::etag;
use crate::control::service::{Service, ServiceError};
use crate::dataplane::actor::{DataplaneHandle, HandleError};
use crate::kernel::KernelError;
use crate::model::validate::rule;
use crate::model::{Family, Protocol, VsKey};

pub use crate::dataplane::view::{IpvsDestView, IpvsServiceView, IpvsTableView};

/// The kernel's whole IPVS table (services lbd does not manage included), read now.
#[utoipa::path(get, path = "/api/v1/ipvs", tag = "status",
    responses((status = 200, body = IpvsTableView),
              (status = 503, body = ErrorBody, description = "IPVS is unavailable (status says why)")))]
pub async fn table(
    State(svc): State<Service>,
    State(h): State<DataplaneHandle>,
) -> Result<Response, ApiError> {
    let rev = svc.snapshot().revision;
    // Every failure is a 503 here, a missing service included (the table has none to miss).
    let v = h.ipvs_view().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    })?;
    Ok(etag(rev, Json(v)))
}

/// The kernel's IPVS connection table (what `ipvsadm -Lnc` shows).
#[utoipa::path(get, path = "/api/v1/ipvs/connections", tag = "status",
    responses((status = 200, body = Vec<crate::ipvs::conn::Connection>),
              (status = 503, body = ErrorBody, description = "IPVS is unavailable")))]
pub async fn connections(
    State(svc): State<Service>,
    State(h): State<DataplaneHandle>,
) -> Result<Response, ApiError> {
    let rev = svc.snapshot().revision;
    let conns = h.connections().await.map_err(dataplane_error)?;
    Ok(etag(rev, Json(conns)))
}

/// One service of the kernel's table, named as `GET /api/v1/ipvs` lists it: `address` and
/// `port` (with `protocol`, default tcp), or `fwmark` (with `family`, default ipv4). Nothing:
/// every service.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceQuery {
    /// tcp (default), udp or sctp; with `address` and `port`.
    pub protocol: Option<Protocol>,
    #[param(value_type = Option<String>, example = "192.168.10.100")]
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    /// A firewall-mark service (1..=4294967295); instead of `address` and `port`.
    #[param(minimum = 1)]
    pub fwmark: Option<u32>,
    /// With `fwmark`: ipv4 (default) or ipv6.
    pub family: Option<Family>,
}

/// A query that breaks a rule between its parameters (`error.rule`: no query schema can state
/// "address and port together, or fwmark"), or, with `rule` `None`, one parameter's own limit.
fn invalid(field: &str, rule: Option<&'static str>, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid {
        field: field.into(),
        message: message.into(),
        rule,
    }
}

impl ServiceQuery {
    /// The service named, `None` for every service; a half-named one is an error naming the
    /// field (HTTP 422, gRPC InvalidArgument).
    pub fn selected(&self) -> Result<Option<VsKey>, ServiceError> {
        match (self.address, self.port, self.fwmark) {
            (None, None, None) => {
                if self.protocol.is_some() {
                    return Err(invalid(
                        "address",
                        Some(rule::IDENTITY),
                        "protocol names no service without address and port",
                    ));
                }
                if self.family.is_some() {
                    return Err(invalid(
                        "fwmark",
                        Some(rule::IDENTITY),
                        "family names no service without fwmark",
                    ));
                }
                Ok(None)
            }
            (None, None, Some(mark)) => {
                if self.protocol.is_some() {
                    return Err(invalid(
                        "protocol",
                        Some(rule::IDENTITY),
                        "a firewall-mark service has no protocol",
                    ));
                }
                if mark == 0 {
                    return Err(invalid(
                        "fwmark",
                        None,
                        "fwmark must be in 1..=4294967295, got 0",
                    ));
                }
                Ok(Some(VsKey::Fwmark {
                    mark,
                    family: self.family.unwrap_or(Family::Ipv4),
                }))
            }
            (_, _, Some(_)) => Err(invalid(
                "fwmark",
                Some(rule::IDENTITY),
                "give address and port, or fwmark, not both",
            )),
            (Some(address), Some(port), None) => {
                let (family, name) = if address.is_ipv4() {
                    (Family::Ipv4, "ipv4")
                } else {
                    (Family::Ipv6, "ipv6")
                };
                if self.family.is_some_and(|f| f != family) {
                    return Err(invalid(
                        "family",
                        Some(rule::ADDRESS_FAMILY),
                        format!("{address} is an {name} address; leave family out"),
                    ));
                }
                Ok(Some(VsKey::Addr {
                    address,
                    port,
                    protocol: self.protocol.unwrap_or(Protocol::Tcp),
                }))
            }
            (None, Some(_), None) => Err(invalid(
                "address",
                Some(rule::IDENTITY),
                "a service is address and port: address is missing",
            )),
            (Some(_), None, None) => Err(invalid(
                "port",
                Some(rule::IDENTITY),
                "a service is address and port: port is missing",
            )),
        }
    }
}

/// What `POST /api/v1/ipvs/zero` zeroed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Zeroed {
    /// `all` (every service of the kernel's table), or the service, e.g. `tcp 192.168.10.100:80`,
    /// `fwmark 7 ipv4`.
    pub zeroed: String,
}

/// A data-plane failure as HTTP: 404 for a service the kernel does not have, 503 otherwise
/// (no IPVS, no permission, a refusal, the data plane not running).
pub fn dataplane_error(e: HandleError) -> ApiError {
    match e {
        HandleError::Kernel(KernelError::NoSuchService(_)) => ApiError::not_found(e.to_string()),
        e => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

/// Zero the traffic counters (`ipvsadm -Z`): of every service of the kernel's table, or of the
/// one the query names (`?address=192.168.10.100&port=80`, `&protocol=udp`; or `?fwmark=7`,
/// `&family=ipv6`), lbd's or not. Connection counts and the configuration are not touched.
#[utoipa::path(post, path = "/api/v1/ipvs/zero", tag = "status", params(ServiceQuery),
    responses((status = 200, body = Zeroed),
              (status = 400, body = ErrorBody, description = "a malformed query"),
              (status = 404, body = ErrorBody, description = "the kernel's table has no such service"),
              (status = 422, body = ErrorBody, description = "the query names no whole service (`field` says what is missing)"),
              (status = 503, body = ErrorBody, description = "IPVS is unavailable (status says why)")))]
pub async fn zero(
    State(svc): State<Service>,
    State(h): State<DataplaneHandle>,
    q: Result<Query<ServiceQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let key = q.selected()?;
    let rev = svc.snapshot().revision;
    h.zero(key.map(crate::dataplane::desired::kernel_key))
        .await
        .map_err(dataplane_error)?;
    let zeroed = key.map_or_else(|| "all".to_string(), |k| k.to_string());
    Ok(etag(rev, Json(Zeroed { zeroed })))
}
