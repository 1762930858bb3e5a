//! ipvsadm's vocabulary for `lbd ctl`: scheduler and forwarding words, service and real-server
//! addresses, and the rule syntax of `ipvsadm -S` / `-R`.
//!
//! The rules are the subset ipvsadm(8) writes with `-S -n`: `-A` (add service) with `-t`/`-u`/
//! `--sctp-service`/`-f`, `-s`, `-p`, `-M`; `-a` (add real server) with `-r`, `-g`/`-m`/`-i`,
//! `-w`, `-x`, `-y`; `-E`/`-e` edit, `-D`/`-d` delete, `-C` clear.

use std::net::{IpAddr, SocketAddr};

use crate::model::{Forwarding, Protocol, Scheduler, VirtualServer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WordError(pub String);

/// Every scheduler name the kernel knows (`Scheduler::kernel_name`), in any case.
pub const SCHEDULERS: &str = "rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos";

pub fn scheduler(s: &str) -> Result<Scheduler, WordError> {
    let l = s.to_ascii_lowercase();
    serde_json::from_value(serde_json::Value::String(l))
        .map_err(|_| WordError(format!("unknown scheduler {s:?}: one of {SCHEDULERS}")))
}

pub const FORWARDINGS: &str =
    "dr (route, gatewaying, g), nat (masq, masquerading, m), tun (ipip, tunnel, i)";

/// lbd's names and ipvsadm's words (`-g` gatewaying, `-m` masquerading, `-i` ipip), any case.
pub fn forwarding(s: &str) -> Result<Forwarding, WordError> {
    match s.to_ascii_lowercase().trim_start_matches('-') {
        "dr" | "route" | "direct" | "gatewaying" | "gate" | "g" => Ok(Forwarding::Dr),
        "nat" | "masq" | "masquerading" | "m" => Ok(Forwarding::Nat),
        "tun" | "tunnel" | "tunneling" | "ipip" | "i" => Ok(Forwarding::Tun),
        _ => Err(WordError(format!(
            "unknown forwarding method {s:?}: one of {FORWARDINGS}"
        ))),
    }
}

pub fn protocol(s: &str) -> Result<Protocol, WordError> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" | "t" => Ok(Protocol::Tcp),
        "udp" | "u" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        _ => Err(WordError(format!(
            "unknown protocol {s:?}: one of tcp, udp, sctp"
        ))),
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address.
pub fn host_port(s: &str) -> Result<(IpAddr, Option<u16>), WordError> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok((a, None));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if let Ok(a) = inner.parse::<IpAddr>() {
            return Ok((a, None));
        }
    }
    Err(WordError(format!(
        "{s:?} is not ADDRESS or ADDRESS:PORT (IPv6: [ADDRESS]:PORT)"
    )))
}

fn fmt_host_port(a: IpAddr, port: u16) -> String {
    SocketAddr::new(a, port).to_string()
}

/// How ipvsadm names a service in a rule: `-t VIP:PORT`, `-u ...`, `--sctp-service ...`, `-f N`.
pub fn service_spec(vs: &VirtualServer) -> String {
    match (vs.fwmark, vs.address, vs.port) {
        (Some(m), _, _) if vs.family == Some(crate::model::Family::Ipv6) => format!("-f {m} -6"),
        (Some(m), _, _) => format!("-f {m}"),
        (None, Some(a), Some(p)) => {
            let flag = match vs.protocol.unwrap_or(Protocol::Tcp) {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{flag} {}", fmt_host_port(a, p))
        }
        _ => format!("-f 0 # virtual server {} has no identity", vs.id),
    }
}

fn forwarding_flag(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Dr => "-g",
        Forwarding::Nat => "-m",
        Forwarding::Tun => "-i",
    }
}

