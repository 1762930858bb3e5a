//! The `lbd.v1.Lbd` service: each method converts, calls the service layer, converts back.

use tonic::{Request, Response, Status};

use super::convert::{self, invalid};
use super::mask;
use super::pb;
use crate::api::patch::{from_value, to_value};
use crate::control::auth::{Auth, Caller, Role};
use crate::control::service::{Service, ServiceError, WriteOptions};
use crate::dataplane::actor::DataplaneHandle;

/// The `lbd.v1.Lbd` service: what `grpc::serve` builds, from the parts `server::start` wires.
pub struct LbdApi {
    pub service: Service,
    pub dataplane: DataplaneHandle,
    /// The message descriptors update masks are checked against, decoded once.
    pub masks: mask::Descriptors,
    /// For `GetStatus`: whether the API asks for tokens.
    pub auth: Auth,
}

pub fn status_of(e: ServiceError) -> Status {
    match e {
        ServiceError::Invalid { field, message, .. } => invalid(&field, &message),
        ServiceError::Conflict { field, message } => {
            let mut s = Status::already_exists(format!("{field}: {message}"));
            if let Ok(v) = field.parse() {
                s.metadata_mut().insert("lbd-field", v);
            }
            s
        }
        ServiceError::NotFound(_) => Status::not_found(e.to_string()),
        ServiceError::RevisionMismatch { .. } => Status::failed_precondition(e.to_string()),
        ServiceError::Store(_) | ServiceError::Internal(_) => {
            let id = crate::api::error::error_id();
            tracing::error!(error_id = %id, error = %e, "gRPC request failed");
            Status::internal(format!(
                "internal error; the server's log has the details under error id {id}"
            ))
        }
    }
}

