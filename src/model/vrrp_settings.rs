//! Settings that span VRRP groups: keepalived's `vrrp_sync_group` blocks and its
//! `global_defs { vrrp_strict }`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::vrrp_group::Notify;

/// VRRP settings of the whole configuration (not of one group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VrrpSettings {
    /// keepalived's `vrrp_strict`: every VRRP group must keep to the RFCs (RFC 3768 / RFC
    /// 5798): no `auth_pass`, no `unicast_peers`, no `preempt_delay_ms`, and a node's
    /// `initial_state` is `master` exactly when its priority is 255 (the address owner). A
    /// write that breaks one is refused (rule `vrrp_strict`). Unlike keepalived, lbd adds no
    /// iptables/nftables rules that drop traffic to the virtual addresses of a non-owner.
    #[serde(default)]
    pub strict: bool,
    /// Groups of VRRP groups that fail over together (keepalived `vrrp_sync_group`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_groups: Vec<VrrpSyncGroup>,
}

impl VrrpSettings {
    pub fn is_default(&self) -> bool {
        self == &VrrpSettings::default()
    }

    /// The sync group `group` (a VRRP group's name) belongs to, if any.
    pub fn sync_group_of(&self, group: &str) -> Option<&VrrpSyncGroup> {
        self.sync_groups
            .iter()
            .find(|s| s.groups.iter().any(|g| g == group))
    }
}

/// VRRP groups that fail over together, as keepalived's `vrrp_sync_group` does: when one
/// member goes to Fault every other member goes to Fault (a master hands over with a
/// priority-0 advert) and stays there until no member is faulty; when one becomes master the
/// others in Backup become master at once; when a master member becomes backup the other
/// masters become backup too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VrrpSyncGroup {
    /// Unique name (keepalived `vrrp_sync_group NAME`).
    pub name: String,
    /// The member VRRP groups' names (keepalived `group { VI_1 VI_2 }`); each VRRP group is in
    /// at most one sync group.
    pub groups: Vec<String>,
    /// Commands run when the sync group as a whole changes state (keepalived's sync group
    /// `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` / `notify`; the last
    /// gets `GROUP`, the name, the state and 0 appended). The whole group is master when
    /// every member is, in fault when one member is, backup otherwise.
    #[serde(
        default,
        skip_serializing_if = "Notify::is_empty",
        deserialize_with = "super::vrrp_group::object"
    )]
    pub notify: Notify,
}
