//! `lbd realserver up|down --vip ADDR`: the manual steps of a classic LVS-DR real server. The
//! VIP goes on `lo` (so the server accepts packets for it) and ARP is tuned so that it never
//! answers or announces the VIP on the wire (arp_ignore=1, arp_announce=2 on all, default and
//! lo): only the director may own the VIP on the LAN. Idempotent; says what it changed.

use std::net::IpAddr;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum RealServerError {
    #[error("{cmd}: {message}")]
    Command { cmd: String, message: String },
    #[error("cannot set {path}: {source} (run as root)")]
    Sysctl {
        path: String,
        source: std::io::Error,
    },
}

const SYSCTLS: [(&str, &str, &str); 6] = [
    ("all", "arp_ignore", "1"),
    ("default", "arp_ignore", "1"),
    ("lo", "arp_ignore", "1"),
    ("all", "arp_announce", "2"),
    ("default", "arp_announce", "2"),
    ("lo", "arp_announce", "2"),
];

fn ip(args: &[&str]) -> Result<String, RealServerError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| RealServerError::Command {
            cmd: format!("ip {}", args.join(" ")),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(RealServerError::Command {
            cmd: format!("ip {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn prefix(vip: &IpAddr) -> String {
    match vip {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

fn lo_has(vip: &IpAddr) -> Result<bool, RealServerError> {
    let out = ip(&["-o", "addr", "show", "dev", "lo"])?;
    Ok(out.split_whitespace().any(|w| w == prefix(vip)))
}

fn set_sysctl(
    conf: &str,
    key: &str,
    value: &str,
    changes: &mut Vec<String>,
) -> Result<(), RealServerError> {
    let path = format!("/proc/sys/net/ipv4/conf/{conf}/{key}");
    let cur = std::fs::read_to_string(&path).unwrap_or_default();
    if cur.trim() != value {
        std::fs::write(&path, value).map_err(|source| RealServerError::Sysctl {
            path: path.clone(),
            source,
        })?;
        changes.push(format!(
            "net.ipv4.conf.{conf}.{key} = {value} (was {})",
            cur.trim()
        ));
    }
    Ok(())
}

/// Puts `vip` on lo and sets the ARP sysctls. Returns what it changed (empty: nothing to do).
pub fn up(vip: IpAddr) -> Result<Vec<String>, RealServerError> {
    let mut changes = Vec::new();
    // ARP first, so the VIP is never answered for, not even for a moment.
    if vip.is_ipv4() {
        for (conf, key, value) in SYSCTLS {
            set_sysctl(conf, key, value, &mut changes)?;
        }
    }
    if !lo_has(&vip)? {
        ip(&["addr", "add", &prefix(&vip), "dev", "lo"])?;
        changes.push(format!("added {} to lo", prefix(&vip)));
    }
    Ok(changes)
}

/// Removes `vip` from lo; once no VIP is left on lo, puts the ARP sysctls back to the kernel's
/// defaults (0).
pub fn down(vip: IpAddr) -> Result<Vec<String>, RealServerError> {
    let mut changes = Vec::new();
    if lo_has(&vip)? {
        ip(&["addr", "del", &prefix(&vip), "dev", "lo"])?;
        changes.push(format!("removed {} from lo", prefix(&vip)));
    }
    let others = ip(&["-o", "-4", "addr", "show", "dev", "lo"])?
        .lines()
        .any(|l| {
            l.split_whitespace()
                .any(|w| w.ends_with("/32") && !w.starts_with("127."))
        });
    if !others {
        for (conf, key, _) in SYSCTLS {
            set_sysctl(conf, key, "0", &mut changes)?;
        }
    }
    Ok(changes)
}
