//! The one service layer the HTTP and gRPC front ends both call: validate, store, publish.
//!
//! Every write runs the same path: take the write lock, check the caller's expected revision,
//! apply the change to a copy of the current config, fill defaults, validate the whole result,
//! diff it against the current config, and (unless it is a dry run) commit the diff to the store
//! and publish the new snapshot. Reads are served from the in-memory snapshot, never the file.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{watch, Mutex};

use crate::control::events::{EventBus, EventKind};
use crate::control::replication::{decide, Decision, Lineage, RevisionId};
use crate::control::status::{Status, StatusBoard};
use crate::control::store::{CommitRecord, NewConflict, Store, StoreError};
use crate::model::diff::diff;
use crate::model::{
    validate, Change, CheckKind, Config, ConnectionSync, ErrorKind, Id, IpvsTimeouts, RealServer,
    Snapshot, ValidationError, VirtualServer, VrrpGroup, VrrpSettings,
};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input (HTTP 422, gRPC InvalidArgument).
    /// `rule` names the rule between fields that was broken (`model::validate::rule`).
    #[error("{field}: {message}")]
    Invalid {
        field: String,
        message: String,
        rule: Option<&'static str>,
    },
    /// The input clashes with an existing entity (HTTP 409, gRPC AlreadyExists).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// HTTP 404, gRPC NotFound.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller's expected revision is not the current one (HTTP 412, gRPC FailedPrecondition).
    #[error("the configuration is at revision {current}, not {expected}: re-read and retry")]
    RevisionMismatch { expected: u64, current: u64 },
    /// HTTP 500, gRPC Internal: never caused by input.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// HTTP 500, gRPC Internal: a bug, reported instead of a panic.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ValidationError> for ServiceError {
    fn from(e: ValidationError) -> Self {
        match e.kind {
            ErrorKind::Invalid => ServiceError::Invalid {
                field: e.field,
                message: e.message,
                rule: e.rule,
            },
            ErrorKind::Conflict => ServiceError::Conflict {
                field: e.field,
                message: e.message,
            },
        }
    }
}

/// Preconditions and mode of a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Fail with `RevisionMismatch` unless the config is at this revision (HTTP `If-Match`).
    pub expected_revision: Option<u64>,
    /// Validate and diff only; commit nothing.
    pub dry_run: bool,
}

/// The outcome of a write: the revision after it (unchanged for a dry run or a no-op), the
/// changes it made (or would make), and the entity it wrote, as stored.
#[derive(Debug, Clone)]
pub struct WriteResult<T> {
    pub revision: u64,
    pub dry_run: bool,
    pub changes: Vec<Change>,
    pub value: T,
}

impl<T> WriteResult<T> {
    pub fn map_value<U>(self, f: impl FnOnce(T) -> U) -> WriteResult<U> {
        WriteResult {
            revision: self.revision,
            dry_run: self.dry_run,
            changes: self.changes,
            value: f(self.value),
        }
    }
}

/// The entity a write is about: its validation errors are reported relative to it.
#[derive(Debug, Clone, Copy)]
enum Focus {
    None,
    VirtualServer(Id),
    RealServer(Id, Id),
    VrrpGroup(Id),
    /// The connection-sync setting: errors name its fields relative to it.
    ConnectionSync,
    /// The VRRP settings: errors name their fields relative to them.
    VrrpSettings,
}

struct WriteState {
    next_id: Id,
    /// The identities of the newest revisions (peer sync, see `control::replication`).
    lineage: Lineage,
}

impl WriteState {
    fn alloc(&mut self) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    store: Store,
    write: Mutex<WriteState>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    /// The snapshot with its lineage and next id: what the peer link sends.
    replica: watch::Sender<Arc<Replica>>,
    /// How many conflict records are kept.
    conflicts: watch::Sender<usize>,
    events: EventBus,
    status: StatusBoard,
}

