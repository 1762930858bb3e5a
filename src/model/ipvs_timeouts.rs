//! IPVS's global connection timeouts as configuration: what `ipvsadm --set TCP TCPFIN UDP` and
//! keepalived's `global_defs { lvs_timeouts tcp N tcpfin N udp N }` set. lbd programs them with
//! IPVS_CMD_SET_CONFIG and repairs drift (read with IPVS_CMD_GET_CONFIG) like the table.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::units::TimeoutSecs;
use crate::ipvs::table::Timeouts;

/// The three timeouts IPVS has globally, in seconds. A timeout of 0 is not managed: lbd (like
/// ipvsadm and keepalived) leaves it as the kernel has it. All three 0 is the same as not
/// configuring timeouts at all (and is stored as that).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpvsTimeouts {
    /// TCP connections in ESTABLISHED (ipvsadm's `tcp`, IPVS_CMD_ATTR_TIMEOUT_TCP); kernel
    /// default 900.
    #[serde(default)]
    pub tcp_secs: TimeoutSecs,
    /// TCP connections after a FIN (ipvsadm's `tcpfin`, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN); kernel
    /// default 120.
    #[serde(default)]
    pub tcp_fin_secs: TimeoutSecs,
    /// UDP "connections" (ipvsadm's `udp`, IPVS_CMD_ATTR_TIMEOUT_UDP); kernel default 300.
    #[serde(default)]
    pub udp_secs: TimeoutSecs,
}

impl IpvsTimeouts {
    /// All three 0: nothing to manage.
    pub fn is_unmanaged(&self) -> bool {
        self.kernel() == Timeouts::default()
    }

    /// What IPVS_CMD_SET_CONFIG carries (0: leave as is).
    pub fn kernel(&self) -> Timeouts {
        Timeouts {
            tcp_secs: self.tcp_secs.get(),
            tcp_fin_secs: self.tcp_fin_secs.get(),
            udp_secs: self.udp_secs.get(),
        }
    }

    /// Whether the kernel's timeouts `k` are these already (a 0 here matches anything).
    pub fn satisfied_by(&self, k: &Timeouts) -> bool {
        let want = self.kernel();
        [
            (want.tcp_secs, k.tcp_secs),
            (want.tcp_fin_secs, k.tcp_fin_secs),
            (want.udp_secs, k.udp_secs),
        ]
        .iter()
        .all(|(w, have)| *w == 0 || w == have)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_left_alone_and_bounds_are_the_kernels() {
        let t: IpvsTimeouts = serde_json::from_str(r#"{"tcp_secs": 7200}"#).unwrap();
        assert!(!t.is_unmanaged());
        assert!(t.satisfied_by(&Timeouts {
            tcp_secs: 7200,
            tcp_fin_secs: 120,
            udp_secs: 300
        }));
        assert!(!t.satisfied_by(&Timeouts {
            tcp_secs: 900,
            tcp_fin_secs: 120,
            udp_secs: 300
        }));
        assert!(IpvsTimeouts::default().is_unmanaged());
        let e = serde_json::from_str::<IpvsTimeouts>(r#"{"udp_secs": 2147484}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("timeout (seconds) must be in 0..=2147483, got 2147484"),
            "{e}"
        );
        assert!(serde_json::from_str::<IpvsTimeouts>(r#"{"tcp": 1}"#).is_err());
    }
}
