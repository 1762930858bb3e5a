//! A generic-netlink socket speaking to the kernel's IPVS family: requests with acks, and dumps.
//!
//! What the kernel answers is walked with [`crate::kernel::nlsocket::messages`] (headers read by
//! neli) and its acks and errors read by [`crate::kernel::nlsocket::parse_ack`] (neli's types,
//! with the extended ack's text); the family is resolved with neli's controller types. The IPVS
//! attributes themselves are framed and read by [`super::wire`] (why not neli there: see its
//! header). The socket is socket2's: a batch of many requests goes out in one `sendmsg` and its
//! acks are read in bulk.

use std::io::{self, Cursor};

use neli::consts::genl::CtrlAttr;
use neli::types::{Buffer, GenlBuffer};
use neli::FromBytesWithInput;

use super::uapi::*;
use super::wire::{attrs, get_u16, get_u32, DaemonAttrs, DestAttrs, MsgBuilder, SvcAttrs};
use crate::kernel::nlsocket::{messages, parse_ack, Malformed, NetlinkSocket, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// No IPVS in this kernel (family "IPVS" unknown) or no permission to talk to it.
    #[error("IPVS is unavailable: {0}")]
    Unavailable(String),
    /// The kernel refused a request (errno from the netlink ack, and its extended ack's text).
    #[error("{op}: {source}")]
    Refused { op: &'static str, source: Refusal },
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("malformed netlink reply: {0}")]
    Malformed(&'static str),
}

impl From<Malformed> for IpvsError {
    fn from(e: Malformed) -> Self {
        IpvsError::Malformed(e.0)
    }
}

pub struct IpvsSocket {
    sock: NetlinkSocket,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl IpvsSocket {
    /// Opens a socket and resolves the IPVS family (which makes the kernel load ip_vs).
    pub fn open() -> Result<IpvsSocket, IpvsError> {
        let sock = NetlinkSocket::open(libc::NETLINK_GENERIC)?;
        // Acks carry only the request's header (NETLINK_CAP_ACK), and the buffers are large
        // enough for a batch of them: a lost ack would leave a batch undecided. Errors carry
        // the kernel's text where it has one (NETLINK_EXT_ACK).
        let _ = sock.cap_ack();
        let _ = sock.ext_ack();
        sock.set_buffers(4 << 20);
        let mut s = IpvsSocket {
            sock,
            family: GENL_ID_CTRL,
            seq: 0,
            buf: vec![0u8; 1 << 16],
        };
        let seq = s.next_seq();
        let request = getfamily_request(seq, IPVS_GENL_NAME)?;
        let replies = s
            .exchange(&request, seq, "resolve the IPVS family")
            .map_err(|e| match e {
                IpvsError::Refused { source, .. } => IpvsError::Unavailable(format!(
                "the kernel has no generic-netlink family \"IPVS\" ({source}): no ip_vs module?"
            )),
                other => other,
            })?;
        s.family = family_id(&replies)?;
        Ok(s)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, msg: &[u8]) -> Result<(), IpvsError> {
        Ok(self.sock.send(msg)?)
    }

    /// Sends `msg` and collects the generic-netlink payloads (attributes) of the replies with
    /// sequence `seq`, until the ack or the end of the dump.
    fn exchange(
        &mut self,
        msg: &[u8],
        seq: u32,
        op: &'static str,
    ) -> Result<Vec<Vec<u8>>, IpvsError> {
        self.send(msg)?;
        let wants_ack = msg_flags(msg) & NLM_F_ACK != 0;
        let mut out = Vec::new();
        loop {
            let n = self.sock.recv(&mut self.buf)?;
            if collect_replies(&self.buf[..n], seq, wants_ack, op, &mut out)? {
                return Ok(out);
            }
        }
    }

    fn request(
        &mut self,
        cmd: u8,
        op: &'static str,
        build: impl FnOnce(&mut MsgBuilder),
    ) -> Result<(), IpvsError> {
        let seq = self.next_seq();
        let mut m = MsgBuilder::new(
            self.family,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            cmd,
            IPVS_GENL_VERSION,
        );
        build(&mut m);
        self.exchange(&m.finish(), seq, op).map(|_| ())
    }

    fn dump(
        &mut self,
        cmd: u8,
        op: &'static str,
        build: impl FnOnce(&mut MsgBuilder),
    ) -> Result<Vec<Vec<u8>>, IpvsError> {
        let seq = self.next_seq();
        let mut m = MsgBuilder::new(
            self.family,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            cmd,
            IPVS_GENL_VERSION,
        );
        build(&mut m);
        self.exchange(&m.finish(), seq, op)
    }

    /// One change, acked on its own (`batch` sends many at once).
    pub fn apply(&mut self, c: &Command) -> Result<(), IpvsError> {
        self.request(c.cmd(), c.name(), |m| c.encode(m))
    }

    pub fn new_service(&mut self, s: &SvcAttrs) -> Result<(), IpvsError> {
        self.apply(&Command::NewService(s.clone()))
    }

    pub fn set_service(&mut self, s: &SvcAttrs) -> Result<(), IpvsError> {
        self.apply(&Command::SetService(s.clone()))
    }

    pub fn del_service(&mut self, s: &SvcAttrs) -> Result<(), IpvsError> {
        self.apply(&Command::DelService(s.clone()))
    }

    pub fn new_dest(&mut self, s: &SvcAttrs, d: &DestAttrs) -> Result<(), IpvsError> {
        self.apply(&Command::NewDest(s.clone(), d.clone()))
    }

    pub fn set_dest(&mut self, s: &SvcAttrs, d: &DestAttrs) -> Result<(), IpvsError> {
        self.apply(&Command::SetDest(s.clone(), d.clone()))
    }

    pub fn del_dest(&mut self, s: &SvcAttrs, d: &DestAttrs) -> Result<(), IpvsError> {
        self.apply(&Command::DelDest(s.clone(), d.clone()))
    }

    /// The connection timeouts (`ipvsadm -L --timeout`): TCP established, TCP after FIN, UDP,
    /// in seconds (IPVS_CMD_GET_CONFIG).
    pub fn timeouts(&mut self) -> Result<(u32, u32, u32), IpvsError> {
        let seq = self.next_seq();
        let m = MsgBuilder::new(
            self.family,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            IPVS_CMD_GET_CONFIG,
            IPVS_GENL_VERSION,
        );
        let replies = self.exchange(&m.finish(), seq, "IPVS_CMD_GET_CONFIG")?;
        Ok(timeouts(&replies))
    }

    /// Zeroes the traffic counters (`ipvsadm -Z`): of every service with `None`, of one with
    /// `Some` (IPVS_CMD_ZERO; the kernel answers ESRCH for a service it does not have).
    pub fn zero(&mut self, s: Option<&SvcAttrs>) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_ZERO, "IPVS_CMD_ZERO", |m| encode_zero(m, s))
    }

    /// Sets the connection timeouts (`ipvsadm --set TCP TCPFIN UDP`, IPVS_CMD_SET_CONFIG), in
    /// seconds; the kernel leaves a timeout given as 0 as it is.
    pub fn set_timeouts(&mut self, tcp: u32, tcp_fin: u32, udp: u32) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_SET_CONFIG, "IPVS_CMD_SET_CONFIG", |m| {
            encode_set_timeouts(m, tcp, tcp_fin, udp)
        })
    }

    /// The connection-sync daemons running in this network namespace (`ipvsadm -L --daemon`,
    /// an IPVS_CMD_GET_DAEMON dump): none, a master, a backup, or both.
    pub fn daemons(&mut self) -> Result<Vec<DaemonAttrs>, IpvsError> {
        let replies = self.dump(IPVS_CMD_GET_DAEMON, "IPVS_CMD_GET_DAEMON", |_| {})?;
        daemons(&replies)
    }

    /// Starts a sync daemon (`ipvsadm --start-daemon`, IPVS_CMD_NEW_DAEMON); the kernel answers
    /// EEXIST when one of that state runs already.
    pub fn new_daemon(&mut self, d: &DaemonAttrs) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_NEW_DAEMON, "IPVS_CMD_NEW_DAEMON", |m| {
            d.encode(m, true)
        })
    }

    /// Stops the sync daemon of `state` (`ipvsadm --stop-daemon`, IPVS_CMD_DEL_DAEMON); ESRCH
    /// when none runs.
    pub fn del_daemon(&mut self, state: u32) -> Result<(), IpvsError> {
        let d = DaemonAttrs {
            state,
            ..DaemonAttrs::default()
        };
        self.request(IPVS_CMD_DEL_DAEMON, "IPVS_CMD_DEL_DAEMON", |m| {
            d.encode(m, false)
        })
    }

    /// Every service in the kernel's table.
    pub fn services(&mut self) -> Result<Vec<SvcAttrs>, IpvsError> {
        let replies = self.dump(IPVS_CMD_GET_SERVICE, "IPVS_CMD_GET_SERVICE", |_| {})?;
        services(&replies)
    }

    /// The destinations of one service.
    pub fn dests(&mut self, s: &SvcAttrs) -> Result<Vec<DestAttrs>, IpvsError> {
        let replies = self.dump(IPVS_CMD_GET_DEST, "IPVS_CMD_GET_DEST", |m| {
            s.encode(m, false)
        })?;
        dests(&replies, s.af)
    }
}