impl Service {
    /// Loads the last committed configuration from `store`.
    pub async fn new(
        node: String,
        store: Store,
        events: EventBus,
        status: StatusBoard,
    ) -> Result<Service, ServiceError> {
        let loaded = store.load().await?;
        if let Err(e) = validate::config(&loaded.snapshot.config, None) {
            // Served as stored; the next write must fix it before anything else commits.
            tracing::warn!(error = %e, "the stored configuration does not validate");
        }
        let next_id = loaded.next_id.max(loaded.snapshot.config.max_id() + 1);
        let mut lineage = Lineage::from_entries(loaded.lineage);
        // A revision made before peer sync recorded no origin: it is this director's own.
        let rev = loaded.snapshot.revision;
        if rev > 0 && lineage.id_of(rev).origin.is_empty() {
            lineage.push(RevisionId::new(rev, node.clone()));
        }
        let conflicts = store.conflicts().await?.len();
        let snapshot = Arc::new(loaded.snapshot);
        Ok(Service {
            inner: Arc::new(Inner {
                replica: watch::Sender::new(Arc::new(Replica {
                    snapshot: snapshot.clone(),
                    lineage: lineage.clone(),
                    next_id,
                })),
                conflicts: watch::Sender::new(conflicts),
                node,
                store,
                write: Mutex::new(WriteState { next_id, lineage }),
                snapshot: watch::Sender::new(snapshot),
                events,
                status,
            }),
        })
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The current committed snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// A receiver that sees every committed snapshot (the data plane's input).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// A receiver that sees every committed snapshot with its lineage (the peer link's input).
    pub fn replica(&self) -> watch::Receiver<Arc<Replica>> {
        self.inner.replica.subscribe()
    }

    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    pub fn status_board(&self) -> &StatusBoard {
        &self.inner.status
    }

    /// [`Service::status`] with the connection counts by origin read from the kernel's table
    /// when lbd runs connection sync: a scan of the whole table, off the async workers, for
    /// the status the APIs show (not for `/metrics`, which does not show it).
    pub async fn status_with_connections(&self) -> Status {
        let mut s = self.status();
        if s.dataplane.connection_sync.managed {
            s.dataplane.connection_sync.connections =
                tokio::task::spawn_blocking(crate::ipvs::conn::read_origins)
                    .await
                    .ok()
                    .and_then(Result::ok);
        }
        s
    }

    pub fn status(&self) -> Status {
        let snap = self.snapshot();
        Status {
            node: self.inner.node.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: snap.revision,
            uptime_secs: self.inner.status.uptime_secs(),
            virtual_servers: snap.config.virtual_servers.len(),
            real_servers: snap.config.real_server_count(),
            vrrp_groups: snap.config.vrrp_groups.len(),
            dataplane: self.inner.status.dataplane(),
            vrrp: self.inner.status.vrrp(),
            health: self.inner.status.health_list(),
            sync: {
                let mut s = self.inner.status.sync();
                s.conflicts = *self.inner.conflicts.borrow();
                for p in &mut s.peers {
                    p.local_revision = snap.revision;
                }
                s
            },
            auth: None,
        }
    }

    // ---- reads -------------------------------------------------------------------------------

    pub fn get_virtual_server(&self, id: Id) -> Result<(u64, VirtualServer), ServiceError> {
        let s = self.snapshot();
        let vs = s
            .config
            .virtual_server(id)
            .ok_or_else(|| vs_not_found(id))?;
        Ok((s.revision, vs.clone()))
    }

    pub fn get_real_server(&self, vs_id: Id, rs_id: Id) -> Result<(u64, RealServer), ServiceError> {
        let s = self.snapshot();
        let vs = s
            .config
            .virtual_server(vs_id)
            .ok_or_else(|| vs_not_found(vs_id))?;
        let rs = vs
            .real_server(rs_id)
            .ok_or_else(|| rs_not_found(vs_id, rs_id))?;
        Ok((s.revision, rs.clone()))
    }

    pub fn get_vrrp_group(&self, id: Id) -> Result<(u64, VrrpGroup), ServiceError> {
        let s = self.snapshot();
        let g = s.config.vrrp_group(id).ok_or_else(|| group_not_found(id))?;
        Ok((s.revision, g.clone()))
    }

    // ---- virtual servers ---------------------------------------------------------------------

    pub async fn create_virtual_server(
        &self,
        mut vs: VirtualServer,
        opts: WriteOptions,
    ) -> Result<WriteResult<VirtualServer>, ServiceError> {
        self.write(opts, |cfg, ids| {
            vs.id = ids.alloc();
            for rs in &mut vs.real_servers {
                rs.id = ids.alloc();
            }
            cfg.virtual_servers.push(Arc::new(vs.clone()));
            Ok(Focus::VirtualServer(vs.id))
        })
        .await?
        .map(vs_of)
    }

    /// Replaces a virtual server's own fields. Its real servers are kept unless
    /// `replace_real_servers`, in which case the given list replaces them (real servers with the
    /// same address and port keep their ids, and so their health state).
    pub async fn replace_virtual_server(
        &self,
        id: Id,
        vs: VirtualServer,
        replace_real_servers: bool,
        opts: WriteOptions,
    ) -> Result<WriteResult<VirtualServer>, ServiceError> {
        self.update_virtual_server(id, opts, |_| Ok((vs, replace_real_servers)))
            .await
    }

    /// Edits a virtual server: `edit` gets the current one (under the write lock, so nothing
    /// moves between the read and the write) and returns the new one and whether its
    /// `real_servers` replace the current list (see [`Service::replace_virtual_server`]). HTTP
    /// PATCH (a merge patch) and gRPC Update (a field mask) are both such edits.
    pub async fn update_virtual_server(
        &self,
        id: Id,
        opts: WriteOptions,
        edit: impl FnOnce(&VirtualServer) -> Result<(VirtualServer, bool), ServiceError>,
    ) -> Result<WriteResult<VirtualServer>, ServiceError> {
        self.write(opts, |cfg, ids| {
            let cur = cfg.virtual_server(id).ok_or_else(|| vs_not_found(id))?;
            let (mut vs, replace_real_servers) = edit(cur)?;
            let cur = cfg.virtual_server_mut(id).ok_or_else(|| vs_not_found(id))?;
            vs.id = id;
            if replace_real_servers {
                let old: HashMap<(IpAddr, Option<u16>), Id> = cur
                    .real_servers
                    .iter()
                    .map(|r| ((r.address, r.port.or(cur.port)), r.id))
                    .collect();
                for rs in &mut vs.real_servers {
                    rs.id = old
                        .get(&(rs.address, rs.port.or(vs.port)))
                        .copied()
                        .unwrap_or_else(|| ids.alloc());
                }
            } else {
                vs.real_servers = std::mem::take(&mut cur.real_servers);
            }
            *cur = vs;
            Ok(Focus::VirtualServer(id))
        })
        .await?
        .map(vs_of)
    }

    pub async fn delete_virtual_server(
        &self,
        id: Id,
        opts: WriteOptions,
    ) -> Result<WriteResult<()>, ServiceError> {
        self.write(opts, |cfg, _| {
            let before = cfg.virtual_servers.len();
            cfg.virtual_servers.retain(|v| v.id != id);
            if cfg.virtual_servers.len() == before {
                return Err(vs_not_found(id));
            }
            Ok(Focus::None)
        })
        .await?
        .map(|_, _| Some(()))
    }

    // ---- real servers ------------------------------------------------------------------------

    pub async fn create_real_server(
        &self,
        vs_id: Id,
        mut rs: RealServer,
        opts: WriteOptions,
    ) -> Result<WriteResult<RealServer>, ServiceError> {
        self.write(opts, |cfg, ids| {
            let vs = cfg
                .virtual_server_mut(vs_id)
                .ok_or_else(|| vs_not_found(vs_id))?;
            rs.id = ids.alloc();
            vs.real_servers.push(rs.clone());
            Ok(Focus::RealServer(vs_id, rs.id))
        })
        .await?
        .map(rs_of)
    }

    pub async fn replace_real_server(
        &self,
        vs_id: Id,
        rs_id: Id,
        rs: RealServer,
        opts: WriteOptions,
    ) -> Result<WriteResult<RealServer>, ServiceError> {
        self.update_real_server(vs_id, rs_id, opts, |_| Ok(rs))
            .await
    }

    /// Edits a real server: `edit` gets the current one under the write lock and returns the
    /// new one (its id is kept, and so is its health state while its check is unchanged).
    pub async fn update_real_server(
        &self,
        vs_id: Id,
        rs_id: Id,
        opts: WriteOptions,
        edit: impl FnOnce(&RealServer) -> Result<RealServer, ServiceError>,
    ) -> Result<WriteResult<RealServer>, ServiceError> {
        self.write(opts, |cfg, _| {
            let cur = cfg
                .virtual_server(vs_id)
                .ok_or_else(|| vs_not_found(vs_id))?
                .real_server(rs_id)
                .ok_or_else(|| rs_not_found(vs_id, rs_id))?;
            let mut rs = edit(cur)?;
            let vs = cfg
                .virtual_server_mut(vs_id)
                .ok_or_else(|| vs_not_found(vs_id))?;
            let cur = vs
                .real_servers
                .iter_mut()
                .find(|r| r.id == rs_id)
                .ok_or_else(|| rs_not_found(vs_id, rs_id))?;
            rs.id = rs_id;
            *cur = rs;
            Ok(Focus::RealServer(vs_id, rs_id))
        })
        .await?
        .map(rs_of)
    }

    pub async fn delete_real_server(
        &self,
        vs_id: Id,
        rs_id: Id,
        opts: WriteOptions,
    ) -> Result<WriteResult<()>, ServiceError> {
        self.write(opts, |cfg, _| {
            let vs = cfg
                .virtual_server_mut(vs_id)
                .ok_or_else(|| vs_not_found(vs_id))?;
            let before = vs.real_servers.len();
            vs.real_servers.retain(|r| r.id != rs_id);
            if vs.real_servers.len() == before {
                return Err(rs_not_found(vs_id, rs_id));
            }
            Ok(Focus::None)
        })
        .await?
        .map(|_, _| Some(()))
    }

    // ---- VRRP groups -------------------------------------------------------------------------

    pub async fn create_vrrp_group(
        &self,
        mut g: VrrpGroup,
        opts: WriteOptions,
    ) -> Result<WriteResult<VrrpGroup>, ServiceError> {
        self.write(opts, |cfg, ids| {
            g.id = ids.alloc();
            keep_secret(&mut g, None);
            cfg.vrrp_groups.push(g.clone());
            Ok(Focus::VrrpGroup(g.id))
        })
        .await?
        .map(group_of)
    }

    /// Replaces a VRRP group. An absent `auth_pass` keeps the stored one (readers never see
    /// it, so a read-modify-write must not lose it); an empty one clears it.
    pub async fn replace_vrrp_group(
        &self,
        id: Id,
        g: VrrpGroup,
        opts: WriteOptions,
    ) -> Result<WriteResult<VrrpGroup>, ServiceError> {
        self.update_vrrp_group(id, opts, |_| Ok(g)).await
    }

    /// Edits a VRRP group: `edit` gets the current one (with its `auth_pass`) under the write
    /// lock and returns the new one; `auth_pass` follows [`Service::replace_vrrp_group`].
    pub async fn update_vrrp_group(
        &self,
        id: Id,
        opts: WriteOptions,
        edit: impl FnOnce(&VrrpGroup) -> Result<VrrpGroup, ServiceError>,
    ) -> Result<WriteResult<VrrpGroup>, ServiceError> {
        self.write(opts, |cfg, _| {
            let cur = cfg.vrrp_group_mut(id).ok_or_else(|| group_not_found(id))?;
            let mut g = edit(cur)?;
            g.id = id;
            keep_secret(&mut g, Some(&*cur));
            *cur = g;
            Ok(Focus::VrrpGroup(id))
        })
        .await?
        .map(group_of)
    }

    pub async fn delete_vrrp_group(
        &self,
        id: Id,
        opts: WriteOptions,
    ) -> Result<WriteResult<()>, ServiceError> {
        self.write(opts, |cfg, _| {
            let Some(name) = cfg.vrrp_group(id).map(|g| g.name.clone()) else {
                return Err(group_not_found(id));
            };
            cfg.vrrp_groups.retain(|g| g.id != id);
            // A deleted group leaves its sync group (one left empty goes), as keepalived
            // ignores a member that does not exist.
            let sync = &mut cfg.vrrp_settings.sync_groups;
            for sg in sync.iter_mut() {
                sg.groups.retain(|m| *m != name);
            }
            sync.retain(|sg| !sg.groups.is_empty());
            Ok(Focus::None)
        })
        .await?
        .map(|_, _| Some(()))
    }

    // ---- whole config ------------------------------------------------------------------------

    /// Replaces the whole configuration. Entities are matched to the current ones by identity
    /// (virtual server: address/port/protocol or fwmark; real server: address and port within it;
    /// VRRP group: name) and keep their ids, so the diff says what really changed. Ids in `new`
    /// are ignored.
    pub async fn replace_config(
        &self,
        mut new: Config,
        opts: WriteOptions,
    ) -> Result<WriteResult<Config>, ServiceError> {
        self.write(opts, |cfg, ids| {
            assign_ids(cfg, &mut new, ids);
            *cfg = new;
            Ok(Focus::None)
        })
        .await?
        .map(|cfg, _| Some(cfg.clone()))
    }

    // ---- IPVS timeouts -----------------------------------------------------------------------

    /// The configured IPVS timeouts; all 0 when lbd does not manage them.
    pub fn get_ipvs_timeouts(&self) -> (u64, IpvsTimeouts) {
        let s = self.snapshot();
        (s.revision, s.config.ipvs_timeouts.unwrap_or_default())
    }

    /// Sets the IPVS timeouts: `edit` gets the current ones (all 0 when unmanaged) under the
    /// write lock and returns the new ones; all 0 stops managing them.
    pub async fn update_ipvs_timeouts(
        &self,
        opts: WriteOptions,
        edit: impl FnOnce(&IpvsTimeouts) -> Result<IpvsTimeouts, ServiceError>,
    ) -> Result<WriteResult<IpvsTimeouts>, ServiceError> {
        self.write(opts, |cfg, _| {
            let t = edit(&cfg.ipvs_timeouts.unwrap_or_default())?;
            cfg.ipvs_timeouts = Some(t);
            Ok(Focus::None)
        })
        .await?
        .map(|cfg, _| Some(cfg.ipvs_timeouts.unwrap_or_default()))
    }

    // ---- connection sync ---------------------------------------------------------------------

    /// The configured connection sync; `None` when lbd leaves the kernel's sync daemons alone.
    pub fn get_connection_sync(&self) -> (u64, Option<ConnectionSync>) {
        let s = self.snapshot();
        (s.revision, s.config.connection_sync.clone())
    }

    /// Sets (`Some`) or removes (`None`: lbd stops its sync daemons and then leaves the kernel's
    /// alone) the connection-sync setting. Validation errors name fields relative to it.
    pub async fn set_connection_sync(
        &self,
        opts: WriteOptions,
        new: Option<ConnectionSync>,
    ) -> Result<WriteResult<Option<ConnectionSync>>, ServiceError> {
        self.write(opts, |cfg, _| {
            cfg.connection_sync = new;
            Ok(Focus::ConnectionSync)
        })
        .await?
        .map(|cfg, _| Some(cfg.connection_sync.clone()))
    }

    // ---- VRRP settings -----------------------------------------------------------------------

    /// The VRRP settings (sync groups, strict mode).
    pub fn get_vrrp_settings(&self) -> (u64, VrrpSettings) {
        let s = self.snapshot();
        (s.revision, s.config.vrrp_settings.clone())
    }

    /// Replaces the VRRP settings. Validation errors name fields relative to them (a strict
    /// mode that a group breaks names `vrrp_groups[i]...` of the whole configuration).
    pub async fn set_vrrp_settings(
        &self,
        opts: WriteOptions,
        new: VrrpSettings,
    ) -> Result<WriteResult<VrrpSettings>, ServiceError> {
        self.write(opts, |cfg, _| {
            cfg.vrrp_settings = new;
            Ok(Focus::VrrpSettings)
        })
        .await?
        .map(|cfg, _| Some(cfg.vrrp_settings.clone()))
    }

    /// Imports `node`'s keepalived.conf (already parsed and converted) into the current
    /// configuration: what the file names is made to match it, and its groups get this node's
    /// entries (see `keepalived::import::merge_with` for disagreements with the other
    /// director's file). The import's warnings ride along in the result.
    pub async fn import_keepalived(
        &self,
        imported: crate::keepalived::Imported,
        node: &str,
        import: crate::keepalived::ImportOptions,
        opts: WriteOptions,
    ) -> Result<WriteResult<crate::keepalived::Imported>, ServiceError> {
        let mut report = None;
        let r = self
            .write(opts, |cfg, ids| {
                let merged = crate::keepalived::import::merge_with(cfg, imported, node, import)
                    .map_err(|e| ServiceError::Invalid {
                        field: e.at.clone(),
                        message: e.message.clone(),
                        rule: Some(crate::model::validate::rule::KEEPALIVED_CONF),
                    })?;
                let mut new = merged.config.clone();
                assign_ids(cfg, &mut new, ids);
                *cfg = new;
                report = Some(merged);
                Ok(Focus::None)
            })
            .await?;
        let imported = report.unwrap_or_default();
        Ok(r.map_value(|_| imported))
    }

    /// The write path every mutation shares (see the module comment).
    async fn write(
        &self,
        opts: WriteOptions,
        mutate: impl FnOnce(&mut Config, &mut WriteState) -> Result<Focus, ServiceError>,
    ) -> Result<WriteResult<(Arc<Snapshot>, Focus)>, ServiceError> {
        let mut state = self.inner.write.lock().await;
        let current = self.snapshot();
        if let Some(expected) = opts.expected_revision {
            if expected != current.revision {
                return Err(ServiceError::RevisionMismatch {
                    expected,
                    current: current.revision,
                });
            }
        }
        let mut ids = WriteState {
            next_id: state.next_id,
            lineage: Lineage::default(),
        };
        // Cheap: the virtual servers are shared with the current snapshot until `mutate`
        // changes one (copy on write), and only those it changed are normalised and checked.
        let mut cfg = current.config.clone();
        let focus = mutate(&mut cfg, &mut ids)?;
        // The virtual servers `mutate` touched: not the current snapshot's own `Arc` any more.
        // (The current list is sorted by id, so each lookup is a binary search.)
        let changed: Vec<usize> = (0..cfg.virtual_servers.len())
            .filter(|&i| {
                let v = &cfg.virtual_servers[i];
                let cur = &current.config.virtual_servers;
                !cur.binary_search_by_key(&v.id, |c| c.id)
                    .is_ok_and(|j| Arc::ptr_eq(&cur[j], v))
            })
            .collect();
        fill_defaults(&mut cfg, &changed);
        // Timeouts that are all 0 manage nothing: the same as none.
        if cfg.ipvs_timeouts.is_some_and(|t| t.is_unmanaged()) {
            cfg.ipvs_timeouts = None;
        }
        // Validate in the caller's order, so field paths point into the request body.
        let (focus_id, prefix) = focus_path(&cfg, focus);
        validate::config_changed(&cfg, focus_id, &changed)
            .map_err(|e| relative_to(e, prefix.as_deref()))?;
        sort_canonical(&mut cfg, &current.config, &changed);
        let changes = diff(&current.config, &cfg);

        if opts.dry_run || changes.is_empty() {
            let snap = Arc::new(Snapshot {
                revision: current.revision,
                config: cfg,
            });
            return Ok(WriteResult {
                revision: current.revision,
                dry_run: opts.dry_run,
                changes,
                value: (snap, focus),
            });
        }

        let snap = self
            .commit_own(&mut state, current.revision, cfg, &changes, ids.next_id)
            .await?;
        tracing::info!(
            revision = snap.revision,
            changes = changes.len(),
            "configuration committed"
        );
        // What changed, readable in the log (an import of thousands says the first ones).
        const LOGGED: usize = 20;
        for c in changes.iter().take(LOGGED) {
            tracing::info!(revision = snap.revision, "changed: {c}");
        }
        if changes.len() > LOGGED {
            tracing::info!(
                revision = snap.revision,
                "changed: and {} more (GET /api/v1/events or the write's diff has them all)",
                changes.len() - LOGGED
            );
        }
        Ok(WriteResult {
            revision: snap.revision,
            dry_run: false,
            changes,
            value: (snap, focus),
        })
    }
}

/// A committed snapshot with what peers need beside it.
#[derive(Debug)]
pub struct Replica {
    pub snapshot: Arc<Snapshot>,
    /// The newest revision identities, the snapshot's the last.
    pub lineage: Lineage,
    pub next_id: Id,
}

impl Replica {
    /// The snapshot's own identity.
    pub fn tip(&self) -> RevisionId {
        self.lineage.id_of(self.snapshot.revision)
    }
}

/// A peer's committed state, as its link received it.
#[derive(Debug)]
pub struct PeerState {
    /// The peer's node name.
    pub node: String,
    pub tip: RevisionId,
    pub lineage: Lineage,
    pub next_id: Id,
    pub config: Config,
}

/// What became of a peer's state (see `control::replication`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// Both hold the same revision.
    InSync,
    /// This director is ahead; the peer follows it.
    Ahead,
    /// A split edit that this director won; the peer keeps its side as a conflict.
    WonSplit,
    /// A split edit at equal revisions that the peer won by name: its re-stamped revision, one
    /// higher, is taken when it comes.
    TieLost,
    /// This director took the peer's configuration: a fast-forward, or a split edit it lost
    /// (`conflict`: its own side was kept as a conflict record).
    Took {
        revision: u64,
        changes: usize,
        conflict: bool,
    },
}

