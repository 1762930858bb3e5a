//! Fuzzes the decoding of what the kernel answers on the IPVS generic-netlink socket: the walk
//! of a datagram of netlink messages for one request (replies, dump parts, NLMSG_DONE, acks and
//! errors), the acks of a batch, the family id, the timeouts, services and destinations with
//! their stats, the connection-sync daemons (IPVS_CMD_GET_DAEMON), and the step from a dumped
//! service (or daemon) to lbd's domain types.
//!
//! No input may panic, and what decodes must survive lbd's own encoding: a service or
//! destination encoded by lbd decodes to the same values (less what only dumps carry), and a
//! service key lbd can represent comes back from its wire form unchanged.
//!
//! Input layout: byte 0 flags (bit 0: the request asked for an ack; bit 1: stats are the 64-bit
//! form), bytes 1..5 the request's sequence number, byte 5 the destinations' service family
//! (even: AF_INET, odd: AF_INET6), byte 6 the batch size (1..=256), the rest the datagram.
#![no_main]

use lbd::ipvs::socket::{
    batch_outcomes, collect_replies, daemons, dests, family_id, services, timeouts,
};
use lbd::ipvs::uapi::{AF_INET, AF_INET6};
use lbd::ipvs::wire::{attrs, DaemonAttrs, DestAttrs, MsgBuilder, Stats, SvcAttrs};
use lbd::kernel::netlink::{daemon_attrs, daemon_from_wire, from_wire, svc_attrs};
use libfuzzer_sys::fuzz_target;

/// The kernel's IP_VS_SCHEDNAME_MAXLEN is 16; longer names only need to decode, not to fit one
/// 64 KiB attribute nest again.
const NAME_MAX: usize = 1024;

fn encoded_nest(encode: impl FnOnce(&mut MsgBuilder)) -> Vec<u8> {
    let mut m = MsgBuilder::new(0x20, 0, 0, 0, 0);
    encode(&mut m);
    let bytes = m.finish();
    let (_, p) = attrs(&bytes[20..]).next().expect("one nested attribute");
    p.to_vec()
}

fn service(s: &SvcAttrs) {
    if s.sched_name.len() > NAME_MAX {
        return;
    }
    let p = encoded_nest(|m| s.encode(m, true));
    let again = SvcAttrs::decode(&p).expect("lbd's encoding of a service decodes");
    let mut want = SvcAttrs {
        stats: None,
        ..s.clone()
    };
    if want.fwmark != 0 {
        // A firewall-mark service has no protocol, address or port on the wire.
        want.protocol = 0;
        want.port = 0;
    }
    assert_eq!(again, want);
    if let Some((key, spec)) = from_wire(s) {
        assert_eq!(from_wire(&svc_attrs(&key, Some(&spec))), Some((key, spec)));
    }
}

fn dest(d: &DestAttrs) {
    let p = encoded_nest(|m| d.encode(m, true));
    let again = DestAttrs::decode(&p, 0).expect("lbd's encoding of a destination decodes");
    let want = DestAttrs {
        active_conns: 0,
        inact_conns: 0,
        persist_conns: 0,
        stats: None,
        ..d.clone()
    };
    assert_eq!(again, want);
}

fn daemon(d: &DaemonAttrs) {
    let p = encoded_nest(|m| d.encode(m, true));
    let again = DaemonAttrs::decode(&p).expect("lbd's encoding of a daemon decodes");
    assert_eq!(&again, d);
    if let Some(sd) = daemon_from_wire(d) {
        assert_eq!(daemon_from_wire(&daemon_attrs(&sd)), Some(sd));
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let wants_ack = data[0] & 1 != 0;
    let wide = data[0] & 2 != 0;
    let seq = u32::from_ne_bytes([data[1], data[2], data[3], data[4]]);
    let af = if data[5] & 1 == 0 { AF_INET } else { AF_INET6 };
    let n = usize::from(data[6]) + 1;
    let dgram = &data[7..];

    // The datagram as the answer to one request or dump.
    let mut out = Vec::new();
    let _ = collect_replies(dgram, seq, wants_ack, "fuzz", &mut out);
    let _ = family_id(&out);
    let _ = timeouts(&out);
    if let Ok(ss) = services(&out) {
        ss.iter().for_each(service);
    }
    if let Ok(ds) = dests(&out, af) {
        ds.iter().for_each(dest);
    }
    if let Ok(ds) = daemons(&out) {
        ds.iter().for_each(daemon);
    }

    // The datagram as acks of a batch.
    let mut outcome: Vec<Option<Option<lbd::kernel::nlsocket::Refusal>>> = (0..n).map(|_| None).collect();
    let _ = batch_outcomes(dgram, seq, &mut outcome);

    // The datagram as the payload of one nested attribute (the walk above needs whole netlink
    // headers first; this reaches the attribute decoders at once).
    if let Some(s) = SvcAttrs::decode(dgram) {
        service(&s);
    }
    if let Some(d) = DestAttrs::decode(dgram, af) {
        dest(&d);
    }
    if let Some(d) = DaemonAttrs::decode(dgram) {
        daemon(&d);
    }
    let _ = Stats::decode(dgram, wide);
});