/// The attributes of IPVS_CMD_ZERO: none to zero every service (ip_vs_genl_set_cmd calls
/// ip_vs_zero_all), or the service's identity in IPVS_CMD_ATTR_SERVICE to zero that one.
pub fn encode_zero(m: &mut MsgBuilder, s: Option<&SvcAttrs>) {
    if let Some(s) = s {
        s.encode(m, false);
    }
}

/// The attributes of IPVS_CMD_SET_CONFIG, all three as ipvsadm (libipvs `ipvs_set_timeout`)
/// sends them: IPVS_CMD_ATTR_TIMEOUT_TCP, _TCP_FIN and _UDP, seconds as u32.
pub fn encode_set_timeouts(m: &mut MsgBuilder, tcp: u32, tcp_fin: u32, udp: u32) {
    m.u32(IPVS_CMD_ATTR_TIMEOUT_TCP, tcp);
    m.u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, tcp_fin);
    m.u32(IPVS_CMD_ATTR_TIMEOUT_UDP, udp);
}

// The decoding half of the exchanges above, apart from the socket so that it can be tested and
// fuzzed on bytes alone (fuzz/fuzz_targets/ipvs_reply.rs): everything here is the kernel's
// answer, and a malformed answer is an error, never a panic.

/// Walks one received datagram of netlink messages for the request with sequence `seq`,
/// appending each reply's generic-netlink attributes to `out`. `Ok(true)` when the exchange is
/// over: the ack (NLMSG_ERROR 0), the end of a dump (NLMSG_DONE), or a single reply to a
/// request that asked for no ack. Messages of other sequences are skipped.
pub fn collect_replies(
    data: &[u8],
    seq: u32,
    wants_ack: bool,
    op: &'static str,
    out: &mut Vec<Vec<u8>>,
) -> Result<bool, IpvsError> {
    for m in messages(data) {
        let m = m?;
        if m.seq != seq {
            continue;
        }
        match m.ty {
            NLMSG_ERROR => {
                if let Some(source) = parse_ack(m.flags, m.body)?.refusal() {
                    return Err(IpvsError::Refused { op, source });
                }
                return Ok(true);
            }
            NLMSG_DONE => return Ok(true),
            _ => {
                // Skip the 4-byte genl header.
                out.push(m.body.get(4..).unwrap_or_default().to_vec());
                if m.flags & NLM_F_MULTI == 0 && !wants_ack {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// The acks and errors in one received datagram for a batch whose first request had sequence
/// `first_seq`: `outcome[i]` becomes `Some(None)` (done) or `Some(Some(errno))` (refused) for
/// the request with sequence `first_seq + i`; the first answer to a request counts.
pub fn batch_outcomes(
    data: &[u8],
    first_seq: u32,
    outcome: &mut [Option<Option<Refusal>>],
) -> Result<(), IpvsError> {
    let n = outcome.len();
    for m in messages(data) {
        let m = m?;
        let idx = m.seq.wrapping_sub(first_seq) as usize;
        if m.ty != NLMSG_ERROR || idx >= n || outcome[idx].is_some() {
            continue;
        }
        // The error code is part of the message: one too short for it is malformed (reading on
        // would take the next message's bytes for it).
        outcome[idx] = Some(parse_ack(m.flags, m.body)?.refusal());
    }
    Ok(())
}

/// CTRL_CMD_GETFAMILY for the family `name`, built with neli's controller types.
pub fn getfamily_request(seq: u32, name: &str) -> Result<Vec<u8>, IpvsError> {
    use neli::consts::genl::CtrlCmd;
    use neli::consts::nl::{GenlId, NlmF};
    use neli::genl::{AttrTypeBuilder, GenlmsghdrBuilder, NlattrBuilder};
    use neli::nl::{NlPayload, NlmsghdrBuilder};
    use neli::ToBytes;
    let build = |e: &dyn std::fmt::Display| IpvsError::Io(io::Error::other(e.to_string()));
    let mut attrs = GenlBuffer::new();
    attrs.push(
        NlattrBuilder::default()
            .nla_type(
                AttrTypeBuilder::default()
                    .nla_type(CtrlAttr::FamilyName)
                    .build()
                    .map_err(|e| build(&e))?,
            )
            .nla_payload(name)
            .build()
            .map_err(|e| build(&e))?,
    );
    let genl = GenlmsghdrBuilder::default()
        .cmd(CtrlCmd::Getfamily)
        .version(1)
        .attrs(attrs)
        .build()
        .map_err(|e| build(&e))?;
    let msg = NlmsghdrBuilder::default()
        .nl_type(GenlId::Ctrl)
        .nl_flags(NlmF::REQUEST | NlmF::ACK)
        .nl_seq(seq)
        .nl_pid(0)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| build(&e))?;
    let mut out = Cursor::new(Vec::with_capacity(32));
    msg.to_bytes(&mut out).map_err(|e| build(&e))?;
    Ok(out.into_inner())
}

/// The family id in the answer to CTRL_CMD_GETFAMILY, read with neli's controller types
/// (`CtrlAttr::FamilyId`, CTRL_ATTR_FAMILY_ID).
pub fn family_id(replies: &[Vec<u8>]) -> Result<u16, IpvsError> {
    for p in replies {
        let Ok(attrs) =
            GenlBuffer::<CtrlAttr, Buffer>::from_bytes_with_input(&mut Cursor::new(p), p.len())
        else {
            continue;
        };
        if let Some(id) = attrs
            .get_attr_handle()
            .get_attribute(CtrlAttr::FamilyId)
            .and_then(|a| get_u16(a.nla_payload().as_ref()))
        {
            return Ok(id);
        }
    }
    Err(IpvsError::Malformed("no family id"))
}

/// The timeouts in the answer to IPVS_CMD_GET_CONFIG: (TCP, TCP FIN, UDP) seconds.
pub fn timeouts(replies: &[Vec<u8>]) -> (u32, u32, u32) {
    let (mut tcp, mut fin, mut udp) = (0, 0, 0);
    for p in replies {
        for (ty, v) in attrs(p) {
            match ty {
                IPVS_CMD_ATTR_TIMEOUT_TCP => tcp = get_u32(v).unwrap_or(0),
                IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => fin = get_u32(v).unwrap_or(0),
                IPVS_CMD_ATTR_TIMEOUT_UDP => udp = get_u32(v).unwrap_or(0),
                _ => {}
            }
        }
    }
    (tcp, fin, udp)
}

/// The daemons in an IPVS_CMD_GET_DAEMON dump (each reply an IPVS_CMD_NEW_DAEMON message with
/// one IPVS_CMD_ATTR_DAEMON).
pub fn daemons(replies: &[Vec<u8>]) -> Result<Vec<DaemonAttrs>, IpvsError> {
    let mut out = Vec::new();
    for p in replies {
        for (ty, v) in attrs(p) {
            if ty == IPVS_CMD_ATTR_DAEMON {
                out.push(DaemonAttrs::decode(v).ok_or(IpvsError::Malformed("sync daemon"))?);
            }
        }
    }
    Ok(out)
}

/// The services in an IPVS_CMD_GET_SERVICE dump.
pub fn services(replies: &[Vec<u8>]) -> Result<Vec<SvcAttrs>, IpvsError> {
    let mut out = Vec::new();
    for p in replies {
        for (ty, v) in attrs(p) {
            if ty == IPVS_CMD_ATTR_SERVICE {
                out.push(SvcAttrs::decode(v).ok_or(IpvsError::Malformed("service"))?);
            }
        }
    }
    Ok(out)
}

/// The destinations in an IPVS_CMD_GET_DEST dump of a service of family `svc_af`.
pub fn dests(replies: &[Vec<u8>], svc_af: u16) -> Result<Vec<DestAttrs>, IpvsError> {
    let mut out = Vec::new();
    for p in replies {
        for (ty, v) in attrs(p) {
            if ty == IPVS_CMD_ATTR_DEST {
                out.push(DestAttrs::decode(v, svc_af).ok_or(IpvsError::Malformed("destination"))?);
            }
        }
    }
    Ok(out)
}

/// One change to the kernel's IPVS table in wire terms: the one place where a change meets its
/// IPVS command and the attributes it carries (the single requests below and the batches of
/// `kernel::netlink` both go through it). A service with its full spec where it is created or
/// edited, its identity alone where it is deleted or names a destination's service.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    NewService(SvcAttrs),
    SetService(SvcAttrs),
    DelService(SvcAttrs),
    NewDest(SvcAttrs, DestAttrs),
    SetDest(SvcAttrs, DestAttrs),
    DelDest(SvcAttrs, DestAttrs),
}

impl Command {
    pub fn cmd(&self) -> u8 {
        match self {
            Command::NewService(_) => IPVS_CMD_NEW_SERVICE,
            Command::SetService(_) => IPVS_CMD_SET_SERVICE,
            Command::DelService(_) => IPVS_CMD_DEL_SERVICE,
            Command::NewDest(..) => IPVS_CMD_NEW_DEST,
            Command::SetDest(..) => IPVS_CMD_SET_DEST,
            Command::DelDest(..) => IPVS_CMD_DEL_DEST,
        }
    }

    /// The command's UAPI name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Command::NewService(_) => "IPVS_CMD_NEW_SERVICE",
            Command::SetService(_) => "IPVS_CMD_SET_SERVICE",
            Command::DelService(_) => "IPVS_CMD_DEL_SERVICE",
            Command::NewDest(..) => "IPVS_CMD_NEW_DEST",
            Command::SetDest(..) => "IPVS_CMD_SET_DEST",
            Command::DelDest(..) => "IPVS_CMD_DEL_DEST",
        }
    }

    /// Its attributes: `full` specs where the kernel reads them (scheduler, flags, weight...),
    /// the identity alone elsewhere.
    pub fn encode(&self, m: &mut MsgBuilder) {
        match self {
            Command::NewService(s) | Command::SetService(s) => s.encode(m, true),
            Command::DelService(s) => s.encode(m, false),
            Command::NewDest(s, d) | Command::SetDest(s, d) => {
                s.encode(m, false);
                d.encode(m, true);
            }
            Command::DelDest(s, d) => {
                s.encode(m, false);
                d.encode(m, false);
            }
        }
    }
}

/// Messages per sendmsg: the kernel handles each message of a datagram in turn; acks for a
/// batch this size fit the receive buffer many times over.
const BATCH: usize = 1024;

impl IpvsSocket {
    /// Sends `reqs` many per sendmsg (serialized into one buffer), with one ack per sendmsg (errors come anyway). Returns
    /// each request's outcome (None: done; Some(err): refused) and the number of sendmsg calls.
    pub fn batch(
        &mut self,
        reqs: Vec<Command>,
    ) -> Result<(Vec<Option<Refusal>>, usize), IpvsError> {
        let mut results: Vec<Option<Refusal>> = Vec::with_capacity(reqs.len());
        let mut sends = 0;
        let mut it = reqs.into_iter().peekable();
        while it.peek().is_some() {
            let first_seq = self.seq.wrapping_add(1);
            let mut datagram = Vec::new();
            let n = it.len().min(BATCH);
            for (i, r) in it.by_ref().take(n).enumerate() {
                let seq = self.next_seq();
                // Only the batch's last request asks for an ack: the kernel answers a failed
                // request with an error whether or not it was asked to (netlink_rcv_skb), and
                // handles a datagram's messages in order, so the last ack means all are done.
                // Every ack is its own skb and costs one recv syscall: asking for 1,024 of them
                // made recv the bulk of a cold load.
                let flags = if i + 1 == n {
                    NLM_F_REQUEST | NLM_F_ACK
                } else {
                    NLM_F_REQUEST
                };
                let mut m = MsgBuilder::new(self.family, flags, seq, r.cmd(), IPVS_GENL_VERSION);
                r.encode(&mut m);
                datagram.extend_from_slice(&m.finish());
            }
            self.send(&datagram)?;
            sends += 1;
            // None: no answer yet. A request that is never answered succeeded, once the last
            // request's ack has arrived.
            let mut outcome: Vec<Option<Option<Refusal>>> = (0..n).map(|_| None).collect();
            while outcome[n - 1].is_none() {
                let got = self.sock.recv(&mut self.buf)?;
                batch_outcomes(&self.buf[..got], first_seq, &mut outcome)?;
            }
            results.extend(outcome.into_iter().map(|o| o.flatten()));
        }
        Ok((results, sends))
    }
}

fn msg_flags(msg: &[u8]) -> u16 {
    u16::from_ne_bytes([msg[6], msg[7]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One netlink message: header (`struct nlmsghdr`) and body, padded to 4 bytes.
    fn nlmsg(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m.resize((m.len() + 3) & !3, 0);
        m
    }

    /// An ack or error: the code, then the request's header (NETLINK_CAP_ACK).
    fn ack(seq: u32, code: i32) -> Vec<u8> {
        let mut body = code.to_ne_bytes().to_vec();
        body.extend_from_slice(&[0u8; 16]);
        nlmsg(NLMSG_ERROR, 0, seq, &body)
    }

    #[test]
    fn a_dump_collects_its_parts_until_done() {
        let mut d = nlmsg(0x20, NLM_F_MULTI, 7, &[1, 1, 0, 0, 8, 0, 1, 0]);
        d.extend(nlmsg(0x20, NLM_F_MULTI, 6, &[1, 1, 0, 0, 9, 9])); // another request's
        let mut out = Vec::new();
        assert!(!collect_replies(&d, 7, false, "dump", &mut out).unwrap());
        assert_eq!(out, vec![vec![8, 0, 1, 0]]);
        let done = nlmsg(NLMSG_DONE, NLM_F_MULTI, 7, &0i32.to_ne_bytes());
        assert!(collect_replies(&done, 7, false, "dump", &mut out).unwrap());
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn refusals_and_malformed_replies_are_errors() {
        let mut out = Vec::new();
        let e = collect_replies(&ack(3, -libc::EEXIST), 3, true, "op", &mut out).unwrap_err();
        assert!(
            matches!(e, IpvsError::Refused { ref source, .. } if source.raw_os_error() == Some(libc::EEXIST))
        );
        let mut cut = ack(3, 0);
        cut.truncate(20);
        assert!(matches!(
            collect_replies(&cut, 3, true, "op", &mut out),
            Err(IpvsError::Malformed("message length"))
        ));
        // No negative errno (i32::MIN has no negation): a refusal, not an overflow.
        let e = collect_replies(&ack(3, i32::MIN), 3, true, "op", &mut out).unwrap_err();
        assert!(
            matches!(e, IpvsError::Refused { ref source, .. } if source.raw_os_error() == Some(libc::EPROTO))
        );
    }

    #[test]
    fn batch_acks_are_matched_by_sequence() {
        let mut d = ack(11, -libc::ENOENT);
        d.extend(ack(12, 0));
        d.extend(ack(99, -libc::EINVAL)); // not of this batch
        let mut outcome: Vec<Option<Option<Refusal>>> = (0..3).map(|_| None).collect();
        batch_outcomes(&d, 10, &mut outcome).unwrap();
        assert!(outcome[0].is_none());
        let refused = outcome[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(refused.raw_os_error(), Some(libc::ENOENT));
        assert!(outcome[2].as_ref().unwrap().is_none());
    }

    /// IPVS_CMD_ZERO without a service is the genl header alone (the kernel zeroes everything);
    /// with one, the service's identity nested in IPVS_CMD_ATTR_SERVICE. IPVS_CMD_SET_CONFIG has
    /// the three timeouts as u32 attributes 4, 5, 6. (tests/ipvs_vectors.rs compares both with
    /// what ipvsadm sends.)
    #[test]
    fn zero_and_set_config_encode_as_the_uapi_says() {
        let msg = |cmd: u8, build: &dyn Fn(&mut MsgBuilder)| {
            let mut m = MsgBuilder::new(0x1d, NLM_F_REQUEST | NLM_F_ACK, 1, cmd, 1);
            build(&mut m);
            m.finish()[16..].to_vec()
        };
        assert_eq!(msg(IPVS_CMD_ZERO, &|m| encode_zero(m, None)), [16, 1, 0, 0]);
        let svc = SvcAttrs {
            af: AF_INET,
            protocol: IPPROTO_TCP,
            addr: Some("192.168.10.100".parse().unwrap()),
            port: 80,
            fwmark: 0,
            sched_name: String::new(),
            flags: 0,
            timeout: 0,
            netmask: 0,
            stats: None,
        };
        let one = msg(IPVS_CMD_ZERO, &|m| encode_zero(m, Some(&svc)));
        assert_eq!(&one[..4], &[16, 1, 0, 0]);
        let nested: Vec<(u16, &[u8])> = attrs(&one[4..]).collect();
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0].0, IPVS_CMD_ATTR_SERVICE);
        assert_eq!(SvcAttrs::decode(nested[0].1), Some(svc));

        let set = msg(IPVS_CMD_SET_CONFIG, &|m| {
            encode_set_timeouts(m, 1000, 100, 200)
        });
        let mut want = vec![12u8, 1, 0, 0];
        for (ty, v) in [(4u16, 1000u32), (5, 100), (6, 200)] {
            want.extend_from_slice(&8u16.to_ne_bytes());
            want.extend_from_slice(&ty.to_ne_bytes());
            want.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(set, want);
        // What GET_CONFIG answers decodes with the same attribute numbers.
        assert_eq!(timeouts(&[set[4..].to_vec()]), (1000, 100, 200));
    }

    /// fuzz/fuzz_targets/ipvs_reply.rs found this (minimized): an NLMSG_ERROR 17 bytes long, so
    /// its error code ran past its end, into bytes that made it i32::MIN, whose negation
    /// overflowed (a panic with overflow checks on).
    #[test]
    fn a_batch_error_too_short_for_its_code_is_malformed() {
        let datagram = [
            0x11, 0, 0, 0, 0x02, 0, 0, 0x01, 0x08, 0, 0, 0, 0, 0, 0x4c, 0, 0, 0, 0, 0x80,
        ];
        let mut outcome: Vec<Option<Option<Refusal>>> = (0..4).map(|_| None).collect();
        assert!(matches!(
            batch_outcomes(&datagram, 5, &mut outcome),
            Err(IpvsError::Malformed("error"))
        ));
        // A whole error with that code is a refusal.
        let mut outcome: Vec<Option<Option<Refusal>>> = (0..1).map(|_| None).collect();
        batch_outcomes(&ack(5, i32::MIN), 5, &mut outcome).unwrap();
        let e = outcome[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EPROTO));
    }

    /// The family request as neli frames it is what the hand-written MsgBuilder framed before
    /// (CTRL_CMD_GETFAMILY version 1, CTRL_ATTR_FAMILY_NAME "IPVS\0").
    #[test]
    fn the_family_request_is_framed_as_before() {
        let mut m = MsgBuilder::new(
            GENL_ID_CTRL,
            NLM_F_REQUEST | NLM_F_ACK,
            3,
            CTRL_CMD_GETFAMILY,
            1,
        );
        m.str(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME);
        assert_eq!(getfamily_request(3, IPVS_GENL_NAME).unwrap(), m.finish());
        // And the answer's id is found by neli's CtrlAttr::FamilyId.
        let mut reply = Vec::new();
        reply.extend_from_slice(&6u16.to_ne_bytes());
        reply.extend_from_slice(&CTRL_ATTR_FAMILY_ID.to_ne_bytes());
        reply.extend_from_slice(&0x1du16.to_ne_bytes());
        reply.extend_from_slice(&[0, 0]);
        assert_eq!(family_id(&[reply]).unwrap(), 0x1d);
        assert!(family_id(&[vec![1, 2, 3]]).is_err());
    }
}