/// A kept split edit that lost (GET /api/v1/conflicts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Conflict {
    pub id: i64,
    pub time_unix_ms: u64,
    /// The losing revision and the director that made it.
    pub revision: u64,
    pub origin: String,
    /// The revision it lost to.
    pub winner_revision: u64,
    pub winner_origin: String,
    /// What re-applying it would change in the current configuration.
    pub changes: Vec<Change>,
}

impl Service {
    /// Commits `cfg` as this director's next revision after `base` (`changes` turn one into
    /// the other), records it as its own, and publishes it.
    async fn commit_own(
        &self,
        state: &mut WriteState,
        base: u64,
        cfg: Config,
        changes: &[Change],
        next_id: Id,
    ) -> Result<Arc<Snapshot>, ServiceError> {
        let snap = Arc::new(Snapshot {
            revision: base + 1,
            config: cfg,
        });
        let made = RevisionId::new(snap.revision, self.inner.node.clone());
        self.inner
            .store
            .commit(
                base,
                &snap,
                changes,
                next_id,
                &CommitRecord {
                    lineage: std::slice::from_ref(&made),
                    conflict: None,
                },
            )
            .await?;
        state.next_id = next_id;
        state.lineage.push(made);
        self.publish(state, snap.clone());
        self.inner.events.publish(EventKind::ConfigCommitted {
            revision: snap.revision,
            changes: changes.len(),
        });
        Ok(snap)
    }

