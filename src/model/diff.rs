//! The difference between two configurations, by entity id.
//!
//! One diff serves three readers: `?dry_run=true` shows it, the store applies it (so a write
//! touches only the rows that changed), and later the data plane logs it. Entities keep their ids
//! across edits (a whole-config replace matches by natural key first, see `service`), so "by id"
//! is also "by identity".

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::config::Config;
use super::real_server::RealServer;
use super::virtual_server::{Id, VirtualServer};
use super::vrrp_group::VrrpGroup;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Add,
    Remove,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    VirtualServer,
    RealServer,
    VrrpGroup,
    /// The IPVS connection timeouts (`Config::ipvs_timeouts`); id 0, there is only one.
    IpvsTimeouts,
    /// The connection-sync daemons (`Config::connection_sync`); id 0, there is only one.
    ConnectionSync,
    /// The VRRP settings (`Config::vrrp_settings`: sync groups, strict mode); id 0, there is
    /// only one.
    VrrpSettings,
}

/// The key of the IPVS timeouts in a diff.
pub const IPVS_TIMEOUTS_KEY: &str = "ipvs timeouts";
/// The key of the connection-sync setting in a diff.
pub const CONNECTION_SYNC_KEY: &str = "connection sync";
/// The key of the VRRP settings in a diff.
pub const VRRP_SETTINGS_KEY: &str = "vrrp settings";

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldChange {
    /// Dotted path inside the entity, e.g. `garp.count`.
    pub field: String,
    /// Any JSON value (absent: `null`).
    #[schema(value_type = Value)]
    pub from: Value,
    /// Any JSON value (removed: `null`).
    #[schema(value_type = Value)]
    pub to: Value,
}

/// One entity added, removed or updated. Adding or removing a virtual server includes its real
/// servers; they are not listed separately.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Change {
    pub op: ChangeOp,
    pub kind: EntityKind,
    pub id: Id,
    /// The virtual server a real server belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Id>,
    /// Human-readable identity, e.g. `tcp 192.168.10.100:80` or `tcp 192.168.10.100:80 -> 192.168.10.103:80`.
    pub key: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// One line for a log: `update real server tcp 192.168.10.100:80 -> 192.168.10.103:80: weight 1→0`.
impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            ChangeOp::Add => "add",
            ChangeOp::Remove => "remove",
            ChangeOp::Update => "update",
        };
        let kind = match self.kind {
            EntityKind::VirtualServer => "virtual server",
            EntityKind::RealServer => "real server",
            EntityKind::VrrpGroup => "vrrp group",
            EntityKind::IpvsTimeouts => "ipvs timeouts",
            EntityKind::ConnectionSync => "connection sync",
            EntityKind::VrrpSettings => "vrrp settings",
        };
        write!(f, "{op} {kind} {}", self.key)?;
        // A few fields are worth a line; a change to dozens says how many.
        const SHOWN: usize = 6;
        for (i, c) in self.fields.iter().take(SHOWN).enumerate() {
            let v = |v: &Value| match v {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            write!(
                f,
                "{}{} {}→{}",
                if i == 0 { ": " } else { ", " },
                c.field,
                v(&c.from),
                v(&c.to)
            )?;
        }
        if self.fields.len() > SHOWN {
            write!(f, ", and {} more fields", self.fields.len() - SHOWN)?;
        }
        Ok(())
    }
}

pub fn vs_label(vs: &VirtualServer) -> String {
    match vs.key() {
        Some(k) => k.to_string(),
        None => format!("virtual server {}", vs.id),
    }
}

pub fn rs_label(vs: &VirtualServer, rs: &RealServer) -> String {
    let addr = match rs.address {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    match rs.port {
        Some(p) => format!("{} -> {addr}:{p}", vs_label(vs)),
        None => format!("{} -> {addr}", vs_label(vs)),
    }
}

/// Field-level differences of two JSON values, recursing into objects; arrays and scalars compare
/// whole. `skip` names top-level fields left out (a virtual server's `real_servers`).
fn field_changes(
    old: &Value,
    new: &Value,
    prefix: &str,
    skip: &[&str],
    out: &mut Vec<FieldChange>,
) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if prefix.is_empty() && skip.contains(&k.as_str()) {
                    continue;
                }
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                field_changes(x, y, &path, &[], out);
            }
        }
        // A secret is write-only: the diff says that it changed, never what it was or became.
        (a, b) if a != b && prefix == "auth_pass" => out.push(FieldChange {
            field: prefix.to_string(),
            from: redact(a),
            to: redact(b),
        }),
        (a, b) if a != b => out.push(FieldChange {
            field: prefix.to_string(),
            from: a.clone(),
            to: b.clone(),
        }),
        _ => {}
    }
}

