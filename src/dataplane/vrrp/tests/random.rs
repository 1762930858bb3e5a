//! Deterministic random and mutation testing of the decoder (a stable-toolchain stand-in for
//! the cargo-fuzz target in fuzz/): no input may panic, and whatever decodes must re-encode to
//! the same packet (and the same bytes, except VRRPv3's reserved bits, which are sent as 0).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dataplane::vrrp::checksum::{internet_checksum, pseudo_header_checksum};
use crate::dataplane::vrrp::packet::{decode, AuthType, PacketKind, Version, VrrpPacket};
use crate::model::{Centiseconds, Vrid};

/// xorshift64* (Vigna): small, deterministic, good enough to spread bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.byte())
    }
}

fn addr(rng: &mut Rng, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(rng.bytes::<16>()))
    } else {
        IpAddr::V4(Ipv4Addr::from(rng.bytes::<4>()))
    }
}

/// Decodes, and when that succeeds checks encode/decode stability.
fn check(bytes: &[u8], src: IpAddr, dst: IpAddr) -> bool {
    let Ok(p) = decode(bytes, src, dst) else {
        return false;
    };
    let again = p.encode(src, dst).expect("a decoded packet encodes");
    let q = decode(&again, src, dst).expect("an encoded packet decodes");
    assert_eq!(q.checksum, u16::from_be_bytes([again[6], again[7]]));
    assert_eq!(
        VrrpPacket {
            checksum: p.checksum,
            ..q
        },
        p,
        "{bytes:02x?}"
    );
    let rsvd = matches!(p.version, Version::V3 { .. }) && bytes[4] & 0xf0 != 0;
    if !rsvd {
        assert_eq!(again, bytes);
    }
    true
}

fn random_packet(rng: &mut Rng, v6: bool) -> VrrpPacket {
    let version = if v6 || rng.below(2) == 0 {
        Version::V3 {
            max_adver_int: Centiseconds(1 + rng.below(0x0fff) as u16),
        }
    } else {
        Version::V2 {
            auth_type: [AuthType::None, AuthType::SimplePassword, AuthType::IpAh]
                [rng.below(3) as usize],
            adver_int: 1 + rng.below(255) as u8,
            auth_data: rng.bytes::<8>(),
        }
    };
    let max = if rng.below(8) == 0 { 256 } else { 4 };
    let n = rng.below(max) as usize;
    let addresses: Vec<IpAddr> = (0..n).map(|_| addr(rng, v6)).collect();
    VrrpPacket {
        version,
        kind: PacketKind::Advertisement,
        vrid: Vrid::new(1 + rng.below(255)).unwrap(),
        priority: rng.byte(),
        count_ip: n as u8,
        checksum: 0,
        addresses,
    }
}

/// Rewrites the checksum so a mutation reaches the checks behind it.
fn fix_checksum(bytes: &mut [u8], src: IpAddr, dst: IpAddr) {
    if bytes.len() < 8 {
        return;
    }
    bytes[6] = 0;
    bytes[7] = 0;
    let c = if bytes[0] >> 4 == 3 {
        pseudo_header_checksum(src, dst, bytes).unwrap_or(0)
    } else {
        internet_checksum(bytes)
    };
    bytes[6..8].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..50_000 {
        let len = rng.below(72) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        let v6 = rng.below(4) == 0;
        let dst_v6 = rng.below(16) == 0;
        let (src, dst) = (addr(&mut rng, v6), addr(&mut rng, dst_v6));
        if rng.below(2) == 0 && !bytes.is_empty() {
            // Make a plausible header more likely.
            bytes[0] = (2 + rng.below(2) as u8) << 4 | 1;
            fix_checksum(&mut bytes, src, dst);
        }
        check(&bytes, src, dst);
    }
}

#[test]
fn valid_packets_roundtrip_and_mutations_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut decoded_mutants = 0;
    for _ in 0..20_000 {
        let v6 = rng.below(4) == 0;
        let (src, dst) = (addr(&mut rng, v6), addr(&mut rng, v6));
        let p = random_packet(&mut rng, v6);
        let bytes = p.encode(src, dst).unwrap();
        let q = decode(&bytes, src, dst).unwrap();
        assert_eq!(
            VrrpPacket {
                checksum: 0,
                ..q.clone()
            },
            p
        );
        assert!(check(&bytes, src, dst));

        let mut m = bytes.clone();
        match rng.below(4) {
            0 => {
                let i = rng.below(m.len() as u64) as usize;
                m[i] ^= 1 << rng.below(8);
            }
            1 => m.truncate(rng.below(m.len() as u64) as usize),
            2 => m.extend((0..1 + rng.below(20)).map(|_| rng.byte())),
            _ => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(m.len() as u64) as usize;
                    m[i] = rng.byte();
                }
            }
        }
        if rng.below(2) == 0 {
            fix_checksum(&mut m, src, dst);
        }
        if check(&m, src, dst) {
            decoded_mutants += 1;
        }
    }
    // The checksum-fixed mutants must reach deep enough for some to decode.
    assert!(decoded_mutants > 1_000, "{decoded_mutants}");
}