    /// Publishes a committed snapshot to the data plane, the front ends and the peer link.
    fn publish(&self, state: &WriteState, snap: Arc<Snapshot>) {
        self.inner.replica.send_replace(Arc::new(Replica {
            snapshot: snap.clone(),
            lineage: state.lineage.clone(),
            next_id: state.next_id,
        }));
        self.inner.snapshot.send_replace(snap);
    }

    /// Takes a peer's state by the rule of `control::replication`: a fast-forward, or a split
    /// edit this director loses, commits the peer's configuration with its ids, revision and
    /// origins, after the same whole-config validation as any write; a lost split keeps this
    /// director's configuration as a conflict record, in the same transaction.
    pub async fn adopt(&self, peer: PeerState) -> Result<Adopted, ServiceError> {
        let mut state = self.inner.write.lock().await;
        let current = self.snapshot();
        let local_tip = state.lineage.id_of(current.revision);
        let split = match decide(
            &state.lineage,
            &local_tip,
            &self.inner.node,
            &peer.lineage,
            &peer.tip,
            &peer.node,
        ) {
            Decision::InSync => return Ok(Adopted::InSync),
            Decision::Ahead => return Ok(Adopted::Ahead),
            Decision::Split { peer_wins: false } => {
                // A tie won by name: the loser would take the winner's configuration under
                // the revision number it already used for its own, and an `If-Match` of that
                // number would then pass against other content. One more revision (the same
                // configuration) makes the winner's tip strictly higher.
                if peer.tip.revision == current.revision {
                    let next_id = state.next_id;
                    let snap = self
                        .commit_own(
                            &mut state,
                            current.revision,
                            current.config.clone(),
                            &[],
                            next_id,
                        )
                        .await?;
                    tracing::info!(
                        revision = snap.revision,
                        peer = %peer.node,
                        "split edit won at equal revisions: re-stamped as a new revision"
                    );
                }
                return Ok(Adopted::WonSplit);
            }
            Decision::FastForward => false,
            // A tie lost by name: the winner re-stamps its side one revision higher when it
            // hears ours (see above), and that one is taken; taking this one would give the
            // revision number this director used for its own side to other content.
            Decision::Split { peer_wins: true } if peer.tip.revision == current.revision => {
                return Ok(Adopted::TieLost)
            }
            Decision::Split { peer_wins: true } => true,
        };
        let mut cfg = peer.config;
        validate::config(&cfg, None).map_err(|e| relative_to(e, None))?;
        // The untouched virtual servers keep the current snapshot's own `Arc`, so the health
        // checkers and the data plane see only what changed (see `sort_canonical`).
        let all: Vec<usize> = (0..cfg.virtual_servers.len()).collect();
        sort_canonical(&mut cfg, &current.config, &all);
        let changes = diff(&current.config, &cfg);
        let conflict = (split && current.config != cfg).then(|| NewConflict {
            revision: current.revision,
            origin: if local_tip.origin.is_empty() {
                self.inner.node.clone()
            } else {
                local_tip.origin.clone()
            },
            winner_revision: peer.tip.revision,
            winner_origin: peer.tip.origin.clone(),
            config: serde_json::to_string(&current.config).unwrap_or_else(|_| "{}".into()),
        });
        let next_id = state.next_id.max(peer.next_id).max(cfg.max_id() + 1);
        // A fast-forward records the peer's revisions after ours; a lost split, the peer's
        // lineage as it is (ours from the split on is the conflict record's).
        let from = if split { 0 } else { current.revision };
        let record: Vec<RevisionId> = peer
            .lineage
            .entries()
            .filter(|e| e.revision > from && e.revision <= peer.tip.revision)
            .cloned()
            .collect();
        let snap = Arc::new(Snapshot {
            revision: peer.tip.revision,
            config: cfg,
        });
        self.inner
            .store
            .commit(
                current.revision,
                &snap,
                &changes,
                next_id,
                &CommitRecord {
                    lineage: &record,
                    conflict: conflict.as_ref(),
                },
            )
            .await?;
        state.next_id = next_id;
        if split {
            state.lineage = peer.lineage;
        } else {
            for e in record {
                state.lineage.push(e);
            }
        }
        self.publish(&state, snap.clone());
        if conflict.is_some() {
            self.inner.conflicts.send_modify(|n| *n += 1);
        }
        tracing::info!(
            revision = snap.revision,
            peer = %peer.node,
            origin = %peer.tip.origin,
            changes = changes.len(),
            split,
            "configuration taken from the peer"
        );
        for c in changes.iter().take(20) {
            tracing::info!(revision = snap.revision, "changed: {c}");
        }
        self.inner.events.publish(EventKind::ConfigCommitted {
            revision: snap.revision,
            changes: changes.len(),
        });
        if let Some(c) = &conflict {
            tracing::warn!(
                lost = c.revision,
                lost_origin = %c.origin,
                winner = c.winner_revision,
                winner_origin = %c.winner_origin,
                "split edit: this director's configuration lost and is kept as a conflict record"
            );
        }
        Ok(Adopted::Took {
            revision: snap.revision,
            changes: changes.len(),
            conflict: conflict.is_some(),
        })
    }

