//! A generic-netlink socket speaking to the kernel's IPVS family: requests with acks, and dumps.

use std::io;

use super::uapi::*;
use super::wire::{attrs, get_u16, get_u32, DestAttrs, MsgBuilder, SvcAttrs};
use crate::netlink::NetlinkSocket;

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// No IPVS in this kernel (family "IPVS" unknown) or no permission to talk to it.
    #[error("IPVS is unavailable: {0}")]
    Unavailable(String),
    /// The kernel refused a request (errno from the netlink ack).
    #[error("{op}: {source}")]
    Refused { op: &'static str, source: io::Error },
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("malformed netlink reply: {0}")]
    Malformed(&'static str),
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
        let sock = NetlinkSocket::open(libc::NETLINK_GENERIC, 0)?;
        // Acks carry only the request's header (NETLINK_CAP_ACK), and the buffers are large
        // enough for a batch of them: a lost ack would leave a batch undecided.
        sock.set_opt(libc::SOL_NETLINK, NETLINK_CAP_ACK, 1);
        for (force, plain) in [
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        ] {
            if !sock.set_opt(libc::SOL_SOCKET, force, 4 << 20) {
                sock.set_opt(libc::SOL_SOCKET, plain, 4 << 20);
            }
        }
        let mut s = IpvsSocket {
            sock,
            family: GENL_ID_CTRL,
            seq: 0,
            buf: vec![0u8; 1 << 16],
        };
        let seq = s.next_seq();
        let mut m = MsgBuilder::new(
            GENL_ID_CTRL,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            CTRL_CMD_GETFAMILY,
            1,
        );
        m.str(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME);
        let replies = s
            .exchange(&m.finish(), seq, "resolve the IPVS family")
            .map_err(|e| match e {
                IpvsError::Refused { source, .. } => IpvsError::Unavailable(format!(
                "the kernel has no generic-netlink family \"IPVS\" ({source}): no ip_vs module?"
            )),
                other => other,
            })?;
        let id = replies
            .iter()
            .flat_map(|p| attrs(p))
            .find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID)
            .and_then(|(_, v)| get_u16(v))
            .ok_or(IpvsError::Malformed("no family id"))?;
        s.family = id;
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
        let mut out = Vec::new();
        loop {
            let n = self.sock.recv(&mut self.buf, 0)?;
            let data = &self.buf[..n];
            let mut off = 0;
            while off + 16 <= data.len() {
                let len = u32::from_ne_bytes(
                    data[off..off + 4]
                        .try_into()
                        .map_err(|_| IpvsError::Malformed("header"))?,
                ) as usize;
                if len < 16 || off + len > data.len() {
                    return Err(IpvsError::Malformed("message length"));
                }
                let ty = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
                let flags = u16::from_ne_bytes([data[off + 6], data[off + 7]]);
                let mseq = u32::from_ne_bytes(
                    data[off + 8..off + 12]
                        .try_into()
                        .map_err(|_| IpvsError::Malformed("seq"))?,
                );
                let body = &data[off + 16..off + len];
                off += (len + 3) & !3;
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(
                            body.get(..4)
                                .ok_or(IpvsError::Malformed("error"))?
                                .try_into()
                                .map_err(|_| IpvsError::Malformed("error"))?,
                        );
                        if code != 0 {
                            return Err(IpvsError::Refused {
                                op,
                                source: io::Error::from_raw_os_error(-code),
                            });
                        }
                        return Ok(out);
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => {
                        // Skip the 4-byte genl header.
                        out.push(body.get(4..).unwrap_or_default().to_vec());
                        if flags & NLM_F_MULTI == 0 && (msg_flags(msg) & NLM_F_ACK) == 0 {
                            return Ok(out);
                        }
                    }
                }
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

    pub fn new_service(&mut self, s: &SvcAttrs) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_NEW_SERVICE, "IPVS_CMD_NEW_SERVICE", |m| {
            s.encode(m, true)
        })
    }

    pub fn set_service(&mut self, s: &SvcAttrs) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_SET_SERVICE, "IPVS_CMD_SET_SERVICE", |m| {
            s.encode(m, true)
        })
    }

    pub fn del_service(&mut self, s: &SvcAttrs) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_DEL_SERVICE, "IPVS_CMD_DEL_SERVICE", |m| {
            s.encode(m, false)
        })
    }

    pub fn new_dest(&mut self, s: &SvcAttrs, d: &DestAttrs) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_NEW_DEST, "IPVS_CMD_NEW_DEST", |m| {
            s.encode(m, false);
            d.encode(m, true);
        })
    }

    pub fn set_dest(&mut self, s: &SvcAttrs, d: &DestAttrs) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_SET_DEST, "IPVS_CMD_SET_DEST", |m| {
            s.encode(m, false);
            d.encode(m, true);
        })
    }

    pub fn del_dest(&mut self, s: &SvcAttrs, d: &DestAttrs) -> Result<(), IpvsError> {
        self.request(IPVS_CMD_DEL_DEST, "IPVS_CMD_DEL_DEST", |m| {
            s.encode(m, false);
            d.encode(m, false);
        })
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
        let (mut tcp, mut fin, mut udp) = (0, 0, 0);
        for p in &replies {
            for (ty, v) in attrs(p) {
                match ty {
                    IPVS_CMD_ATTR_TIMEOUT_TCP => tcp = get_u32(v).unwrap_or(0),
                    IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => fin = get_u32(v).unwrap_or(0),
                    IPVS_CMD_ATTR_TIMEOUT_UDP => udp = get_u32(v).unwrap_or(0),
                    _ => {}
                }
            }
        }
        Ok((tcp, fin, udp))
    }

    /// Every service in the kernel's table.
    pub fn services(&mut self) -> Result<Vec<SvcAttrs>, IpvsError> {
        let replies = self.dump(IPVS_CMD_GET_SERVICE, "IPVS_CMD_GET_SERVICE", |_| {})?;
        let mut out = Vec::new();
        for p in &replies {
            for (ty, v) in attrs(p) {
                if ty == IPVS_CMD_ATTR_SERVICE {
                    out.push(SvcAttrs::decode(v).ok_or(IpvsError::Malformed("service"))?);
                }
            }
        }
        Ok(out)
    }

    /// The destinations of one service.
    pub fn dests(&mut self, s: &SvcAttrs) -> Result<Vec<DestAttrs>, IpvsError> {
        let replies = self.dump(IPVS_CMD_GET_DEST, "IPVS_CMD_GET_DEST", |m| {
            s.encode(m, false)
        })?;
        let mut out = Vec::new();
        for p in &replies {
            for (ty, v) in attrs(p) {
                if ty == IPVS_CMD_ATTR_DEST {
                    out.push(
                        DestAttrs::decode(v, s.af).ok_or(IpvsError::Malformed("destination"))?,
                    );
                }
            }
        }
        Ok(out)
    }
}

