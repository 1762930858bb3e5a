//! The Internet checksum (RFC 1071) as VRRP uses it.
//!
//! - VRRPv2 (RFC 3768 section 5.3.8): over the VRRP message only.
//! - VRRPv3 (RFC 5798 section 5.2.8): over a pseudo-header followed by the VRRP message; the
//!   IPv4 pseudo-header is RFC 768's (source, destination, zero, protocol, length), the IPv6 one
//!   RFC 8200 section 8.1's (source, destination, 32-bit length, 3 zero bytes, next header).

use std::net::IpAddr;

use super::packet::IP_PROTOCOL_VRRP;

/// Adds `data` as big-endian 16-bit words to the running one's-complement sum `acc` (an odd
/// trailing byte is padded with a zero byte, RFC 1071 section 4.1).
fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // `acc` fits in 16 bits after folding.
    !(acc as u16)
}

/// RFC 1071 checksum of `data` alone (VRRPv2, RFC 3768 section 5.3.8).
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(sum_words(0, data))
}

/// RFC 1071 checksum of the pseudo-header for `src`/`dst` plus `data` (VRRPv3, RFC 5798
/// section 5.2.8). Returns `None` when `src` and `dst` are of different families.
pub fn pseudo_header_checksum(src: IpAddr, dst: IpAddr, data: &[u8]) -> Option<u16> {
    let len = data.len();
    let acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ph = [0u8; 12];
            ph[0..4].copy_from_slice(&s.octets());
            ph[4..8].copy_from_slice(&d.octets());
            ph[9] = IP_PROTOCOL_VRRP;
            // A VRRP message is at most 8 + 255 * 16 + 8 bytes, far below 64 KiB.
            ph[10..12].copy_from_slice(&(len as u16).to_be_bytes());
            sum_words(0, &ph)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ph = [0u8; 40];
            ph[0..16].copy_from_slice(&s.octets());
            ph[16..32].copy_from_slice(&d.octets());
            ph[32..36].copy_from_slice(&(len as u32).to_be_bytes());
            ph[39] = IP_PROTOCOL_VRRP;
            sum_words(0, &ph)
        }
        _ => return None,
    };
    Some(fold(sum_words(acc, data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 worked example: the words 0001 f203 f4f5 f6f7 sum to 0xddf2,
        // whose complement is 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(&[0xab]), !0xab00);
        assert_eq!(internet_checksum(&[]), 0xffff);
    }

    #[test]
    fn mixed_families_have_no_pseudo_header() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(pseudo_header_checksum(v4, v6, &[1, 2]), None);
    }
}
