//! Fuzzes the HTTP API's request bodies through the extractor the handlers use
//! (`lbd::api::extract::parse_json`), for every body type the API takes, then what the service
//! does next with a body that parses: normalize, validate, diff against an empty configuration,
//! and serialize it back as a response would. No input may panic; a value that parses
//! serializes to JSON that parses to the same value.
//!
//! Input layout: byte 0 picks the type (Config, VirtualServer, RealServer, VrrpGroup,
//! ConnectionSync), the rest is the body.
#![no_main]

use std::fmt::Debug;

use lbd::api::extract::parse_json;
use lbd::model::{diff, validate, Config, ConnectionSync, RealServer, VirtualServer, VrrpGroup};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The round trip a client relies on: what the API answers, it accepts back.
fn parse<T: DeserializeOwned + Serialize + PartialEq + Debug>(body: &[u8]) -> Option<T> {
    let v: T = parse_json(body).ok()?;
    let json = serde_json::to_vec(&v).expect("a parsed body serializes");
    let again: T = match parse_json(&json) {
        Ok(a) => a,
        Err(e) => panic!(
            "lbd's own JSON does not parse: {e:?}\n{}",
            String::from_utf8_lossy(&json)
        ),
    };
    assert_eq!(again, v);
    Some(v)
}

/// The virtual server a fuzzed real server is validated under.
fn parent() -> VirtualServer {
    parse_json(br#"{"address":"192.0.2.1","port":80,"protocol":"tcp"}"#)
        .expect("the fixed parent virtual server parses")
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 5 {
        0 => {
            if let Some(cfg) = parse::<Config>(body) {
                let _ = validate::config(&cfg, None);
                let _ = diff::diff(&Config::default(), &cfg);
            }
        }
        1 => {
            if let Some(mut vs) = parse::<VirtualServer>(body) {
                vs.normalize();
                let _ = validate::virtual_server(&vs);
            }
        }
        2 => {
            if let Some(rs) = parse::<RealServer>(body) {
                let _ = validate::real_server(&parent(), &rs);
            }
        }
        3 => {
            if let Some(g) = parse::<VrrpGroup>(body) {
                let _ = validate::vrrp_group(&g);
            }
        }
        _ => {
            if let Some(c) = parse::<ConnectionSync>(body) {
                let _ = validate::connection_sync(&c);
            }
        }
    }
});
