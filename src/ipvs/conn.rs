//! The IPVS connection table (`ipvsadm -Lnc`). IPVS has no netlink command for it; the kernel
//! publishes it in /proc/net/ip_vs_conn (net/netfilter/ipvs/ip_vs_conn.c: IPv4 addresses as
//! 8 hex digits in host order after ntohl, IPv6 in full colon form, ports as 4 hex digits,
//! expiry in seconds).

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Connection {
    pub protocol: String,
    #[schema(value_type = String)]
    pub client: IpAddr,
    pub client_port: u16,
    #[schema(value_type = String)]
    pub virtual_address: IpAddr,
    pub virtual_port: u16,
    #[schema(value_type = String)]
    pub destination: IpAddr,
    pub destination_port: u16,
    /// ESTABLISHED, FIN_WAIT, TIME_WAIT, ... (NONE for UDP).
    pub state: String,
    pub expires_secs: u64,
}

fn addr(s: &str) -> Option<IpAddr> {
    if s.len() == 8 && !s.contains(':') {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
    } else {
        s.parse().ok()
    }
}

fn port(s: &str) -> Option<u16> {
    u16::from_str_radix(s, 16).ok()
}

/// Parses the file's text; the header and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Connection> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 9 || w[0] == "Pro" {
                return None;
            }
            Some(Connection {
                protocol: w[0].to_string(),
                client: addr(w[1])?,
                client_port: port(w[2])?,
                virtual_address: addr(w[3])?,
                virtual_port: port(w[4])?,
                destination: addr(w[5])?,
                destination_port: port(w[6])?,
                state: w[7].to_string(),
                expires_secs: w[8].parse().ok()?,
            })
        })
        .collect()
}

/// Reads the connection table of the current network namespace.
pub fn read() -> std::io::Result<Vec<Connection>> {
    let mut out = parse(&std::fs::read_to_string("/proc/net/ip_vs_conn")?);
    if let Ok(v6) = std::fs::read_to_string("/proc/net/ip_vs_conn6") {
        out.extend(parse(&v6));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        // The layout of ip_vs_conn_seq_show(): "%-3s %08X %04X %08X %04X %08X %04X %-11s %7u%s".
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
                    TCP C0A80A0A D431 C0A80A64 0050 C0A80A67 0050 ESTABLISHED     897\n\
                    UDP 2001:0db8:0000:0000:0000:0000:0000:000a 8235 2001:0db8:0000:0000:0000:0000:0000:0064 0035 2001:0db8:0000:0000:0000:0000:0000:0067 0035 NONE            283\n\
                    garbage\n";
        let c = parse(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].client, "192.168.10.10".parse::<IpAddr>().unwrap());
        assert_eq!(
            (c[0].client_port, c[0].virtual_port, c[0].destination_port),
            (54321, 80, 80)
        );
        assert_eq!(
            c[0].destination,
            "192.168.10.103".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            (c[0].state.as_str(), c[0].expires_secs),
            ("ESTABLISHED", 897)
        );
        assert_eq!(
            c[1].virtual_address,
            "2001:db8::64".parse::<IpAddr>().unwrap()
        );
        assert_eq!((c[1].protocol.as_str(), c[1].virtual_port), ("UDP", 53));
    }
}