    /// The kept conflict records, oldest first, each with what re-applying it would change.
    pub async fn conflicts(&self) -> Result<Vec<Conflict>, ServiceError> {
        let current = self.snapshot();
        let mut out = Vec::new();
        for c in self.inner.store.conflicts().await? {
            let cfg: Config = serde_json::from_str(&c.config).unwrap_or_default();
            out.push(Conflict {
                id: c.id,
                time_unix_ms: c.time_unix_ms,
                revision: c.revision,
                origin: c.origin,
                winner_revision: c.winner_revision,
                winner_origin: c.winner_origin,
                changes: diff(&current.config, &cfg),
            });
        }
        Ok(out)
    }

    /// Re-applies a conflict record: its configuration replaces the current one (a normal
    /// whole-config write, validated, which reaches the peers like any other), and the record
    /// is dropped.
    pub async fn apply_conflict(
        &self,
        id: i64,
        opts: WriteOptions,
    ) -> Result<WriteResult<Config>, ServiceError> {
        let record = self
            .inner
            .store
            .conflicts()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("conflict {id}")))?;
        let cfg: Config = serde_json::from_str(&record.config).map_err(|e| {
            ServiceError::Internal(format!("conflict {id} holds an unreadable config: {e}"))
        })?;
        let r = self.replace_config(cfg, opts).await?;
        if !opts.dry_run {
            self.dismiss_conflict(id).await?;
        }
        Ok(r)
    }

    /// Drops a conflict record.
    pub async fn dismiss_conflict(&self, id: i64) -> Result<(), ServiceError> {
        if !self.inner.store.dismiss_conflict(id).await? {
            return Err(ServiceError::NotFound(format!("conflict {id}")));
        }
        self.inner
            .conflicts
            .send_modify(|n| *n = n.saturating_sub(1));
        Ok(())
    }
}

