//! A netlink socket to the kernel (socket2), and the reading of what it answers (neli).
//!
//! Message framing stays with each protocol (`ipvs` for generic netlink, `kernel::rtnl` for
//! rtnetlink), built with neli's types; this is the socket they share and the walk of a received
//! datagram: its messages, and the acks and errors (`struct nlmsgerr`) with the extended ack's
//! text (`NETLINK_EXT_ACK`).
//!
//! The socket stays socket2's rather than neli's `NlSocket`: lbd sends many requests in one
//! `sendmsg` and reads their acks in bulk into its own buffer, and sets options neli has no
//! setter for (`NETLINK_CAP_ACK`, `SO_SNDBUFFORCE`, `SO_RCVBUFFORCE`).

use std::fmt;
use std::io::{self, Cursor, Read};
use std::mem;
use std::os::fd::{AsRawFd, RawFd};

use neli::consts::nl::{NlmF, NlmsgerrAttr};
use neli::err::NlmsghdrAck;
use neli::types::{Buffer, GenlBuffer};
use neli::{FromBytes, FromBytesWithInput};
use socket2::{Domain, Protocol, Socket, Type};

/// `NETLINK_CAP_ACK` from `linux/netlink.h` (the `libc` crate has it for Android only).
const NETLINK_CAP_ACK: libc::c_int = 10;
/// `NETLINK_EXT_ACK` from `linux/netlink.h`.
const NETLINK_EXT_ACK: libc::c_int = 11;

/// `struct nlmsghdr` is 16 bytes.
pub const NLMSG_HDRLEN: usize = 16;

/// The error an NLMSG_ERROR message carries (`struct nlmsgerr`, `linux/netlink.h`): 0 is an
/// ack (`None`), a negative errno the kernel's refusal. Any other value comes from a corrupt or
/// hostile message, not from the kernel, and is EPROTO (i32::MIN has no negation: negating it
/// would overflow).
pub fn ack_error(code: i32) -> Option<io::Error> {
    match code {
        0 => None,
        c if c < 0 && c != i32::MIN => Some(io::Error::from_raw_os_error(-c)),
        _ => Some(io::Error::from_raw_os_error(libc::EPROTO)),
    }
}

/// A request the kernel refused: its errno, and the extended ack's message when the kernel
/// gave one (`NLMSGERR_ATTR_MSG`, e.g. which attribute a policy rejected).
#[derive(Debug)]
pub struct Refusal {
    pub errno: io::Error,
    pub ext_ack: Option<String>,
}

impl Refusal {
    pub fn raw_os_error(&self) -> Option<i32> {
        self.errno.raw_os_error()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ext_ack {
            Some(m) => write!(f, "{} ({m})", self.errno),
            None => write!(f, "{}", self.errno),
        }
    }
}

/// A socket error where a refusal was expected (the request never got its answer).
impl From<io::Error> for Refusal {
    fn from(errno: io::Error) -> Self {
        Refusal {
            errno,
            ext_ack: None,
        }
    }
}

impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.errno)
    }
}

/// A received datagram that is not netlink as the kernel writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed netlink message: {0}")]
pub struct Malformed(pub &'static str);

/// One message of a received datagram: its header (read by neli) and its body.
#[derive(Debug)]
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub body: &'a [u8],
}

/// The messages of a received datagram, in order. A header whose length is below 16 or past
/// the datagram's end is an error, and the walk stops there; fewer than 16 bytes left over
/// end it.
///
/// Hand-checked before neli reads: `Nlmsghdr::from_bytes` computes `nlmsg_len - 16` unchecked
/// (an overflow on a hostile length), and it reads an NLMSG_ERROR's echoed request by that
/// request's own length, which `NETLINK_CAP_ACK` cuts (see [`parse_ack`]). So the walk reads
/// each header with neli's bare `nlmsghdr` ([`NlmsghdrAck`]) and hands the body on.
pub fn messages(data: &[u8]) -> impl Iterator<Item = Result<Message<'_>, Malformed>> {
    let mut off = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || off + NLMSG_HDRLEN > data.len() {
            return None;
        }
        let mut c = Cursor::new(&data[off..]);
        let h = match NlmsghdrAck::<u16>::from_bytes(&mut c) {
            Ok(h) => h,
            Err(_) => {
                failed = true;
                return Some(Err(Malformed("header")));
            }
        };
        let len = *h.nl_len() as usize;
        if len < NLMSG_HDRLEN || len > data.len() - off {
            failed = true;
            return Some(Err(Malformed("message length")));
        }
        let body = &data[off + NLMSG_HDRLEN..off + len];
        off = off.saturating_add((len + 3) & !3);
        Some(Ok(Message {
            ty: *h.nl_type(),
            flags: u16::from(*h.nl_flags()),
            seq: *h.nl_seq(),
            body,
        }))
    })
}