fn opts(o: Option<pb::WriteOptions>) -> WriteOptions {
    let o = o.unwrap_or_default();
    WriteOptions {
        expected_revision: o.expected_revision,
        dry_run: o.dry_run,
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::lbd_server::Lbd for LbdApi {
    async fn list_virtual_servers(
        &self,
        _: Request<pb::ListVirtualServersRequest>,
    ) -> R<pb::ListVirtualServersResponse> {
        let s = self.service.snapshot();
        Ok(Response::new(pb::ListVirtualServersResponse {
            revision: s.revision,
            virtual_servers: s
                .config
                .virtual_servers
                .iter()
                .map(|v| convert::virtual_server_out(v))
                .collect(),
        }))
    }

    async fn get_virtual_server(
        &self,
        r: Request<pb::GetVirtualServerRequest>,
    ) -> R<pb::GetVirtualServerResponse> {
        let (revision, vs) = self
            .service
            .get_virtual_server(r.into_inner().id)
            .map_err(status_of)?;
        Ok(Response::new(pb::GetVirtualServerResponse {
            revision,
            virtual_server: Some(convert::virtual_server_out(&vs)),
        }))
    }

    async fn create_virtual_server(
        &self,
        r: Request<pb::CreateVirtualServerRequest>,
    ) -> R<pb::VirtualServerWriteResponse> {
        let r = r.into_inner();
        let vs = convert::virtual_server_in(r.virtual_server)?;
        let w = self
            .service
            .create_virtual_server(vs, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::VirtualServerWriteResponse {
            result: Some(convert::result_out(&w)),
            virtual_server: (!w.dry_run).then(|| convert::virtual_server_out(&w.value)),
        }))
    }

    async fn replace_virtual_server(
        &self,
        r: Request<pb::ReplaceVirtualServerRequest>,
    ) -> R<pb::VirtualServerWriteResponse> {
        let r = r.into_inner();
        let vs = convert::virtual_server_in(r.virtual_server)?;
        let w = self
            .service
            .replace_virtual_server(r.id, vs, r.replace_real_servers, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::VirtualServerWriteResponse {
            result: Some(convert::result_out(&w)),
            virtual_server: (!w.dry_run).then(|| convert::virtual_server_out(&w.value)),
        }))
    }

    async fn update_virtual_server(
        &self,
        r: Request<pb::UpdateVirtualServerRequest>,
    ) -> R<pb::VirtualServerWriteResponse> {
        let r = r.into_inner();
        let mask = self.masks.parse("VirtualServer", r.update_mask)?;
        let new = convert::virtual_server_json(r.virtual_server)?;
        let replace_real_servers = mask.names("real_servers");
        let w = self
            .service
            .update_virtual_server(r.id, opts(r.options), |cur| {
                let mut v = to_value(cur)?;
                mask.apply(&mut v, &new);
                Ok((from_value(v)?, replace_real_servers))
            })
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::VirtualServerWriteResponse {
            result: Some(convert::result_out(&w)),
            virtual_server: (!w.dry_run).then(|| convert::virtual_server_out(&w.value)),
        }))
    }

    async fn delete_virtual_server(
        &self,
        r: Request<pb::DeleteVirtualServerRequest>,
    ) -> R<pb::WriteResult> {
        let r = r.into_inner();
        let w = self
            .service
            .delete_virtual_server(r.id, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(convert::result_out(&w)))
    }

    async fn list_real_servers(
        &self,
        r: Request<pb::ListRealServersRequest>,
    ) -> R<pb::ListRealServersResponse> {
        let (revision, vs) = self
            .service
            .get_virtual_server(r.into_inner().virtual_server_id)
            .map_err(status_of)?;
        Ok(Response::new(pb::ListRealServersResponse {
            revision,
            real_servers: vs
                .real_servers
                .iter()
                .map(convert::real_server_out)
                .collect(),
        }))
    }

    async fn get_real_server(
        &self,
        r: Request<pb::GetRealServerRequest>,
    ) -> R<pb::GetRealServerResponse> {
        let r = r.into_inner();
        let (revision, rs) = self
            .service
            .get_real_server(r.virtual_server_id, r.id)
            .map_err(status_of)?;
        Ok(Response::new(pb::GetRealServerResponse {
            revision,
            real_server: Some(convert::real_server_out(&rs)),
        }))
    }

    async fn create_real_server(
        &self,
        r: Request<pb::CreateRealServerRequest>,
    ) -> R<pb::RealServerWriteResponse> {
        let r = r.into_inner();
        let rs = convert::real_server_in(r.real_server)?;
        let w = self
            .service
            .create_real_server(r.virtual_server_id, rs, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::RealServerWriteResponse {
            result: Some(convert::result_out(&w)),
            real_server: (!w.dry_run).then(|| convert::real_server_out(&w.value)),
        }))
    }

    async fn replace_real_server(
        &self,
        r: Request<pb::ReplaceRealServerRequest>,
    ) -> R<pb::RealServerWriteResponse> {
        let r = r.into_inner();
        let rs = convert::real_server_in(r.real_server)?;
        let w = self
            .service
            .replace_real_server(r.virtual_server_id, r.id, rs, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::RealServerWriteResponse {
            result: Some(convert::result_out(&w)),
            real_server: (!w.dry_run).then(|| convert::real_server_out(&w.value)),
        }))
    }

    async fn update_real_server(
        &self,
        r: Request<pb::UpdateRealServerRequest>,
    ) -> R<pb::RealServerWriteResponse> {
        let caller = r.extensions().get::<Caller>().copied();
        let r = r.into_inner();
        let mask = self.masks.parse("RealServer", r.update_mask)?;
        // `operate` drains, undrains and weighs; anything else the mask names needs `admin`.
        if let Some(Caller(role)) = caller {
            if role < Role::Admin {
                if let Some(path) = mask.beyond(&["weight"]) {
                    return Err(Status::permission_denied(format!(
                        "this token's role is {}: it may change weight only; update_mask path {path:?} needs admin",
                        role.as_str()
                    )));
                }
            }
        }
        let new = convert::real_server_json(r.real_server)?;
        let w = self
            .service
            .update_real_server(r.virtual_server_id, r.id, opts(r.options), |cur| {
                let mut v = to_value(cur)?;
                mask.apply(&mut v, &new);
                from_value(v)
            })
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::RealServerWriteResponse {
            result: Some(convert::result_out(&w)),
            real_server: (!w.dry_run).then(|| convert::real_server_out(&w.value)),
        }))
    }

    async fn delete_real_server(
        &self,
        r: Request<pb::DeleteRealServerRequest>,
    ) -> R<pb::WriteResult> {
        let r = r.into_inner();
        let w = self
            .service
            .delete_real_server(r.virtual_server_id, r.id, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(convert::result_out(&w)))
    }

    async fn list_vrrp_groups(
        &self,
        _: Request<pb::ListVrrpGroupsRequest>,
    ) -> R<pb::ListVrrpGroupsResponse> {
        let s = self.service.snapshot();
        Ok(Response::new(pb::ListVrrpGroupsResponse {
            revision: s.revision,
            vrrp_groups: s
                .config
                .vrrp_groups
                .iter()
                .map(convert::vrrp_group_out)
                .collect(),
        }))
    }

    async fn get_vrrp_group(
        &self,
        r: Request<pb::GetVrrpGroupRequest>,
    ) -> R<pb::GetVrrpGroupResponse> {
        let (revision, g) = self
            .service
            .get_vrrp_group(r.into_inner().id)
            .map_err(status_of)?;
        Ok(Response::new(pb::GetVrrpGroupResponse {
            revision,
            vrrp_group: Some(convert::vrrp_group_out(&g)),
        }))
    }

    async fn create_vrrp_group(
        &self,
        r: Request<pb::CreateVrrpGroupRequest>,
    ) -> R<pb::VrrpGroupWriteResponse> {
        let r = r.into_inner();
        let g = convert::vrrp_group_in(r.vrrp_group)?;
        let w = self
            .service
            .create_vrrp_group(g, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::VrrpGroupWriteResponse {
            result: Some(convert::result_out(&w)),
            vrrp_group: (!w.dry_run).then(|| convert::vrrp_group_out(&w.value)),
        }))
    }

    async fn replace_vrrp_group(
        &self,
        r: Request<pb::ReplaceVrrpGroupRequest>,
    ) -> R<pb::VrrpGroupWriteResponse> {
        let r = r.into_inner();
        let g = convert::vrrp_group_in(r.vrrp_group)?;
        let w = self
            .service
            .replace_vrrp_group(r.id, g, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::VrrpGroupWriteResponse {
            result: Some(convert::result_out(&w)),
            vrrp_group: (!w.dry_run).then(|| convert::vrrp_group_out(&w.value)),
        }))
    }

    async fn update_vrrp_group(
        &self,
        r: Request<pb::UpdateVrrpGroupRequest>,
    ) -> R<pb::VrrpGroupWriteResponse> {
        let r = r.into_inner();
        let mask = self.masks.parse("VrrpGroup", r.update_mask)?;
        let new = convert::vrrp_group_json(r.vrrp_group)?;
        // Naming auth_pass and leaving it unset clears it ("*" keeps it, as Replace does).
        let clear_pass = matches!(&mask, mask::Mask::Paths(_))
            && mask.names("auth_pass")
            && new.get("auth_pass").is_none();
        let w = self
            .service
            .update_vrrp_group(r.id, opts(r.options), |cur| {
                let mut v = to_value(cur)?;
                mask.apply(&mut v, &new);
                let mut g: crate::model::VrrpGroup = from_value(v)?;
                if clear_pass {
                    g.auth_pass = Some(String::new());
                }
                Ok(g)
            })
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::VrrpGroupWriteResponse {
            result: Some(convert::result_out(&w)),
            vrrp_group: (!w.dry_run).then(|| convert::vrrp_group_out(&w.value)),
        }))
    }

    async fn update_vrrp_node(
        &self,
        r: Request<pb::UpdateVrrpNodeRequest>,
    ) -> R<pb::VrrpNodeWriteResponse> {
        let r = r.into_inner();
        let mask = self.masks.parse("VrrpNode", r.update_mask)?;
        let new = convert::vrrp_node_json(r.vrrp_node)?;
        let (id, node) = (r.vrrp_group_id, r.node);
        let not_found =
            |id, node: &str| ServiceError::NotFound(format!("node {node:?} of VRRP group {id}"));
        let w = self
            .service
            .update_vrrp_group(id, opts(r.options), |cur| {
                let mut g = cur.clone();
                let n = g
                    .nodes
                    .iter_mut()
                    .find(|n| n.node == node)
                    .ok_or_else(|| not_found(id, &node))?;
                let mut v = to_value(&*n)?;
                mask.apply(&mut v, &new);
                *n = from_value(v)?;
                Ok(g)
            })
            .await
            .map_err(status_of)?;
        // A renamed entry is found under its new name.
        let name = new
            .get("node")
            .and_then(|v| v.as_str())
            .filter(|_| mask.names("node"))
            .unwrap_or(&node);
        let vrrp_node = if w.dry_run {
            None
        } else {
            Some(convert::vrrp_node_out(
                w.value
                    .node(name)
                    .ok_or_else(|| status_of(not_found(id, name)))?,
            ))
        };
        Ok(Response::new(pb::VrrpNodeWriteResponse {
            result: Some(convert::result_out(&w)),
            vrrp_node,
        }))
    }

    async fn delete_vrrp_group(
        &self,
        r: Request<pb::DeleteVrrpGroupRequest>,
    ) -> R<pb::WriteResult> {
        let r = r.into_inner();
        let w = self
            .service
            .delete_vrrp_group(r.id, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(convert::result_out(&w)))
    }

    async fn get_config(&self, _: Request<pb::GetConfigRequest>) -> R<pb::GetConfigResponse> {
        let s = self.service.snapshot();
        Ok(Response::new(pb::GetConfigResponse {
            revision: s.revision,
            config: Some(convert::config_out(&s.config)),
        }))
    }

    async fn replace_config(&self, r: Request<pb::ReplaceConfigRequest>) -> R<pb::WriteResult> {
        let r = r.into_inner();
        let cfg = convert::config_in(r.config)?;
        let w = self
            .service
            .replace_config(cfg, opts(r.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(convert::result_out(&w)))
    }

    async fn import_keepalived(
        &self,
        r: Request<pb::ImportKeepalivedRequest>,
    ) -> R<pb::ImportKeepalivedResponse> {
        let r = r.into_inner();
        if crate::keepalived::looks_squashed(&r.text) {
            return Err(convert::invalid("text", crate::keepalived::SQUASHED));
        }
        let iopts = crate::keepalived::ImportOptions {
            prefer_file: r.prefer_file,
            replace: r.replace,
            allow_unchecked: r.allow_unchecked,
            strict: r.strict,
        };
        let imported = crate::keepalived::convert_body(&r.text, &r.node_name, iopts)
            .map_err(|e| convert::invalid("text", &e.to_string()))?;
        let w = self
            .service
            .import_keepalived(imported, &r.node_name, iopts, opts(r.options))
            .await
            .map_err(status_of)?;
        let note = |w: &crate::keepalived::Warning| pb::ImportNote {
            at: w.at.clone(),
            message: w.message.clone(),
        };
        Ok(Response::new(pb::ImportKeepalivedResponse {
            result: Some(convert::result_out(&w)),
            warnings: w.value.warnings.iter().map(note).collect(),
            unsupported: w.value.unsupported.iter().map(note).collect(),
        }))
    }

    async fn get_status(&self, _: Request<pb::GetStatusRequest>) -> R<pb::Status> {
        let s = self.service.status_with_connections().await;
        let d = &s.dataplane;
        Ok(Response::new(pb::Status {
            node: s.node.clone(),
            version: s.version.clone(),
            revision: s.revision,
            uptime_secs: s.uptime_secs,
            virtual_servers: s.virtual_servers as u64,
            real_servers: s.real_servers as u64,
            vrrp_groups: s.vrrp_groups as u64,
            dataplane: Some(pb::DataplaneStatus {
                state: dataplane_state(d.state) as i32,
                reason: d.reason.clone(),
                applied_revision: d.applied_revision,
                services: d.services as u64,
                destinations: d.destinations as u64,
                ops_applied: d.ops_applied,
                drift_repairs: d.drift_repairs,
                errors: d.errors,
                last_error: d.last_error.clone(),
                connection_sync: Some(convert::connection_sync_status_out(&d.connection_sync)),
            }),
            vrrp: Some(vrrp_status(&s.vrrp)),
            sync: Some(sync_status(&s.sync)),
            auth: Some({
                let a = self.auth.status();
                pb::ApiAuth {
                    mode: match a.mode {
                        crate::control::auth::AuthMode::Open => pb::AuthMode::Open,
                        crate::control::auth::AuthMode::Tokens => pb::AuthMode::Tokens,
                    } as i32,
                    tokens: a.tokens as u64,
                    tls: a.tls.map(|t| pb::ApiTls {
                        mutual: t.mutual,
                        reload_error: t.reload_error,
                    }),
                }
            }),
            health: s
                .health
                .iter()
                .map(|h| pb::RealServerHealth {
                    virtual_server_id: h.virtual_server_id,
                    real_server_id: h.real_server_id,
                    state: super::events::health_state(h.state) as i32,
                    since_unix_ms: h.since_unix_ms,
                    last_check_unix_ms: h.last_check_unix_ms,
                    last_latency_ms: h.last_latency_ms,
                    last_error: h.last_error.clone(),
                    transitions: h.transitions,
                    checks: h.checks,
                })
                .collect(),
        }))
    }

    async fn list_conflicts(
        &self,
        _: Request<pb::ListConflictsRequest>,
    ) -> R<pb::ListConflictsResponse> {
        let list = self.service.conflicts().await.map_err(status_of)?;
        Ok(Response::new(pb::ListConflictsResponse {
            conflicts: list
                .iter()
                .map(|c| pb::Conflict {
                    id: c.id,
                    time_unix_ms: c.time_unix_ms,
                    revision: c.revision,
                    origin: c.origin.clone(),
                    winner_revision: c.winner_revision,
                    winner_origin: c.winner_origin.clone(),
                    changes: c.changes.iter().map(convert::change_out).collect(),
                })
                .collect(),
        }))
    }

    async fn apply_conflict(&self, req: Request<pb::ApplyConflictRequest>) -> R<pb::WriteResult> {
        let req = req.into_inner();
        let r = self
            .service
            .apply_conflict(req.id, opts(req.options))
            .await
            .map_err(status_of)?;
        Ok(Response::new(convert::result_out(&r)))
    }

    async fn dismiss_conflict(
        &self,
        req: Request<pb::DismissConflictRequest>,
    ) -> R<pb::DismissConflictResponse> {
        self.service
            .dismiss_conflict(req.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::DismissConflictResponse {}))
    }

    async fn get_ipvs(&self, _: Request<pb::GetIpvsRequest>) -> R<pb::GetIpvsResponse> {
        let revision = self.service.snapshot().revision;
        let v = self
            .dataplane
            .ipvs_view()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(convert::ipvs_out(revision, &v)))
    }

    async fn get_ipvs_timeouts(
        &self,
        _: Request<pb::GetIpvsTimeoutsRequest>,
    ) -> R<pb::GetIpvsTimeoutsResponse> {
        let (revision, t) = self.service.get_ipvs_timeouts();
        Ok(Response::new(pb::GetIpvsTimeoutsResponse {
            revision,
            timeouts: Some(convert::timeouts_out(&t)),
        }))
    }

    async fn set_ipvs_timeouts(
        &self,
        req: Request<pb::SetIpvsTimeoutsRequest>,
    ) -> R<pb::WriteResult> {
        let req = req.into_inner();
        let t = convert::timeouts_in(req.timeouts)?;
        let r = self
            .service
            .update_ipvs_timeouts(opts(req.options), |_| Ok(t))
            .await
            .map_err(status_of)?;
        Ok(Response::new(convert::result_out(&r)))
    }

    async fn get_connection_sync(
        &self,
        _: Request<pb::GetConnectionSyncRequest>,
    ) -> R<pb::GetConnectionSyncResponse> {
        let (revision, c) = self.service.get_connection_sync();
        Ok(Response::new(pb::GetConnectionSyncResponse {
            revision,
            connection_sync: c.as_ref().map(convert::connection_sync_out),
        }))
    }

    async fn set_connection_sync(
        &self,
        req: Request<pb::SetConnectionSyncRequest>,
    ) -> R<pb::WriteResult> {
        let req = req.into_inner();
        let c = convert::connection_sync_in(req.connection_sync)?;
        let r = self
            .service
            .set_connection_sync(opts(req.options), c)
            .await
            .map_err(|e| match e {
                ServiceError::Invalid { field, message, .. } => {
                    invalid(&format!("connection_sync.{field}"), &message)
                }
                e => status_of(e),
            })?;
        Ok(Response::new(convert::result_out(&r)))
    }

    async fn get_vrrp_settings(
        &self,
        _: Request<pb::GetVrrpSettingsRequest>,
    ) -> R<pb::GetVrrpSettingsResponse> {
        let (revision, v) = self.service.get_vrrp_settings();
        Ok(Response::new(pb::GetVrrpSettingsResponse {
            revision,
            vrrp_settings: Some(convert::vrrp_settings_out(&v)),
        }))
    }

    async fn set_vrrp_settings(
        &self,
        req: Request<pb::SetVrrpSettingsRequest>,
    ) -> R<pb::WriteResult> {
        let req = req.into_inner();
        let v = convert::vrrp_settings_in(req.vrrp_settings)?;
        let r = self
            .service
            .set_vrrp_settings(opts(req.options), v)
            .await
            .map_err(|e| match e {
                // A strict mode a group breaks names the group (`vrrp_groups[i]...`).
                ServiceError::Invalid { field, message, .. }
                    if !field.starts_with("vrrp_groups") =>
                {
                    invalid(&format!("vrrp_settings.{field}"), &message)
                }
                e => status_of(e),
            })?;
        Ok(Response::new(convert::result_out(&r)))
    }

    async fn zero_ipvs(&self, req: Request<pb::ZeroIpvsRequest>) -> R<pb::ZeroIpvsResponse> {
        let q = convert::service_ref_in(req.into_inner().service)?;
        let key = q.selected().map_err(|e| match e {
            ServiceError::Invalid { field, message, .. } => {
                invalid(&format!("service.{field}"), &message)
            }
            e => status_of(e),
        })?;
        self.dataplane
            .zero(key.map(crate::dataplane::desired::kernel_key))
            .await
            .map_err(|e| match e {
                crate::dataplane::actor::HandleError::Kernel(
                    crate::kernel::KernelError::NoSuchService(_),
                ) => Status::not_found(e.to_string()),
                e => Status::unavailable(e.to_string()),
            })?;
        Ok(Response::new(pb::ZeroIpvsResponse {
            zeroed: key.map_or_else(|| "all".to_string(), |k| k.to_string()),
        }))
    }

    async fn list_connections(
        &self,
        _: Request<pb::ListConnectionsRequest>,
    ) -> R<pb::ListConnectionsResponse> {
        let conns = self
            .dataplane
            .connections()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: conns.iter().map(convert::connection_out).collect(),
        }))
    }

    async fn list_events(&self, r: Request<pb::ListEventsRequest>) -> R<pb::ListEventsResponse> {
        let events = self
            .service
            .events()
            .recent(r.into_inner().since)
            .into_iter()
            .map(|e| {
                let v = serde_json::to_value(&e).unwrap_or_default();
                pb::Event {
                    seq: e.seq,
                    time_unix_ms: e.time_unix_ms,
                    r#type: v
                        .get("type")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    json: v.to_string(),
                }
            })
            .collect();
        Ok(Response::new(pb::ListEventsResponse { events }))
    }

    type WatchEventsStream = super::events::WatchStream;

    async fn watch_events(&self, r: Request<pb::WatchEventsRequest>) -> R<Self::WatchEventsStream> {
        let events = self.service.events();
        let since = r.into_inner().since.unwrap_or_else(|| events.last_seq());
        Ok(Response::new(super::events::watch(events.watch(since))))
    }
}