fn redact(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        _ => Value::String("(secret)".into()),
    }
}

pub fn fields_of<T: Serialize>(old: &T, new: &T, skip: &[&str]) -> Vec<FieldChange> {
    let mut out = Vec::new();
    // Serializing plain data structs cannot fail; a failure would only hide field detail.
    if let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) {
        field_changes(&a, &b, "", skip, &mut out);
    }
    out
}

/// A virtual server's own fields, without its real servers (cheap even for a large service).
fn own_fields(v: &VirtualServer) -> VirtualServer {
    // Destructuring makes a new field a compile error here until it is considered.
    let VirtualServer {
        id,
        name,
        address,
        port,
        protocol,
        fwmark,
        family,
        scheduler,
        forwarding,
        persistence_timeout_secs,
        persistence_granularity,
        delay_loop_ms,
        sorry_server,
        quorum,
        hysteresis,
        quorum_up,
        quorum_down,
        alpha,
        omega,
        one_packet,
        scheduler_flags,
        real_servers: _,
    } = v;
    VirtualServer {
        id: *id,
        name: name.clone(),
        address: *address,
        port: *port,
        protocol: *protocol,
        fwmark: *fwmark,
        family: *family,
        scheduler: *scheduler,
        forwarding: *forwarding,
        persistence_timeout_secs: *persistence_timeout_secs,
        persistence_granularity: *persistence_granularity,
        delay_loop_ms: *delay_loop_ms,
        sorry_server: sorry_server.clone(),
        quorum: *quorum,
        hysteresis: *hysteresis,
        quorum_up: quorum_up.clone(),
        quorum_down: quorum_down.clone(),
        alpha: *alpha,
        omega: *omega,
        one_packet: *one_packet,
        scheduler_flags: scheduler_flags.clone(),
        real_servers: Vec::new(),
    }
}

