//! Fuzzes the /proc/net/ip_vs_conn and /proc/net/ip_vs_conn_sync parsers: no text may panic,
//! a line yields at most one connection, and every connection they read comes back from the
//! kernel's own layout of it (`ip_vs_conn_seq_show`: "%-3s %08X %04X %08X %04X %08X %04X %-11s
//! %7u"; `ip_vs_conn_sync_seq_show` puts the origin, "Local" or "Sync", before the expiry); the
//! counts by origin agree with the connections read.
#![no_main]

use std::net::IpAddr;

use lbd::ipvs::conn::{count_origins, parse, parse_sync, Connection, Origin};
use libfuzzer_sys::fuzz_target;

fn kernel_addr(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v) => format!("{:08X}", u32::from(v)),
        IpAddr::V6(v) => v
            .segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

fn kernel_line(c: &Connection) -> String {
    format!(
        "{} {:>7}",
        kernel_head(c),
        c.expires_secs
    )
}

fn kernel_sync_line(c: &Connection, o: Origin) -> String {
    let origin = match o {
        Origin::Local => "Local",
        Origin::Sync => "Sync",
    };
    format!("{} {origin:<6} {:>7}", kernel_head(c), c.expires_secs)
}

fn kernel_head(c: &Connection) -> String {
    format!(
        "{:<3} {} {:04X} {} {:04X} {} {:04X} {:<11}",
        c.protocol,
        kernel_addr(c.client),
        c.client_port,
        kernel_addr(c.virtual_address),
        c.virtual_port,
        kernel_addr(c.destination),
        c.destination_port,
        c.state
    )
}

fuzz_target!(|data: &[u8]| {
    // /proc files are read with read_to_string: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let conns = parse(text);
    assert!(conns.len() <= text.lines().count());
    for c in &conns {
        let line = kernel_line(c);
        assert_eq!(parse(&line), vec![c.clone()], "{line}");
    }
    let synced = parse_sync(text);
    assert!(synced.len() <= text.lines().count());
    let counts = count_origins(text);
    assert_eq!(counts.total, synced.len() as u64);
    assert_eq!(
        counts.synced,
        synced.iter().filter(|(_, o)| *o == Origin::Sync).count() as u64
    );
    for (c, o) in &synced {
        let line = kernel_sync_line(c, *o);
        assert_eq!(parse_sync(&line), vec![(c.clone(), *o)], "{line}");
    }
});