fn dataplane_state(s: crate::control::status::DataplaneState) -> pb::DataplaneState {
    use crate::control::status::DataplaneState;
    match s {
        DataplaneState::NotRunning => pb::DataplaneState::NotRunning,
        DataplaneState::Degraded => pb::DataplaneState::Degraded,
        DataplaneState::Running => pb::DataplaneState::Running,
    }
}

fn vrrp_scheduling(s: crate::control::status::VrrpScheduling) -> pb::VrrpScheduling {
    use crate::control::status::VrrpScheduling;
    match s {
        VrrpScheduling::Fifo => pb::VrrpScheduling::Fifo,
        VrrpScheduling::Normal => pb::VrrpScheduling::Normal,
        VrrpScheduling::NotRunning => pb::VrrpScheduling::NotRunning,
    }
}

fn vrrp_group_state(s: crate::control::status::VrrpGroupState) -> pb::VrrpState {
    use crate::control::events::VrrpState;
    use crate::control::status::VrrpGroupState;
    let protocol = |s| super::events::vrrp_state(s);
    match s {
        VrrpGroupState::Initialize => protocol(VrrpState::Initialize),
        VrrpGroupState::Backup => protocol(VrrpState::Backup),
        VrrpGroupState::Master => protocol(VrrpState::Master),
        VrrpGroupState::Fault => protocol(VrrpState::Fault),
        VrrpGroupState::Disabled => pb::VrrpState::Disabled,
    }
}

