//! IPVS connection synchronisation as configuration: the kernel's sync daemons
//! (`ipvsadm --start-daemon`, keepalived's `global_defs { lvs_sync_daemon ... }`). One setting
//! for the whole director, as the kernel runs at most one master and one backup daemon per
//! network namespace. lbd runs both on every director, so each one always holds the
//! connections the other schedules, whichever of them is master (see `dataplane::actor`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::limits::SYNC_FAILBACK_HOLD_DEFAULT_MS;
use crate::ipvs::table::{SyncDaemon, SyncRole};
use crate::ipvs::uapi::{IP_VS_SYNC_GROUP, IP_VS_SYNC_PORT, IP_VS_SYNC_TTL};

fn default_hold() -> u32 {
    SYNC_FAILBACK_HOLD_DEFAULT_MS
}

fn is_default_hold(v: &u32) -> bool {
    *v == SYNC_FAILBACK_HOLD_DEFAULT_MS
}

/// The connection-sync daemons lbd runs (a master and a backup, both with these settings).
/// Options left out are the kernel's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSync {
    /// The interface sync messages are sent from and received on (ipvsadm's `--mcast-interface`).
    #[schema(min_length = 1, max_length = 15)]
    pub interface: String,
    /// The sync id (ipvsadm's `--syncid`, 0-255): a backup daemon takes only messages of its id.
    pub sync_id: u8,
    /// The largest UDP payload of a sync message (`--sync-maxlen`); absent: the kernel's,
    /// from the interface's MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 65507)]
    pub maxlen: Option<u16>,
    /// The UDP port (`--mcast-port`); absent: 8848.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// The multicast TTL (`--mcast-ttl`); absent: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 255)]
    pub ttl: Option<u8>,
    /// The multicast group, IPv4 or IPv6 (`--mcast-group`); absent: 224.0.0.81.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group: Option<IpAddr>,
    /// The VRRP instance keepalived's `lvs_sync_daemon` names. Informational: lbd runs both
    /// daemons on every director, whichever group is master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub vrrp_group: Option<String>,
    /// The failback gate: a returning director preempts a lower-priority master only once its
    /// backup daemon has run this long and no new connection has arrived by sync for this long
    /// (the master's connections are in), or at the bound of ten times this (at most 10 min).
    /// The kernel's master daemon sends a partly filled message at least every 2 s
    /// (IPVS_SYNC_FLUSH_TIME); default 3000; 0: no gate.
    #[serde(default = "default_hold", skip_serializing_if = "is_default_hold")]
    #[schema(minimum = 0, maximum = 600000, default = 3000)]
    pub failback_hold_ms: u32,
}

impl ConnectionSync {
    /// The daemon of `role` as lbd starts it.
    pub fn daemon(&self, role: SyncRole) -> SyncDaemon {
        SyncDaemon {
            role,
            interface: self.interface.clone(),
            sync_id: self.sync_id,
            maxlen: self.maxlen,
            group: self.group,
            port: self.port,
            ttl: self.ttl,
        }
    }
}

/// Whether the daemon the kernel runs (`have`) is the one `want` describes: the same role,
/// interface and sync id, and the group, port and TTL as asked (the kernel's defaults where
/// `want` leaves them out). The max length is not compared: the kernel clamps it to what the
/// interface allows, and reports the clamped value.
pub fn daemon_matches(want: &SyncDaemon, have: &SyncDaemon) -> bool {
    want.role == have.role
        && want.interface == have.interface
        && want.sync_id == have.sync_id
        && have.group.unwrap_or(IpAddr::from(IP_VS_SYNC_GROUP))
            == want.group.unwrap_or(IpAddr::from(IP_VS_SYNC_GROUP))
        && have.port.unwrap_or(IP_VS_SYNC_PORT) == want.port.unwrap_or(IP_VS_SYNC_PORT)
        && have.ttl.unwrap_or(IP_VS_SYNC_TTL) == want.ttl.unwrap_or(IP_VS_SYNC_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_kernels_and_the_hold_is_3s() {
        let c: ConnectionSync =
            serde_json::from_str(r#"{"interface": "eth0", "sync_id": 42}"#).unwrap();
        assert_eq!(c.failback_hold_ms, 3000);
        let want = c.daemon(SyncRole::Master);
        let running = SyncDaemon {
            maxlen: Some(1472),
            group: Some("224.0.0.81".parse().unwrap()),
            port: Some(8848),
            ttl: Some(1),
            ..want.clone()
        };
        assert!(daemon_matches(&want, &running));
        assert!(!daemon_matches(
            &want,
            &SyncDaemon {
                port: Some(9000),
                ..running.clone()
            }
        ));
        assert!(!daemon_matches(
            &want,
            &SyncDaemon {
                sync_id: 7,
                ..running.clone()
            }
        ));
        assert!(!daemon_matches(&c.daemon(SyncRole::Backup), &running));
        // The serialized form leaves defaults out.
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"interface":"eth0","sync_id":42}"#
        );
        assert!(
            serde_json::from_str::<ConnectionSync>(r#"{"interface":"eth0","sync_id":256}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ConnectionSync>(
            r#"{"interface":"eth0","sync_id":1,"mcast":"x"}"#
        )
        .is_err());
    }
}