/// NETLINK_CAP_ACK from linux/netlink.h.
const NETLINK_CAP_ACK: libc::c_int = 10;

/// Fills in a request's attributes.
pub type Build<'a> = Box<dyn FnOnce(&mut MsgBuilder) + 'a>;

/// One request of a batch: the command and how to fill in its attributes.
pub struct Request<'a> {
    pub cmd: u8,
    pub build: Build<'a>,
}

/// Messages per sendmsg: the kernel handles each message of a datagram in turn; acks for a
/// batch this size fit the receive buffer many times over.
const BATCH: usize = 1024;

impl IpvsSocket {
    /// Sends `reqs` many per sendmsg, with one ack per sendmsg (errors come anyway). Returns
    /// each request's outcome (None: done; Some(err): refused) and the number of sendmsg calls.
    pub fn batch(
        &mut self,
        reqs: Vec<Request<'_>>,
    ) -> Result<(Vec<Option<io::Error>>, usize), IpvsError> {
        let mut results: Vec<Option<io::Error>> = Vec::with_capacity(reqs.len());
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
                let mut m = MsgBuilder::new(self.family, flags, seq, r.cmd, IPVS_GENL_VERSION);
                (r.build)(&mut m);
                datagram.extend_from_slice(&m.finish());
            }
            self.send(&datagram)?;
            sends += 1;
            // None: no answer yet. A request that is never answered succeeded, once the last
            // request's ack has arrived.
            let mut outcome: Vec<Option<Option<io::Error>>> = (0..n).map(|_| None).collect();
            while outcome[n - 1].is_none() {
                let got = self.sock.recv(&mut self.buf, 0)?;
                let data = &self.buf[..got];
                let mut off = 0;
                while off + 20 <= data.len() {
                    let len = u32::from_ne_bytes([
                        data[off],
                        data[off + 1],
                        data[off + 2],
                        data[off + 3],
                    ]) as usize;
                    if len < 16 || off + len > data.len() {
                        return Err(IpvsError::Malformed("message length"));
                    }
                    let ty = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
                    let seq = u32::from_ne_bytes([
                        data[off + 8],
                        data[off + 9],
                        data[off + 10],
                        data[off + 11],
                    ]);
                    let code = i32::from_ne_bytes([
                        data[off + 16],
                        data[off + 17],
                        data[off + 18],
                        data[off + 19],
                    ]);
                    off += (len + 3) & !3;
                    let idx = seq.wrapping_sub(first_seq) as usize;
                    if ty != NLMSG_ERROR || idx >= n || outcome[idx].is_some() {
                        continue;
                    }
                    outcome[idx] = Some((code != 0).then(|| io::Error::from_raw_os_error(-code)));
                }
            }
            results.extend(outcome.into_iter().map(|o| o.flatten()));
        }
        Ok((results, sends))
    }
}

fn msg_flags(msg: &[u8]) -> u16 {
    u16::from_ne_bytes([msg[6], msg[7]])
}