fn vrrp_status(v: &crate::control::status::VrrpStatus) -> pb::VrrpStatus {
    pb::VrrpStatus {
        scheduling: vrrp_scheduling(v.scheduling) as i32,
        groups: v
            .groups
            .iter()
            .map(|g| {
                let c = &g.counters;
                pb::VrrpGroupStatus {
                    name: g.name.clone(),
                    vrid: u32::from(g.vrid),
                    version: u32::from(g.version),
                    state: vrrp_group_state(g.state) as i32,
                    interface: g.interface.clone(),
                    priority: g.priority.map(u32::from),
                    primary_address: g.primary_address.clone(),
                    advert_interval_ms: g.advert_interval_ms,
                    master_address: g.master_address.clone(),
                    master_priority: g.master_priority.map(u32::from),
                    virtual_addresses: g.virtual_addresses.clone(),
                    counters: Some(pb::VrrpCounters {
                        adverts_sent: c.adverts_sent,
                        adverts_received: c.adverts_received,
                        priority_zero_sent: c.priority_zero_sent,
                        priority_zero_received: c.priority_zero_received,
                        became_master: c.became_master,
                        released_master: c.released_master,
                        auth_errors: c.auth_errors,
                        checksum_errors: c.checksum_errors,
                        ttl_errors: c.ttl_errors,
                        interval_errors: c.interval_errors,
                        version_errors: c.version_errors,
                        packet_errors: c.packet_errors,
                        address_list_errors: c.address_list_errors,
                        send_errors: c.send_errors,
                        kernel_errors: c.kernel_errors,
                        garps_sent: c.garps_sent,
                    }),
                    transitions: g
                        .transitions
                        .iter()
                        .map(|t| pb::VrrpTransition {
                            time_unix_ms: t.time_unix_ms,
                            from: super::events::vrrp_state(t.from) as i32,
                            to: super::events::vrrp_state(t.to) as i32,
                            reason: super::events::vrrp_reason(t.reason) as i32,
                            detail: t.detail.clone(),
                        })
                        .collect(),
                    error: g.error.clone(),
                    configured_priority: g.configured_priority.map(u32::from),
                    sync_group: g.sync_group.clone(),
                    sync_waiting: g.sync_waiting.clone(),
                    tracked: g
                        .tracked
                        .iter()
                        .map(|t| pb::VrrpTrackedStatus {
                            object: t.object.clone(),
                            weight: t.weight,
                            state: match t.state {
                                crate::control::status::VrrpTrackedState::Up => "up",
                                crate::control::status::VrrpTrackedState::Failing => "failing",
                                crate::control::status::VrrpTrackedState::Unknown => "unknown",
                            }
                            .into(),
                            detail: t.detail.clone(),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

fn sync_status(s: &crate::control::status::SyncStatus) -> pb::SyncStatus {
    use crate::control::status::SyncMode;
    pb::SyncStatus {
        mode: match s.mode {
            SyncMode::Alone => pb::SyncMode::Alone,
            SyncMode::SharedSecret => pb::SyncMode::SharedSecret,
            SyncMode::MutualTls => pb::SyncMode::MutualTls,
        } as i32,
        catching_up: s.catching_up,
        conflicts: s.conflicts as u64,
        peers: s
            .peers
            .iter()
            .map(|p| pb::PeerStatus {
                address: p.address.clone(),
                node: p.node.clone(),
                reachable: p.reachable,
                authenticated: p.authenticated,
                error: p.error.clone(),
                last_contact_unix_ms: p.last_contact_unix_ms,
                local_revision: p.local_revision,
                peer_revision: p.peer_revision,
                in_sync: p.in_sync,
                master: p.master,
                following_us: p.following_us,
                refused: p.refused.clone(),
                health_disagreements: p
                    .health_disagreements
                    .iter()
                    .map(|d| pb::HealthDisagreement {
                        virtual_server_id: d.virtual_server_id,
                        real_server_id: d.real_server_id,
                        local_up: d.local_up,
                        peer_up: d.peer_up,
                    })
                    .collect(),
            })
            .collect(),
    }
}
