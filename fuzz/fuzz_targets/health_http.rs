//! Fuzzes how the HTTP_GET health check judges a real server's answer
//! (`health::http::verdict`): the status line, the status and the wanted body substring. No
//! answer may panic; an answer that passes holds the expected status and the wanted text.
//!
//! Input layout: bytes 0..2 the expected status (big endian), byte 2 the length n of the wanted
//! body substring (0: none), the next n bytes that substring, the rest the answer. When bit 7 of
//! byte 0 is set, the check also wants the body's MD5 to be the digest of the substring.
#![no_main]

use lbd::dataplane::health::http::{verdict, HttpCheck};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let expected_status = u16::from_be_bytes([data[0], data[1]]);
    let n = usize::from(data[2]).min(data.len() - 3);
    let want = String::from_utf8_lossy(&data[3..3 + n]).into_owned();
    let response = &data[3 + n..];
    let statuses = [(expected_status, expected_status)];
    let digest: String = {
        use md5::Digest;
        md5::Md5::digest(want.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let c = HttpCheck {
        path: "/",
        host: "192.0.2.1".into(),
        statuses: &statuses,
        body_contains: (n > 0).then_some(want.as_str()),
        digest: (data[0] & 0x80 != 0).then_some(digest.as_str()),
    };
    if verdict(response, &c).is_ok() {
        let text = String::from_utf8_lossy(response);
        assert!(text.trim_start().starts_with("HTTP/"));
        assert!(text.contains(&expected_status.to_string()));
        if let Some(w) = c.body_contains {
            assert!(text.contains(w));
        }
    }
});
