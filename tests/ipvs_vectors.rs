//! lbd's IPVS wire codec against what ipvsadm sends (tests/data/ipvs/README.md says how the
//! vectors were captured): decoding each gives the values of the ipvsadm command, and encoding
//! those values gives the same bytes (or, where ipvsadm sends more than lbd needs, a message that
//! decodes to the same values).

use lbd::ipvs::socket::{encode_set_timeouts, encode_zero, timeouts};
use lbd::ipvs::uapi::*;
use lbd::ipvs::wire::{attrs, DestAttrs, MsgBuilder, SvcAttrs};

fn vector(name: &str) -> Vec<u8> {
    let hex = std::fs::read_to_string(format!(
        "{}/tests/data/ipvs/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Our message for `cmd` without its 16-byte netlink header, like the vectors.
fn ours(cmd: u8, build: impl FnOnce(&mut MsgBuilder)) -> Vec<u8> {
    let mut m = MsgBuilder::new(0x1d, NLM_F_REQUEST | NLM_F_ACK, 1, cmd, IPVS_GENL_VERSION);
    build(&mut m);
    m.finish()[16..].to_vec()
}

fn nested(payload: &[u8], ty: u16) -> &[u8] {
    attrs(&payload[4..])
        .find(|(t, _)| *t == ty)
        .expect("nested attribute")
        .1
}

#[test]
fn new_service() {
    let v = vector("new_service");
    assert_eq!((v[0], v[1]), (IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION));
    let s = SvcAttrs::decode(nested(&v, IPVS_CMD_ATTR_SERVICE)).unwrap();
    let want = SvcAttrs {
        af: AF_INET,
        protocol: IPPROTO_TCP,
        addr: Some("192.168.10.100".parse().unwrap()),
        port: 80,
        fwmark: 0,
        sched_name: "wlc".into(),
        flags: IP_VS_SVC_F_PERSISTENT,
        timeout: 300,
        netmask: 0xffff_ff00,
        stats: None,
    };
    assert_eq!(s, want);
    assert_eq!(
        ours(IPVS_CMD_NEW_SERVICE, |m| want.encode(m, true)),
        v,
        "byte for byte what ipvsadm sends"
    );
}

#[test]
fn new_service_fwmark_ipv6() {
    let v = vector("new_service_fwmark6");
    let s = SvcAttrs::decode(nested(&v, IPVS_CMD_ATTR_SERVICE)).unwrap();
    let want = SvcAttrs {
        af: AF_INET6,
        fwmark: 7,
        sched_name: "sh".into(),
        netmask: 128,
        ..SvcAttrs::default()
    };
    assert_eq!(s, want);
    assert_eq!(
        ours(IPVS_CMD_NEW_SERVICE, |m| want.encode(m, true)),
        v,
        "byte for byte what ipvsadm sends"
    );
}

#[test]
fn new_dest() {
    let v = vector("new_dest");
    assert_eq!(v[0], IPVS_CMD_NEW_DEST);
    let svc = SvcAttrs::decode(nested(&v, IPVS_CMD_ATTR_SERVICE)).unwrap();
    assert_eq!(
        (svc.addr, svc.port, svc.protocol),
        (Some("192.168.10.100".parse().unwrap()), 80, IPPROTO_TCP)
    );
    let d = DestAttrs::decode(nested(&v, IPVS_CMD_ATTR_DEST), AF_INET).unwrap();
    let want = DestAttrs {
        addr: "192.168.10.103".parse().unwrap(),
        port: 80,
        fwd_method: IP_VS_CONN_F_DROUTE,
        weight: 3,
        u_thresh: 100,
        l_thresh: 10,
        ..DestAttrs::default()
    };
    assert_eq!(d, want);
    // ipvsadm repeats the service's settings and adds tunnel attributes; lbd sends the service's
    // key only. Both say the same thing.
    let mine = ours(IPVS_CMD_NEW_DEST, |m| {
        svc.encode(m, false);
        want.encode(m, true);
    });
    assert_eq!(
        DestAttrs::decode(nested(&mine, IPVS_CMD_ATTR_DEST), AF_INET).unwrap(),
        want
    );
    let my_svc = SvcAttrs::decode(nested(&mine, IPVS_CMD_ATTR_SERVICE)).unwrap();
    assert_eq!(
        (my_svc.af, my_svc.protocol, my_svc.addr, my_svc.port),
        (svc.af, svc.protocol, svc.addr, svc.port)
    );
}

/// `ipvsadm -Z -t 192.168.10.100:80`: IPVS_CMD_ZERO with the service. lbd sends the service's
/// identity only (the kernel looks the service up by it: ip_vs_genl_parse_service).
#[test]
fn zero_service() {
    let v = vector("zero_service");
    assert_eq!((v[0], v[1]), (IPVS_CMD_ZERO, IPVS_GENL_VERSION));
    let svc = SvcAttrs::decode(nested(&v, IPVS_CMD_ATTR_SERVICE)).unwrap();
    let key = (
        AF_INET,
        IPPROTO_TCP,
        Some("192.168.10.100".parse().unwrap()),
        80,
        0,
    );
    assert_eq!((svc.af, svc.protocol, svc.addr, svc.port, svc.fwmark), key);
    let mine = ours(IPVS_CMD_ZERO, |m| encode_zero(m, Some(&svc)));
    assert_eq!(mine[0], IPVS_CMD_ZERO);
    let my_svc = SvcAttrs::decode(nested(&mine, IPVS_CMD_ATTR_SERVICE)).unwrap();
    assert_eq!(
        (
            my_svc.af,
            my_svc.protocol,
            my_svc.addr,
            my_svc.port,
            my_svc.fwmark
        ),
        key
    );
}

/// `ipvsadm -Z`: IPVS_CMD_ZERO without attributes (the kernel zeroes every service).
#[test]
fn zero_all() {
    assert_eq!(
        ours(IPVS_CMD_ZERO, |m| encode_zero(m, None)),
        vector("zero_all"),
        "byte for byte what ipvsadm sends"
    );
}

/// `ipvsadm --set 1000 100 200`: IPVS_CMD_SET_CONFIG with IPVS_CMD_ATTR_TIMEOUT_TCP, _TCP_FIN
/// and _UDP.
#[test]
fn set_config() {
    let v = vector("set_config");
    assert_eq!(
        ours(IPVS_CMD_SET_CONFIG, |m| encode_set_timeouts(
            m, 1000, 100, 200
        )),
        v,
        "byte for byte what ipvsadm sends"
    );
    // And the timeouts read back from it as GET_CONFIG's answer carries them.
    assert_eq!(timeouts(&[v[4..].to_vec()]), (1000, 100, 200));
}
