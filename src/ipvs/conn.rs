//! The IPVS connection table (`ipvsadm -Lnc`). IPVS has no netlink command for it; the kernel
//! publishes it in /proc/net/ip_vs_conn (net/netfilter/ipvs/ip_vs_conn.c: IPv4 addresses as
//! 8 hex digits in host order after ntohl, IPv6 in full colon form, ports as 4 hex digits,
//! expiry in seconds). /proc/net/ip_vs_conn_sync has the same columns (both families in the
//! one file) and an `Origin` column before the expiry: `Local` for a connection this director
//! scheduled, `Sync` for one a peer's master sync daemon sent (IP_VS_CONN_F_SYNC); matched
//! without regard to case.

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

/// Where a connection entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Scheduled by this director.
    Local,
    /// Received from a peer's master sync daemon.
    Sync,
}

/// How many connections the table holds, and how many of them came by sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct OriginCounts {
    pub total: u64,
    pub synced: u64,
}

/// Parses the file's text; the header and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Connection> {
    text.lines()
        .filter_map(|l| line(l, false))
        .map(|(c, _)| c)
        .collect()
}

/// Parses /proc/net/ip_vs_conn_sync: each connection with its origin.
pub fn parse_sync(text: &str) -> Vec<(Connection, Origin)> {
    text.lines()
        .filter_map(|l| line(l, true))
        .filter_map(|(c, o)| Some((c, o?)))
        .collect()
}

/// Counts the connections of /proc/net/ip_vs_conn_sync's text by origin.
pub fn count_origins(text: &str) -> OriginCounts {
    let mut n = OriginCounts::default();
    for l in text.lines() {
        n.tally(l);
    }
    n
}

impl OriginCounts {
    /// Counts one line of /proc/net/ip_vs_conn_sync (the header and malformed lines: nothing).
    fn tally(&mut self, l: &str) {
        if let Some((_, Some(o))) = line(l, true) {
            self.total += 1;
            if o == Origin::Sync {
                self.synced += 1;
            }
        }
    }
}

/// Reads the connection counts by origin of the current network namespace. Line by line: the
/// table can hold millions of connections, and a status request must not hold a copy of it.
pub fn read_origins() -> std::io::Result<OriginCounts> {
    use std::io::BufRead;
    let file = std::fs::File::open("/proc/net/ip_vs_conn_sync")?;
    let mut n = OriginCounts::default();
    for l in std::io::BufReader::new(file).lines() {
        n.tally(&l?);
    }
    Ok(n)
}

fn line(l: &str, with_origin: bool) -> Option<(Connection, Option<Origin>)> {
    let w: Vec<&str> = l.split_whitespace().collect();
    let need = if with_origin { 10 } else { 9 };
    if w.len() < need || w[0] == "Pro" {
        return None;
    }
    let origin = if with_origin {
        if w[8].eq_ignore_ascii_case("sync") {
            Some(Origin::Sync)
        } else if w[8].eq_ignore_ascii_case("local") {
            Some(Origin::Local)
        } else {
            return None;
        }
    } else {
        None
    };
    let expires = if with_origin { w[9] } else { w[8] };
    Some((
        Connection {
            protocol: w[0].to_string(),
            client: addr(w[1])?,
            client_port: port(w[2])?,
            virtual_address: addr(w[3])?,
            virtual_port: port(w[4])?,
            destination: addr(w[5])?,
            destination_port: port(w[6])?,
            state: w[7].to_string(),
            expires_secs: expires.parse().ok()?,
        },
        origin,
    ))
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

    #[test]
    fn the_sync_file_says_where_each_connection_came_from() {
        // ip_vs_conn_sync_seq_show(): the same columns, then the origin, then the expiry.
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n\
                    TCP C0A80A69 D431 C0A80A64 0050 C0A80A67 0050 ESTABLISHED Local      897\n\
                    TCP C0A80A69 D432 C0A80A64 0050 C0A80A68 0050 ESTABLISHED Sync       880\n\
                    TCP 2001:0db8:0000:0000:0000:0000:0000:000a 8235 2001:0db8:0000:0000:0000:0000:0000:0064 0050 2001:0db8:0000:0000:0000:0000:0000:0067 0050 FIN_WAIT    SYNC   60\n\
                    TCP C0A80A69 D433 C0A80A64 0050 C0A80A68 0050 ESTABLISHED Elsewhere  880\n";
        let c = parse_sync(text);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].1, Origin::Local);
        assert_eq!(
            (c[1].1, c[1].0.client_port, c[1].0.expires_secs),
            (Origin::Sync, 0xd432, 880)
        );
        assert_eq!(
            c[1].0.destination,
            "192.168.10.104".parse::<IpAddr>().unwrap()
        );
        assert_eq!((c[2].1, c[2].0.state.as_str()), (Origin::Sync, "FIN_WAIT"));
        assert_eq!(
            count_origins(text),
            OriginCounts {
                total: 3,
                synced: 2
            }
        );
        // The plain file's lines have no origin column: nothing to count there.
        assert_eq!(
            count_origins("TCP C0A80A0A D431 C0A80A64 0050 C0A80A67 0050 ESTABLISHED 897\n").total,
            0
        );
    }
}