/// The body of an NLMSG_ERROR: the code (0 for an ack) and the extended ack's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub code: i32,
    pub ext_ack: Option<String>,
}

impl Ack {
    /// `None` for an ack, the refusal otherwise.
    pub fn refusal(self) -> Option<Refusal> {
        ack_error(self.code).map(|errno| Refusal {
            errno,
            ext_ack: self.ext_ack,
        })
    }
}

/// Reads an NLMSG_ERROR's body (`struct nlmsgerr`: the code, the request's header or the whole
/// request, then the extended ack's attributes) with neli's types. A body too short for the
/// code is malformed; everything after the code is optional (an ack without its header or a
/// broken TLV still carries its code).
///
/// Hand-placed: where the TLVs start. neli's `Nlmsgerr` reads the echoed request by the
/// length in its header, but with `NETLINK_CAP_ACK` the kernel sends only that header
/// (`NLM_F_CAPPED`), and neli then takes the TLVs for the request or fails (the test
/// `neli_misreads_a_capped_error` shows it). So: code (neli), header (neli), skip the request
/// unless capped, TLVs (neli).
pub fn parse_ack(flags: u16, body: &[u8]) -> Result<Ack, Malformed> {
    let mut c = Cursor::new(body);
    let code = i32::from_bytes(&mut c).map_err(|_| Malformed("error"))?;
    let ext_ack = ext_ack_message(NlmF::from(flags), body);
    Ok(Ack { code, ext_ack })
}

fn ext_ack_message(flags: NlmF, body: &[u8]) -> Option<String> {
    if !flags.contains(NlmF::ACK_TLVS) {
        return None;
    }
    let mut c = Cursor::new(body);
    c.set_position(4);
    let request = NlmsghdrAck::<u16>::from_bytes(&mut c).ok()?;
    let start = if flags.contains(NlmF::CAPPED) {
        4 + NLMSG_HDRLEN
    } else {
        4usize.checked_add((*request.nl_len() as usize).checked_add(3)? & !3)?
    };
    let tlvs = body.get(start..)?;
    let attrs = GenlBuffer::<NlmsgerrAttr, Buffer>::from_bytes_with_input(
        &mut Cursor::new(tlvs),
        tlvs.len(),
    )
    .ok()?;
    let msg = attrs
        .iter()
        .find(|a| *a.nla_type().nla_type() == NlmsgerrAttr::Msg)?;
    let text = String::from_utf8_lossy(msg.nla_payload().as_ref());
    Some(text.trim_end_matches('\0').to_string())
}

/// Sets an integer socket option socket2 has no setter for (`NETLINK_CAP_ACK`,
/// `NETLINK_EXT_ACK`, `SO_SNDBUFFORCE`, `SO_RCVBUFFORCE`; the VRRP socket's `IPV6_RECVPKTINFO`
/// and `IPV6_CHECKSUM`).
pub(crate) fn set_int_opt(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the socket is open for the call (we borrow it); the option value points to a
    // local int whose size is the length passed.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub struct NetlinkSocket {
    sock: Socket,
}