impl WriteResult<(Arc<Snapshot>, Focus)> {
    /// Picks the written entity out of the new snapshot.
    fn map<U>(
        self,
        f: impl FnOnce(&Config, Focus) -> Option<U>,
    ) -> Result<WriteResult<U>, ServiceError> {
        let (snap, focus) = self.value;
        let value = f(&snap.config, focus).ok_or_else(|| {
            // The write closure just put the entity there; not finding it is a bug.
            ServiceError::Internal(format!("{focus:?} is missing from its own snapshot"))
        })?;
        Ok(WriteResult {
            revision: self.revision,
            dry_run: self.dry_run,
            changes: self.changes,
            value,
        })
    }
}

/// Gives the entities of `new` the ids of the current ones with the same identity (virtual
/// server: address/port/protocol or fwmark; real server: address and port within it; VRRP group:
/// name), and fresh ids to the rest.
fn assign_ids(cfg: &Config, new: &mut Config, ids: &mut WriteState) {
    let old_vs: HashMap<_, &VirtualServer> = cfg
        .virtual_servers
        .iter()
        .filter_map(|v| v.key().map(|k| (k, v.as_ref())))
        .collect();
    for vs in &mut new.virtual_servers {
        let vs = Arc::make_mut(vs);
        vs.normalize();
        let old = vs.key().and_then(|k| old_vs.get(&k).copied());
        vs.id = old.map(|o| o.id).unwrap_or_else(|| ids.alloc());
        let old_rs: HashMap<(IpAddr, Option<u16>), Id> = old
            .map(|o| {
                o.real_servers
                    .iter()
                    .map(|r| ((r.address, r.port), r.id))
                    .collect()
            })
            .unwrap_or_default();
        for rs in &mut vs.real_servers {
            rs.id = old_rs
                .get(&(rs.address, rs.port))
                .copied()
                .unwrap_or_else(|| ids.alloc());
        }
    }
    let old_g: HashMap<&str, Id> = cfg
        .vrrp_groups
        .iter()
        .map(|g| (g.name.as_str(), g.id))
        .collect();
    let old_by_id: HashMap<Id, &VrrpGroup> = cfg.vrrp_groups.iter().map(|g| (g.id, g)).collect();
    for g in &mut new.vrrp_groups {
        let old = old_g.get(g.name.as_str()).copied();
        g.id = old.unwrap_or_else(|| ids.alloc());
        keep_secret(g, old.and_then(|id| old_by_id.get(&id).copied()));
    }
}

