//! The shared secret's MAC on every peer message (`proto/lbd/peer/v1/peer.proto`, `Sealed`).
//!
//! ```text
//!   mac = HMAC-SHA256(secret, context || u32be(len(nonce)) || nonce || payload)
//! ```
//!
//! `context` says what the payload is (a follower's `Hello`, or a message of the stream), so a
//! sealed message of one kind never passes for the other. The stream's messages carry the
//! follower's fresh nonce, so a recorded stream does not authenticate in another one; the `seq`
//! inside the payload orders the messages of one stream.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::pb::Sealed;

/// What a sealed payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Hello,
    Stream,
}

impl Context {
    fn label(self) -> &'static [u8] {
        match self {
            Context::Hello => b"lbd-peer-v1 hello",
            Context::Stream => b"lbd-peer-v1 stream",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the message does not authenticate with this director's peer secret (is --peer-secret-file the same on both directors?)")]
    BadMac,
    #[error("the peer secret file holds no secret")]
    EmptySecret,
    #[error("the peer secret is {0} bytes; it must be at least 16")]
    ShortSecret(usize),
}

/// The shared secret.
#[derive(Clone)]
pub struct Key {
    /// HMAC keyed with the secret, cloned for each message.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A secret file's contents: surrounding white space is not part of the secret.
    pub fn from_file_contents(text: &[u8]) -> Result<Key, SealError> {
        let start = text.iter().position(|b| !b.is_ascii_whitespace());
        let end = text.iter().rposition(|b| !b.is_ascii_whitespace());
        let secret = match (start, end) {
            (Some(s), Some(e)) => text[s..=e].to_vec(),
            _ => return Err(SealError::EmptySecret),
        };
        if secret.len() < 16 {
            return Err(SealError::ShortSecret(secret.len()));
        }
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
            .map_err(|_| SealError::ShortSecret(secret.len()))?;
        Ok(Key { keyed })
    }

    /// The key of a link authenticated by mutual TLS alone (no `--peer-secret-file`): a public
    /// constant, so the MAC only checks integrity and order, and TLS authenticates.
    pub fn tls_only() -> Key {
        Key::from_file_contents(b"lbd-peer-v1: authenticated by mutual TLS").unwrap_or_else(|_| {
            Key {
                keyed: <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()),
            }
        })
    }

    fn mac(&self, context: Context, nonce: &[u8]) -> Hmac<Sha256> {
        let mut m = self.keyed.clone();
        m.update(context.label());
        m.update(&(nonce.len() as u32).to_be_bytes());
        m.update(nonce);
        m
    }

    pub fn seal(&self, context: Context, nonce: &[u8], payload: Vec<u8>) -> Sealed {
        let mut m = self.mac(context, nonce);
        m.update(&payload);
        Sealed {
            mac: m.finalize().into_bytes().to_vec(),
            payload,
        }
    }

    /// The payload, if the MAC is right (compared in constant time).
    pub fn open<'a>(
        &self,
        context: Context,
        nonce: &[u8],
        sealed: &'a Sealed,
    ) -> Result<&'a [u8], SealError> {
        let mut m = self.mac(context, nonce);
        m.update(&sealed.payload);
        m.verify_slice(&sealed.mac).map_err(|_| SealError::BadMac)?;
        Ok(&sealed.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::from_file_contents(s.as_bytes()).unwrap()
    }

    #[test]
    fn sealed_opens_with_the_same_key_context_and_nonce_only() {
        let k = key("0123456789abcdef0123\n");
        let s = k.seal(Context::Stream, b"nonce-1", b"payload".to_vec());
        assert_eq!(k.open(Context::Stream, b"nonce-1", &s).unwrap(), b"payload");
        assert_eq!(
            k.open(Context::Stream, b"nonce-2", &s),
            Err(SealError::BadMac)
        );
        assert_eq!(
            k.open(Context::Hello, b"nonce-1", &s),
            Err(SealError::BadMac)
        );
        let other = key("0123456789abcdef0124");
        assert_eq!(
            other.open(Context::Stream, b"nonce-1", &s),
            Err(SealError::BadMac)
        );
        let mut tampered = s.clone();
        tampered.payload[0] ^= 1;
        assert_eq!(
            k.open(Context::Stream, b"nonce-1", &tampered),
            Err(SealError::BadMac)
        );
        let mut short = s;
        short.mac.truncate(16);
        assert_eq!(
            k.open(Context::Stream, b"nonce-1", &short),
            Err(SealError::BadMac)
        );
    }

    #[test]
    fn secrets_are_trimmed_and_must_be_long_enough() {
        assert_eq!(
            Key::from_file_contents(b"  \n").unwrap_err(),
            SealError::EmptySecret
        );
        assert_eq!(
            Key::from_file_contents(b"short\n").unwrap_err(),
            SealError::ShortSecret(5)
        );
        let a = key("  0123456789abcdef\n");
        let b = key("0123456789abcdef");
        let s = a.seal(Context::Hello, b"", vec![1, 2, 3]);
        assert!(b.open(Context::Hello, b"", &s).is_ok());
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_the_documented_input() {
        // Recomputed by hand from the module comment's formula.
        let k = key("0123456789abcdef");
        let s = k.seal(Context::Stream, b"ab", b"xyz".to_vec());
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"0123456789abcdef").unwrap();
        m.update(b"lbd-peer-v1 stream\0\0\0\x02abxyz");
        assert_eq!(s.mac, m.finalize().into_bytes().to_vec());
    }
}