/// Every change from `old` to `new`: removals first, then updates, then additions, so that
/// applying them in order never holds two entities with one identity.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut removes = Vec::new();
    let mut updates = Vec::new();
    let mut adds = Vec::new();

    let old_vs: super::idmap::IdMap<&VirtualServer> = old
        .virtual_servers
        .iter()
        .map(|v| (v.id, v.as_ref()))
        .collect();
    let new_ids: super::idmap::IdMap<&VirtualServer> = new
        .virtual_servers
        .iter()
        .map(|v| (v.id, v.as_ref()))
        .collect();
    for v in &old.virtual_servers {
        if !new_ids.contains_key(&v.id) {
            removes.push(change(
                ChangeOp::Remove,
                EntityKind::VirtualServer,
                v.id,
                None,
                vs_label(v),
            ));
        }
    }
    for v in &new.virtual_servers {
        let Some(o) = old_vs.get(&v.id) else {
            adds.push(change(
                ChangeOp::Add,
                EntityKind::VirtualServer,
                v.id,
                None,
                vs_label(v),
            ));
            continue;
        };
        // Shared with the old snapshot: unchanged without looking inside.
        if std::ptr::eq(*o, v.as_ref()) || **o == **v {
            continue;
        }
        let (own_old, own_new) = (own_fields(o), own_fields(v));
        if own_old != own_new {
            let mut c = change(
                ChangeOp::Update,
                EntityKind::VirtualServer,
                v.id,
                None,
                vs_label(v),
            );
            c.fields = fields_of(&own_old, &own_new, &["real_servers"]);
            updates.push(c);
        }
        let old_rs: super::idmap::IdMap<&RealServer> =
            o.real_servers.iter().map(|r| (r.id, r)).collect();
        let new_rs: super::idmap::IdMap<&RealServer> =
            v.real_servers.iter().map(|r| (r.id, r)).collect();
        for r in &o.real_servers {
            if !new_rs.contains_key(&r.id) {
                removes.push(change(
                    ChangeOp::Remove,
                    EntityKind::RealServer,
                    r.id,
                    Some(v.id),
                    rs_label(o, r),
                ));
            }
        }
        for r in &v.real_servers {
            match old_rs.get(&r.id) {
                None => adds.push(change(
                    ChangeOp::Add,
                    EntityKind::RealServer,
                    r.id,
                    Some(v.id),
                    rs_label(v, r),
                )),
                Some(or) if *or != r => {
                    let mut c = change(
                        ChangeOp::Update,
                        EntityKind::RealServer,
                        r.id,
                        Some(v.id),
                        rs_label(v, r),
                    );
                    c.fields = fields_of(*or, r, &[]);
                    updates.push(c);
                }
                Some(_) => {}
            }
        }
    }

    let old_g: HashMap<Id, &VrrpGroup> = old.vrrp_groups.iter().map(|g| (g.id, g)).collect();
    let new_g: HashMap<Id, &VrrpGroup> = new.vrrp_groups.iter().map(|g| (g.id, g)).collect();
    for g in &old.vrrp_groups {
        if !new_g.contains_key(&g.id) {
            removes.push(change(
                ChangeOp::Remove,
                EntityKind::VrrpGroup,
                g.id,
                None,
                g.name.clone(),
            ));
        }
    }
    for g in &new.vrrp_groups {
        match old_g.get(&g.id) {
            None => adds.push(change(
                ChangeOp::Add,
                EntityKind::VrrpGroup,
                g.id,
                None,
                g.name.clone(),
            )),
            Some(o) if *o != g => {
                let mut c = change(
                    ChangeOp::Update,
                    EntityKind::VrrpGroup,
                    g.id,
                    None,
                    g.name.clone(),
                );
                c.fields = fields_of(*o, g, &[]);
                updates.push(c);
            }
            Some(_) => {}
        }
    }

    match (&old.ipvs_timeouts, &new.ipvs_timeouts) {
        (None, None) => {}
        (Some(_), None) => removes.push(timeouts_change(ChangeOp::Remove)),
        (None, Some(_)) => adds.push(timeouts_change(ChangeOp::Add)),
        (Some(a), Some(b)) if a != b => {
            let mut c = timeouts_change(ChangeOp::Update);
            c.fields = fields_of(a, b, &[]);
            updates.push(c);
        }
        (Some(_), Some(_)) => {}
    }

    let sync_change = |op| {
        change(
            op,
            EntityKind::ConnectionSync,
            0,
            None,
            CONNECTION_SYNC_KEY.to_string(),
        )
    };
    match (&old.connection_sync, &new.connection_sync) {
        (None, None) => {}
        (Some(_), None) => removes.push(sync_change(ChangeOp::Remove)),
        (None, Some(_)) => adds.push(sync_change(ChangeOp::Add)),
        (Some(a), Some(b)) if a != b => {
            let mut c = sync_change(ChangeOp::Update);
            c.fields = fields_of(a, b, &[]);
            updates.push(c);
        }
        (Some(_), Some(_)) => {}
    }

    let (a, b) = (&old.vrrp_settings, &new.vrrp_settings);
    if a != b {
        let op = match (a.is_default(), b.is_default()) {
            (true, _) => ChangeOp::Add,
            (false, true) => ChangeOp::Remove,
            (false, false) => ChangeOp::Update,
        };
        let mut c = change(
            op,
            EntityKind::VrrpSettings,
            0,
            None,
            VRRP_SETTINGS_KEY.to_string(),
        );
        match op {
            ChangeOp::Add => adds.push(c),
            ChangeOp::Remove => removes.push(c),
            ChangeOp::Update => {
                c.fields = fields_of(a, b, &[]);
                updates.push(c);
            }
        }
    }

    removes.extend(updates);
    removes.extend(adds);
    removes
}

fn timeouts_change(op: ChangeOp) -> Change {
    change(
        op,
        EntityKind::IpvsTimeouts,
        0,
        None,
        IPVS_TIMEOUTS_KEY.to_string(),
    )
}

fn change(op: ChangeOp, kind: EntityKind, id: Id, parent_id: Option<Id>, key: String) -> Change {
    Change {
        op,
        kind,
        id,
        parent_id,
        key,
        fields: Vec::new(),
    }
}