/// `auth_pass` is write-only (readers see `auth_pass_set`), so a group written back without it
/// keeps the stored one; an empty `auth_pass` is how a writer clears it.
fn keep_secret(g: &mut VrrpGroup, old: Option<&VrrpGroup>) {
    match g.auth_pass.as_deref() {
        Some("") => g.auth_pass = None,
        Some(_) => {}
        None => g.auth_pass = old.and_then(|o| o.auth_pass.clone()),
    }
}

/// Defaults that depend on other fields, filled in so stored and served values are explicit.
fn fill_defaults(cfg: &mut Config, changed: &[usize]) {
    for &i in changed {
        let vs = Arc::make_mut(&mut cfg.virtual_servers[i]);
        vs.normalize();
        for rs in &mut vs.real_servers {
            if let Some(hc) = &mut rs.health_check {
                if matches!(hc.kind, CheckKind::Http | CheckKind::Https) && hc.urls.is_empty() {
                    hc.path.get_or_insert_with(|| "/".to_string());
                    hc.expected_status.get_or_insert(200);
                }
            }
        }
    }
    for g in &mut cfg.vrrp_groups {
        if g.garp.refresh_interval_ms == Some(0) {
            g.garp.refresh_interval_ms = None;
        }
    }
}

/// The canonical order (by id, the store's order), so the in-memory snapshot is exactly what a
/// reload from the file gives. A rewritten virtual server that came out equal to the current
/// one (a whole-config PUT that changes one weight) gets the current snapshot's own `Arc` back,
/// so the health checkers and the data plane see it as untouched.
fn sort_canonical(cfg: &mut Config, cur: &Config, changed: &[usize]) {
    for &i in changed {
        let vs = &mut cfg.virtual_servers[i];
        if !vs.real_servers.is_sorted_by_key(|r| r.id) {
            Arc::make_mut(vs).real_servers.sort_by_key(|r| r.id);
        }
        let old = &cur.virtual_servers;
        if let Ok(j) = old.binary_search_by_key(&vs.id, |o| o.id) {
            if *old[j] == **vs {
                *vs = Arc::clone(&old[j]);
            }
        }
    }
    if !cfg.virtual_servers.is_sorted_by_key(|v| v.id) {
        cfg.virtual_servers.sort_by_key(|v| v.id);
    }
    cfg.vrrp_groups.sort_by_key(|g| g.id);
}