impl NetlinkSocket {
    /// A socket of netlink `protocol` (`NETLINK_GENERIC`, `NETLINK_ROUTE`) for requests. (The
    /// one socket lbd binds to multicast groups, `kernel::rtnl::LinkMonitor`, is neli's.)
    pub fn open(protocol: libc::c_int) -> io::Result<NetlinkSocket> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(protocol)),
        )?;
        Ok(NetlinkSocket { sock })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Makes `recv` return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self) -> io::Result<()> {
        self.sock.set_nonblocking(true)
    }

    /// Acks carry only the request's header (`NETLINK_CAP_ACK`), not the whole request back.
    pub fn cap_ack(&self) -> io::Result<()> {
        set_int_opt(&self.sock, libc::SOL_NETLINK, NETLINK_CAP_ACK, 1)
    }

    /// Errors carry the kernel's explanation (`NETLINK_EXT_ACK`), read by [`parse_ack`].
    pub fn ext_ack(&self) -> io::Result<()> {
        set_int_opt(&self.sock, libc::SOL_NETLINK, NETLINK_EXT_ACK, 1)
    }

    /// Send and receive buffers of `bytes` each: past the `wmem_max`/`rmem_max` sysctls with
    /// `SO_SNDBUFFORCE`/`SO_RCVBUFFORCE` (CAP_NET_ADMIN), else as large as those sysctls allow
    /// (socket2's setters: the kernel caps them). True when both were forced.
    pub fn set_buffers(&self, bytes: usize) -> bool {
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let mut forced = true;
        if set_int_opt(&self.sock, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v).is_err() {
            forced = false;
            let _ = self.sock.set_send_buffer_size(bytes);
        }
        if set_int_opt(&self.sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
            forced = false;
            let _ = self.sock.set_recv_buffer_size(bytes);
        }
        forced
    }

    /// Sends `msg` (one or more netlink messages) to the kernel. No address: an unconnected
    /// netlink socket sends to `nl_pid` 0, the kernel.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        self.sock.send(msg)?;
        Ok(())
    }

    /// Receives one datagram into `buf` (retrying on EINTR).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.sock).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTM_GETLINK with an ack for interface index `i32::MAX` (there is none: ENODEV), 32 bytes.
    fn getlink_absent(seq: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&32u32.to_ne_bytes());
        m.extend_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
        m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // struct ifinfomsg: family, pad, type, index, flags, change.
        m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        m.extend_from_slice(&i32::MAX.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        m
    }

    /// The length and error code of the reply to `getlink_absent`.
    fn refusal(s: &NetlinkSocket) -> (usize, i32) {
        s.send(&getlink_absent(7)).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).unwrap();
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        assert_eq!((n, ty), (len, libc::NLMSG_ERROR as u16));
        (len, i32::from_ne_bytes(buf[16..20].try_into().unwrap()))
    }

    /// NETLINK_CAP_ACK is set by hand (socket2 has no setter for it): it must change what the
    /// kernel sends back, an error that carries the request's header only (16 + 4 + 16 bytes)
    /// instead of the whole request (16 + 4 + 32).
    #[test]
    fn cap_ack_drops_the_echoed_request() {
        let plain = NetlinkSocket::open(libc::NETLINK_ROUTE).unwrap();
        assert_eq!(refusal(&plain), (52, -libc::ENODEV));
        let capped = NetlinkSocket::open(libc::NETLINK_ROUTE).unwrap();
        capped.cap_ack().unwrap();
        assert_eq!(refusal(&capped), (36, -libc::ENODEV));
    }

    /// SO_RCVBUFFORCE is set by hand: socket2's `set_recv_buffer_size` is SO_RCVBUF, which the
    /// kernel caps at `net.core.rmem_max`. Forced (as root), the buffer is what was asked for
    /// (the kernel doubles it for its bookkeeping) whatever that sysctl says.
    #[test]
    fn forced_buffers_pass_the_sysctl_cap() {
        let s = NetlinkSocket::open(libc::NETLINK_ROUTE).unwrap();
        let want = 4 << 20;
        let forced = s.set_buffers(want);
        let got = s.sock.recv_buffer_size().unwrap();
        if forced {
            assert!(got >= want, "{got}");
        } else {
            let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!(got <= 2 * max.max(want), "{got}");
        }
    }

    #[test]
    fn ack_codes_become_errors() {
        assert!(ack_error(0).is_none());
        let e = ack_error(-libc::EEXIST).expect("a refusal");
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        // No negative errno: found by fuzz/fuzz_targets/ipvs_reply.rs (i32::MIN overflowed).
        for bad in [i32::MIN, 1, i32::MAX] {
            assert_eq!(
                ack_error(bad).and_then(|e| e.raw_os_error()),
                Some(libc::EPROTO)
            );
        }
    }

    /// An NLMSG_ERROR as the kernel sends it on a NETLINK_CAP_ACK + NETLINK_EXT_ACK socket: the
    /// code, the request's header only (its length still the whole request's), then
    /// NLMSGERR_ATTR_MSG.
    fn capped_error(seq: u32, code: i32, request_len: u32, msg: &str) -> Vec<u8> {
        let mut tlv = Vec::new();
        let text = format!("{msg}\0");
        tlv.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        tlv.extend_from_slice(&1u16.to_ne_bytes()); // NLMSGERR_ATTR_MSG
        tlv.extend_from_slice(text.as_bytes());
        tlv.resize((tlv.len() + 3) & !3, 0);
        let mut body = code.to_ne_bytes().to_vec();
        body.extend_from_slice(&request_len.to_ne_bytes());
        body.extend_from_slice(&0x1du16.to_ne_bytes());
        body.extend_from_slice(&5u16.to_ne_bytes());
        body.extend_from_slice(&seq.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        body.extend_from_slice(&tlv);
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        m.extend_from_slice(&((libc::NLM_F_CAPPED | libc::NLM_F_ACK_TLVS) as u16).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn a_capped_error_gives_its_code_and_message() {
        let m = capped_error(4, -libc::EINVAL, 60, "Attribute failed policy validation");
        let msgs: Vec<_> = messages(&m).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].ty, msgs[0].seq), (libc::NLMSG_ERROR as u16, 4));
        let ack = parse_ack(msgs[0].flags, msgs[0].body).unwrap();
        assert_eq!(ack.code, -libc::EINVAL);
        let r = ack.refusal().unwrap();
        assert_eq!(r.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(
            r.ext_ack.as_deref(),
            Some("Attribute failed policy validation")
        );
        assert!(
            r.to_string()
                .ends_with("(Attribute failed policy validation)"),
            "{r}"
        );
    }

    /// Why `parse_ack` places the TLVs by hand: neli reads the echoed request by the length in
    /// its header (60 here), but a capped error carries the header alone, so neli takes the
    /// extended ack for the request's payload (or runs out of bytes) and never reports it.
    #[test]
    fn neli_misreads_a_capped_error() {
        use neli::nl::{NlPayload, Nlmsghdr};
        let m = capped_error(4, -libc::EINVAL, 60, "Attribute failed policy validation");
        let neli_view = Nlmsghdr::<u16, Buffer>::from_bytes(&mut Cursor::new(&m[..]));
        let msg_found = match neli_view {
            Ok(h) => match h.nl_payload() {
                NlPayload::Err(e) => e
                    .ext_ack()
                    .iter()
                    .any(|a| *a.nla_type().nla_type() == NlmsgerrAttr::Msg),
                _ => false,
            },
            Err(_) => false,
        };
        assert!(
            !msg_found,
            "neli reads capped errors now: parse_ack can use Nlmsgerr"
        );
    }

    #[test]
    fn hostile_headers_end_the_walk() {
        // A length below the header's own, past the end, and a trailing fragment.
        let mut short = capped_error(1, 0, 16, "x");
        short[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(
            messages(&short).next().unwrap().unwrap_err(),
            Malformed("message length")
        );
        let mut long = capped_error(1, 0, 16, "x");
        long[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(messages(&long).next().unwrap().is_err());
        assert_eq!(messages(&[0u8; 15]).count(), 0);
        // An error body too short for its code.
        assert_eq!(parse_ack(0, &[1, 2]), Err(Malformed("error")));
        // A TLV length past the end leaves the code and drops the text.
        let mut bad = capped_error(1, -libc::ENOENT, 16, "gone");
        bad[36..38].copy_from_slice(&200u16.to_ne_bytes());
        let msgs: Vec<_> = messages(&bad).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            parse_ack(msgs[0].flags, msgs[0].body),
            Ok(Ack {
                code: -libc::ENOENT,
                ext_ack: None
            })
        );
    }

    /// The kernel explains a generic-netlink request its policy rejects: CTRL_CMD_GETFAMILY
    /// with a family name that is not NUL-terminated (CTRL_ATTR_FAMILY_NAME is NLA_NUL_STRING).
    #[test]
    fn ext_ack_text_comes_from_the_kernel() {
        let s = NetlinkSocket::open(libc::NETLINK_GENERIC).unwrap();
        s.cap_ack().unwrap();
        s.ext_ack().unwrap();
        let mut req = Vec::new();
        req.extend_from_slice(&28u32.to_ne_bytes());
        req.extend_from_slice(&(libc::GENL_ID_CTRL as u16).to_ne_bytes());
        req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
        req.extend_from_slice(&9u32.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&[libc::CTRL_CMD_GETFAMILY as u8, 1, 0, 0]);
        req.extend_from_slice(&8u16.to_ne_bytes());
        req.extend_from_slice(&(libc::CTRL_ATTR_FAMILY_NAME as u16).to_ne_bytes());
        req.extend_from_slice(b"IPVS");
        s.send(&req).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).unwrap();
        let m = messages(&buf[..n]).next().unwrap().unwrap();
        assert_eq!((m.ty, m.seq), (libc::NLMSG_ERROR as u16, 9));
        let r = parse_ack(m.flags, m.body).unwrap().refusal().unwrap();
        assert_eq!(r.raw_os_error(), Some(libc::EINVAL));
        assert!(r.ext_ack.is_some(), "{r}");
    }
}
