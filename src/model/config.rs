//! The whole configuration and the revisioned snapshot the data plane consumes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::idmap::{IdMap, IdSet};
use super::virtual_server::{Id, VirtualServer};
use super::vrrp_group::VrrpGroup;

// Virtual servers are shared (`Arc`) between consecutive snapshots: a write copies only the
// virtual server it changes, and the service, the health checkers and the data plane recognise
// the untouched ones by pointer (`Arc::ptr_eq`), so one change costs about the same in a table
// of 2,000 services as in a table of one.
/// Everything an operator configures; identical on both directors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    #[schema(value_type = Vec<VirtualServer>)]
    pub virtual_servers: Vec<Arc<VirtualServer>>,
    #[serde(default)]
    pub vrrp_groups: Vec<VrrpGroup>,
    /// IPVS's global connection timeouts (`ipvsadm --set`, keepalived's `lvs_timeouts`).
    /// Absent: lbd leaves the kernel's timeouts as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs_timeouts: Option<super::IpvsTimeouts>,
    /// IPVS connection synchronisation (`ipvsadm --start-daemon`, keepalived's
    /// `lvs_sync_daemon`): lbd runs a master and a backup sync daemon with these settings.
    /// Absent: lbd leaves the kernel's sync daemons alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_sync: Option<super::ConnectionSync>,
    /// Settings that span VRRP groups: sync groups and strict mode (keepalived's
    /// `vrrp_sync_group` and `vrrp_strict`).
    #[serde(default, skip_serializing_if = "super::VrrpSettings::is_default")]
    pub vrrp_settings: super::VrrpSettings,
}

/// One committed revision of the configuration. Every committed change bumps the revision by
/// one; a snapshot is immutable and shared (`Arc`) between the API and the data plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub revision: u64,
    pub config: Config,
}

/// What changed in a configuration for a consumer that keeps, per virtual-server id, the `Arc`
/// it last worked from (see [`Config::changes_since`]).
#[derive(Debug, Default)]
pub struct VsChanges {
    /// New virtual servers, and those that are not the same `Arc` any more.
    pub changed: Vec<Arc<VirtualServer>>,
    /// Ids the consumer knew that are gone.
    pub removed: Vec<Id>,
}

impl Config {
    /// The virtual servers that differ from what `seen` (id -> whatever holds the `Arc` the
    /// consumer last worked from) remembers, plus those `dirty` names for reasons of its own.
    /// Untouched virtual servers cost one lookup and no comparison of their contents.
    pub fn changes_since<V>(
        &self,
        seen: &IdMap<V>,
        arc: impl Fn(&V) -> &Arc<VirtualServer>,
        dirty: impl Fn(Id) -> bool,
    ) -> VsChanges {
        let mut out = VsChanges::default();
        let mut known = 0;
        for vs in &self.virtual_servers {
            match seen.get(&vs.id) {
                Some(v) => {
                    known += 1;
                    if !Arc::ptr_eq(arc(v), vs) || dirty(vs.id) {
                        out.changed.push(vs.clone());
                    }
                }
                None => out.changed.push(vs.clone()),
            }
        }
        if known != seen.len() {
            let ids: IdSet = self.virtual_servers.iter().map(|v| v.id).collect();
            out.removed = seen
                .keys()
                .filter(|id| !ids.contains(id))
                .copied()
                .collect();
        }
        out
    }

    pub fn virtual_server(&self, id: Id) -> Option<&VirtualServer> {
        self.virtual_servers
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.as_ref())
    }

    /// The virtual server to change: copied first if an older snapshot shares it.
    pub fn virtual_server_mut(&mut self, id: Id) -> Option<&mut VirtualServer> {
        self.virtual_servers
            .iter_mut()
            .find(|v| v.id == id)
            .map(Arc::make_mut)
    }

    pub fn vrrp_group(&self, id: Id) -> Option<&VrrpGroup> {
        self.vrrp_groups.iter().find(|g| g.id == id)
    }

    pub fn vrrp_group_mut(&mut self, id: Id) -> Option<&mut VrrpGroup> {
        self.vrrp_groups.iter_mut().find(|g| g.id == id)
    }

    /// The largest id in use, so a loaded config can continue the id sequence.
    pub fn max_id(&self) -> Id {
        let vs = self
            .virtual_servers
            .iter()
            .flat_map(|v| std::iter::once(v.id).chain(v.real_servers.iter().map(|r| r.id)));
        let groups = self.vrrp_groups.iter().map(|g| g.id);
        vs.chain(groups).max().unwrap_or(0)
    }

    pub fn real_server_count(&self) -> usize {
        self.virtual_servers
            .iter()
            .map(|v| v.real_servers.len())
            .sum()
    }
}