/// The id to report clashes on, and the field-path prefix of the focused entity.
fn focus_path(cfg: &Config, focus: Focus) -> (Option<Id>, Option<String>) {
    match focus {
        Focus::None => (None, None),
        Focus::VirtualServer(id) => (
            Some(id),
            cfg.virtual_servers
                .iter()
                .position(|v| v.id == id)
                .map(|i| format!("virtual_servers[{i}]")),
        ),
        Focus::RealServer(vs_id, rs_id) => (
            Some(vs_id),
            cfg.virtual_servers
                .iter()
                .position(|v| v.id == vs_id)
                .and_then(|i| {
                    cfg.virtual_servers[i]
                        .real_servers
                        .iter()
                        .position(|r| r.id == rs_id)
                        .map(|j| format!("virtual_servers[{i}].real_servers[{j}]"))
                }),
        ),
        Focus::VrrpGroup(id) => (
            Some(id),
            cfg.vrrp_groups
                .iter()
                .position(|g| g.id == id)
                .map(|i| format!("vrrp_groups[{i}]")),
        ),
        Focus::ConnectionSync => (None, Some("connection_sync".into())),
        Focus::VrrpSettings => (None, Some("vrrp_settings".into())),
    }
}

/// Makes an error about the focused entity relative to the request body.
fn relative_to(mut e: ValidationError, prefix: Option<&str>) -> ServiceError {
    if let Some(p) = prefix {
        if let Some(rest) = e.field.strip_prefix(p) {
            e.field = rest.trim_start_matches('.').to_string();
        }
    }
    e.into()
}

fn vs_of(cfg: &Config, f: Focus) -> Option<VirtualServer> {
    match f {
        Focus::VirtualServer(id) => cfg.virtual_server(id).cloned(),
        _ => None,
    }
}

fn rs_of(cfg: &Config, f: Focus) -> Option<RealServer> {
    match f {
        Focus::RealServer(v, r) => cfg
            .virtual_server(v)
            .and_then(|v| v.real_server(r))
            .cloned(),
        _ => None,
    }
}

fn group_of(cfg: &Config, f: Focus) -> Option<VrrpGroup> {
    match f {
        Focus::VrrpGroup(id) => cfg.vrrp_group(id).cloned(),
        _ => None,
    }
}

fn vs_not_found(id: Id) -> ServiceError {
    ServiceError::NotFound(format!("virtual server {id}"))
}

fn rs_not_found(vs_id: Id, rs_id: Id) -> ServiceError {
    ServiceError::NotFound(format!("real server {rs_id} of virtual server {vs_id}"))
}

fn group_not_found(id: Id) -> ServiceError {
    ServiceError::NotFound(format!("VRRP group {id}"))
}
