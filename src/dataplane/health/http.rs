//! keepalived's HTTP_GET (plain HTTP): GET each url, expect a status (or one of a set of ranges),
//! optionally a substring of the body and the body's MD5 digest, each url within the timeout.
//!
//! A minimal HTTP/1.0 client on purpose: one request per connection, `Connection: close`, the
//! status line and (when a body substring or digest is wanted) the body: up to 64 KiB for a
//! substring, to the end (at most 16 MiB) for a digest, as keepalived hashes the whole body. No
//! redirects.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CheckError;

const MAX_RESPONSE: usize = 64 * 1024;
const MAX_DIGESTED: usize = 16 * 1024 * 1024;

pub struct HttpCheck<'a> {
    pub path: &'a str,
    pub host: String,
    /// Healthy statuses (inclusive ranges).
    pub statuses: &'a [(u16, u16)],
    pub body_contains: Option<&'a str>,
    /// The body's MD5, lowercase hex.
    pub digest: Option<&'a str>,
}

/// SSL_GET's TLS: keepalived does not verify the server's certificate; lbd does when given CA
/// certificates (and checks `server_name`, also sent as SNI, or the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca_file: Option<String>,
    pub server_name: Option<String>,
}

/// Accepts any certificate: keepalived's SSL_GET without a CA (it checks the service, not
/// its identity). The handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(t: &Tls) -> Result<Arc<rustls::ClientConfig>, CheckError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CheckError::Tls(e.to_string()))?;
    let cfg = match &t.ca_file {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth(),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| CheckError::Tls(format!("tls_ca_file {path}: {e}")))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| CheckError::Tls(format!("tls_ca_file {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| CheckError::Tls(format!("tls_ca_file {path}: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(cfg))
}

pub async fn check(
    addr: SocketAddr,
    timeout: Duration,
    c: &HttpCheck<'_>,
    tls: Option<&Tls>,
) -> Result<(), CheckError> {
    match tokio::time::timeout(timeout, connect(addr, c, tls)).await {
        Err(_) => Err(CheckError::Timeout(timeout)),
        Ok(r) => r,
    }
}

async fn connect(addr: SocketAddr, c: &HttpCheck<'_>, tls: Option<&Tls>) -> Result<(), CheckError> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| CheckError::Connect(e.to_string()))?;
    let Some(t) = tls else {
        return exchange(s, c).await;
    };
    let name = match &t.server_name {
        Some(n) => ServerName::try_from(n.clone())
            .map_err(|e| CheckError::Tls(format!("tls_server_name {n}: {e}")))?,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let s = tokio_rustls::TlsConnector::from(tls_config(t)?)
        .connect(name, s)
        .await
        .map_err(|e| CheckError::Tls(e.to_string()))?;
    exchange(s, c).await
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    c: &HttpCheck<'_>,
) -> Result<(), CheckError> {
    let req = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: lbd-healthcheck\r\nConnection: close\r\n\r\n",
        c.path, c.host
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| CheckError::Io(e.to_string()))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| CheckError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let have_status = buf.windows(2).any(|w| w == b"\r\n");
        let cap = if c.digest.is_some() {
            MAX_DIGESTED
        } else {
            MAX_RESPONSE
        };
        if (c.body_contains.is_none() && c.digest.is_none() && have_status) || buf.len() >= cap {
            break;
        }
    }
    verdict(&buf, c)
}

/// Judges what a real server answered (`response`, up to [`MAX_RESPONSE`] bytes, or
/// [`MAX_DIGESTED`] with a digest): its status line, the status and, when wanted, the body's
/// digest and substring. The bytes are the real server's, so
/// anything at all may be there.
pub fn verdict(response: &[u8], c: &HttpCheck<'_>) -> Result<(), CheckError> {
    let text = String::from_utf8_lossy(response);
    let status_line = text.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code
            .parse::<u16>()
            .map_err(|_| CheckError::Protocol(format!("bad status line {status_line:?}")))?,
        _ => {
            return Err(CheckError::Protocol(format!(
                "not an HTTP response: {status_line:?}"
            )))
        }
    };
    if !c.statuses.iter().any(|(a, b)| (*a..=*b).contains(&status)) {
        return Err(CheckError::Status {
            expected: c
                .statuses
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            got: status,
            path: c.path.to_string(),
        });
    }
    if let Some(want) = c.digest {
        use md5::Digest;
        let body = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| &response[i + 4..])
            .unwrap_or(&[]);
        let got: String = md5::Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != want {
            return Err(CheckError::Digest {
                path: c.path.to_string(),
                expected: want.to_string(),
                got,
            });
        }
    }
    if let Some(want) = c.body_contains {
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        if !body.contains(want) {
            return Err(CheckError::Body(want.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_status_line_and_body() {
        let c = HttpCheck {
            path: "/",
            host: "192.0.2.1".into(),
            statuses: &[(200, 200)],
            body_contains: Some("ok"),
            digest: None,
        };
        assert!(verdict(b"HTTP/1.0 200 OK\r\n\r\nall ok", &c).is_ok());
        assert!(matches!(
            verdict(b"HTTP/1.1 503 Busy\r\n\r\nok", &c),
            Err(CheckError::Status { got: 503, .. })
        ));
        let want: String = {
            use md5::Digest;
            md5::Md5::digest(b"all ok")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let d = HttpCheck {
            host: c.host.clone(),
            digest: Some(&want),
            body_contains: None,
            ..c
        };
        assert!(verdict(b"HTTP/1.0 200 OK\r\n\r\nall ok", &d).is_ok());
        assert!(matches!(
            verdict(b"HTTP/1.0 200 OK\r\n\r\nall ko", &d),
            Err(CheckError::Digest { .. })
        ));
        assert!(matches!(
            verdict(b"HTTP/1.0 200 OK\r\n\r\nnope", &c),
            Err(CheckError::Body(_))
        ));
        for junk in [
            &b"SSH-2.0-OpenSSH_9.2\r\n"[..],
            b"HTTP/1.0 2x0\r\n",
            b"",
            b"\xff\xfe",
        ] {
            assert!(matches!(verdict(junk, &c), Err(CheckError::Protocol(_))));
        }
    }
}