/// The configuration's virtual and real servers as `ipvsadm -S -n` writes them. Health checks,
/// sorry servers and VRRP have no rule syntax and are not in it.
pub fn save(vss: &[VirtualServer]) -> String {
    let mut out = String::new();
    for vs in vss {
        let spec = service_spec(vs);
        let mut line = format!("-A {spec} -s {}", vs.scheduler.kernel_name());
        if let Some(t) = vs.persistence_timeout_secs {
            line.push_str(&format!(" -p {t}"));
            if let Some(g) = vs.persistence_granularity {
                line.push_str(&format!(" -M {}", netmask(vs, g)));
            }
        }
        out.push_str(&line);
        out.push('\n');
        for rs in &vs.real_servers {
            let port = rs.port.or(vs.port).unwrap_or(0);
            let mut line = format!(
                "-a {spec} -r {} {} -w {}",
                fmt_host_port(rs.address, port),
                forwarding_flag(rs.forwarding.unwrap_or(vs.forwarding)),
                rs.weight
            );
            if let Some(x) = rs.upper_threshold.filter(|x| *x > 0) {
                line.push_str(&format!(" -x {x}"));
            }
            if let Some(y) = rs.lower_threshold.filter(|y| *y > 0) {
                line.push_str(&format!(" -y {y}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// ipvsadm writes an IPv4 persistence mask dotted and an IPv6 one as a prefix length.
fn netmask(vs: &VirtualServer, prefix: u8) -> String {
    match vs.family() {
        Some(crate::model::Family::Ipv6) | None => prefix.to_string(),
        Some(crate::model::Family::Ipv4) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            std::net::Ipv4Addr::from(m).to_string()
        }
    }
}

/// A service as a rule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRef {
    Addr {
        address: IpAddr,
        port: u16,
        protocol: Protocol,
    },
    /// A firewall mark (of either family: the first configured service with it).
    Fwmark(u32),
}

impl ServiceRef {
    pub fn matches(&self, vs: &VirtualServer) -> bool {
        match *self {
            ServiceRef::Fwmark(m) => vs.fwmark == Some(m),
            ServiceRef::Addr {
                address,
                port,
                protocol,
            } => {
                vs.fwmark.is_none()
                    && vs.address == Some(address)
                    && vs.port == Some(port)
                    && vs.protocol.unwrap_or(Protocol::Tcp) == protocol
            }
        }
    }
}

/// One restore rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `-C`: remove every virtual server.
    Clear,
    /// `-A` (add) or `-E` (edit) a service.
    Service {
        edit: bool,
        service: ServiceRef,
        scheduler: Option<Scheduler>,
        persistence_timeout_secs: Option<u32>,
        persistence_granularity: Option<String>,
        /// `-6` with `-f`: an IPv6 firewall-mark service.
        ipv6: bool,
    },
    /// `-D`: delete a service.
    DeleteService(ServiceRef),
    /// `-a` (add) or `-e` (edit) a real server.
    Real {
        edit: bool,
        service: ServiceRef,
        address: IpAddr,
        port: Option<u16>,
        forwarding: Option<Forwarding>,
        weight: Option<u32>,
        upper_threshold: Option<u32>,
        lower_threshold: Option<u32>,
    },
    /// `-d`: delete a real server.
    DeleteReal {
        service: ServiceRef,
        address: IpAddr,
        port: Option<u16>,
    },
}

/// Parses `ipvsadm -S` output (or hand-written rules); errors name the line.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, WordError> {
    let mut rules = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let rule = parse_rule(line)
            .map_err(|e| WordError(format!("line {}: {}: {}", n + 1, line, e.0)))?;
        rules.push(rule);
    }
    Ok(rules)
}

fn parse_rule(line: &str) -> Result<Rule, WordError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut it = words.iter().copied();
    let cmd = it.next().unwrap_or("");
    let mut service = None;
    let (mut scheduler, mut timeout, mut mask, mut ipv6) = (None, None, None, false);
    let (mut real, mut fwd, mut weight, mut upper, mut lower) = (None, None, None, None, None);
    let value = |flag: &str, it: &mut dyn Iterator<Item = &str>| {
        it.next()
            .map(str::to_string)
            .ok_or_else(|| WordError(format!("{flag} needs a value")))
    };
    let number = |flag: &str, v: String| {
        v.parse::<u32>()
            .map_err(|_| WordError(format!("{flag} takes a number, got {v:?}")))
    };
    while let Some(w) = it.next() {
        match w {
            "-t" | "--tcp-service" | "-u" | "--udp-service" | "--sctp-service" => {
                let v = value(w, &mut it)?;
                let (address, port) = host_port(&v)?;
                let port = port.ok_or_else(|| WordError(format!("{w} needs ADDRESS:PORT")))?;
                let protocol = match w {
                    "-t" | "--tcp-service" => Protocol::Tcp,
                    "-u" | "--udp-service" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                service = Some(ServiceRef::Addr {
                    address,
                    port,
                    protocol,
                });
            }
            "-f" | "--fwmark-service" => {
                service = Some(ServiceRef::Fwmark(number(w, value(w, &mut it)?)?));
            }
            "-6" | "--ipv6" => ipv6 = true,
            "-s" | "--scheduler" => scheduler = Some(self::scheduler(&value(w, &mut it)?)?),
            "-p" | "--persistent" => timeout = Some(number(w, value(w, &mut it)?)?),
            "-M" | "--netmask" => mask = Some(value(w, &mut it)?),
            "-r" | "--real-server" => real = Some(host_port(&value(w, &mut it)?)?),
            "-g" | "--gatewaying" | "-m" | "--masquerading" | "-i" | "--ipip" => {
                fwd = Some(forwarding(w.trim_start_matches('-'))?)
            }
            "-w" | "--weight" => weight = Some(number(w, value(w, &mut it)?)?),
            "-x" | "--u-threshold" => upper = Some(number(w, value(w, &mut it)?)?),
            "-y" | "--l-threshold" => lower = Some(number(w, value(w, &mut it)?)?),
            other => return Err(WordError(format!("unsupported option {other:?}"))),
        }
    }
    if cmd == "-C" || cmd == "--clear" {
        return Ok(Rule::Clear);
    }
    let service =
        service.ok_or_else(|| WordError("no service (-t, -u, --sctp-service or -f)".into()))?;
    match cmd {
        "-A" | "--add-service" | "-E" | "--edit-service" => Ok(Rule::Service {
            edit: cmd.starts_with("-E") || cmd == "--edit-service",
            service,
            scheduler,
            persistence_timeout_secs: timeout,
            persistence_granularity: mask,
            ipv6,
        }),
        "-D" | "--delete-service" => Ok(Rule::DeleteService(service)),
        "-a" | "--add-server" | "-e" | "--edit-server" | "-d" | "--delete-server" => {
            let (address, port) = real.ok_or_else(|| WordError("no real server (-r)".into()))?;
            if cmd == "-d" || cmd == "--delete-server" {
                return Ok(Rule::DeleteReal {
                    service,
                    address,
                    port,
                });
            }
            Ok(Rule::Real {
                edit: cmd == "-e" || cmd == "--edit-server",
                service,
                address,
                port,
                forwarding: fwd,
                weight,
                upper_threshold: upper,
                lower_threshold: lower,
            })
        }
        other => Err(WordError(format!(
            "unsupported command {other:?} (one of -A -E -D -a -e -d -C)"
        ))),
    }
}

/// A persistence mask as ipvsadm writes it (dotted IPv4 or a prefix length) -> prefix length.
pub fn mask_prefix(m: &str) -> Result<u8, WordError> {
    if let Ok(n) = m.parse::<u8>() {
        return Ok(n);
    }
    let a: std::net::Ipv4Addr = m
        .parse()
        .map_err(|_| WordError(format!("-M {m:?} is not a netmask")))?;
    let bits = u32::from(a);
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(WordError(format!("-M {m} is not a contiguous netmask")));
    }
    Ok(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_in_any_case() {
        assert_eq!(scheduler("WLC").unwrap(), Scheduler::Wlc);
        assert!(scheduler("fastest")
            .unwrap_err()
            .0
            .contains("one of rr, wrr"));
        assert_eq!(forwarding("masq").unwrap(), Forwarding::Nat);
        assert_eq!(forwarding("-g").unwrap(), Forwarding::Dr);
        assert_eq!(forwarding("IPIP").unwrap(), Forwarding::Tun);
        assert!(forwarding("bridge").is_err());
        assert_eq!(
            host_port("[2001:db8::1]:80").unwrap(),
            ("2001:db8::1".parse().unwrap(), Some(80))
        );
        assert_eq!(host_port("2001:db8::1").unwrap().1, None);
        assert_eq!(host_port("10.0.0.1").unwrap().1, None);
        assert!(host_port("10.0.0.1:http").is_err());
        assert_eq!(mask_prefix("255.255.255.0").unwrap(), 24);
        assert_eq!(mask_prefix("64").unwrap(), 64);
        assert!(mask_prefix("255.0.255.0").is_err());
    }

    #[test]
    fn save_then_parse_round_trips() {
        let vss: Vec<VirtualServer> = serde_json::from_value(serde_json::json!([
            {"id": 1, "address": "192.168.10.100", "port": 80, "protocol": "tcp", "scheduler": "wlc",
             "persistence_timeout_secs": 300, "persistence_granularity": 24,
             "real_servers": [{"id": 2, "address": "192.168.10.103", "port": 80, "weight": 3},
                              {"id": 3, "address": "192.168.10.104", "port": 8080, "weight": 0,
                               "forwarding": "nat", "upper_threshold": 10}]},
            {"id": 4, "fwmark": 7, "family": "ipv6", "real_servers": []}
        ]))
        .unwrap();
        let text = save(&vss);
        assert_eq!(
            text,
            "-A -t 192.168.10.100:80 -s wlc -p 300 -M 255.255.255.0\n\
             -a -t 192.168.10.100:80 -r 192.168.10.103:80 -g -w 3\n\
             -a -t 192.168.10.100:80 -r 192.168.10.104:8080 -m -w 0 -x 10\n\
             -A -f 7 -6 -s rr\n"
        );
        let rules = parse_rules(&text).unwrap();
        assert_eq!(rules.len(), 4);
        assert!(
            matches!(rules[3], Rule::Service { ipv6: true, .. }),
            "{:?}",
            rules[3]
        );
        assert_eq!(
            rules[2],
            Rule::Real {
                edit: false,
                service: ServiceRef::Addr {
                    address: "192.168.10.100".parse().unwrap(),
                    port: 80,
                    protocol: Protocol::Tcp
                },
                address: "192.168.10.104".parse().unwrap(),
                port: Some(8080),
                forwarding: Some(Forwarding::Nat),
                weight: Some(0),
                upper_threshold: Some(10),
                lower_threshold: None,
            }
        );
        let e = parse_rules("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w x\n")
            .unwrap_err();
        assert!(
            e.0.starts_with("line 2: ") && e.0.contains("-w takes a number"),
            "{}",
            e.0
        );
        assert!(parse_rules("-Z").is_err());
    }
}
