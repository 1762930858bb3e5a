//! keepalived's HTTP_GET (plain HTTP): GET each url, expect a status (or one of a set of ranges),
//! optionally a substring of the body and the body's MD5 digest, each url within the timeout.
//!
//! A minimal HTTP/1.0 client on purpose: one request per connection, `Connection: close`, the
//! status line and (when a body substring or digest is wanted) the body: up to 64 KiB for a
//! substring, to the end (at most 16 MiB) for a digest, as keepalived hashes the whole body. No
//! redirects.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

pub async fn check(
    addr: SocketAddr,
    timeout: Duration,
    c: &HttpCheck<'_>,
) -> Result<(), CheckError> {
    match tokio::time::timeout(timeout, exchange(addr, c)).await {
        Err(_) => Err(CheckError::Timeout(timeout)),
        Ok(r) => r,
    }
}

async fn exchange(addr: SocketAddr, c: &HttpCheck<'_>) -> Result<(), CheckError> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| CheckError::Connect(e.to_string()))?;
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
