//! `/api/v1/vrrp-settings`: the VRRP settings that span groups: sync groups (keepalived
//! `vrrp_sync_group`) and strict mode (keepalived `vrrp_strict`). Also in `/api/v1/config`
//! (`vrrp_settings`).

use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{Write, WriteQuery};
use super::patch::{body_as, put_body, Body};
use super::{etag, written, WriteSummary};
use crate::control::service::Service;
use crate::model::VrrpSettings;

const TAG: &str = "vrrp-groups";

/// What a PUT answers: the settings now configured, or with `dry_run` what would change.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum SettingsWritten {
    Set(VrrpSettings),
    DryRun(WriteSummary),
}

/// The VRRP settings: strict mode and the sync groups.
#[utoipa::path(get, path = "/api/v1/vrrp-settings", tag = TAG,
    responses((status = 200, body = VrrpSettings)))]
pub async fn get(State(svc): State<Service>) -> Response {
    let (rev, s) = svc.get_vrrp_settings();
    etag(rev, Json(s))
}

/// Replace the VRRP settings (a full replacement: `{}` is no strict mode and no sync
/// groups). A sync group names existing VRRP groups, each in one sync group only (422 with
/// rule `sync_group_member`, 409 for a group in two); with `strict` every VRRP group must
/// keep to it (422 with rule `vrrp_strict`, naming the group's field). With `?dry_run=true`
/// nothing is committed and the diff is returned.
#[utoipa::path(put, path = "/api/v1/vrrp-settings", tag = TAG, params(WriteQuery),
    request_body = VrrpSettings,
    responses(
        (status = 200, body = SettingsWritten, description = "set (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON or query"),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (m, opts) = put_body(&body, opts, &svc)?;
    let s: VrrpSettings = body_as(m)?;
    let r = svc.set_vrrp_settings(opts, s).await?;
    Ok(written(r))
}
