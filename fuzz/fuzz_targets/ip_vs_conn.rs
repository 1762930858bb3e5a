//! Fuzzes the /proc/net/ip_vs_conn parser: no text may panic, a line yields at most one
//! connection, and every connection it reads comes back from the kernel's own layout of it
//! (`ip_vs_conn_seq_show`: "%-3s %08X %04X %08X %04X %08X %04X %-11s %7u").
#![no_main]

use std::net::IpAddr;

use lbd::ipvs::conn::{parse, Connection};
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
        "{:<3} {} {:04X} {} {:04X} {} {:04X} {:<11} {:>7}",
        c.protocol,
        kernel_addr(c.client),
        c.client_port,
        kernel_addr(c.virtual_address),
        c.virtual_port,
        kernel_addr(c.destination),
        c.destination_port,
        c.state,
        c.expires_secs
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
});
