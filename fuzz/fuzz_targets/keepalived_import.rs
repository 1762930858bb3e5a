//! Fuzzes what `POST /api/v1/import/keepalived` does with its body: parse the text (includes
//! refused, as the API does), convert it to lbd's model, merge it into an empty configuration,
//! validate the result and, when it is valid, export it back to keepalived.conf. No input may
//! panic; whatever lbd exports it must parse again.
#![no_main]

use std::path::Path;

use lbd::keepalived::{export, import, parser};
use lbd::model::{validate, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The API refuses a body that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(nodes) = parser::parse(text, Path::new("keepalived.conf"), &parser::NoIncludes) else {
        return;
    };
    let Ok(imported) = import::convert(&nodes, "lk01") else {
        return;
    };
    let Ok(merged) = import::merge(&Config::default(), imported) else {
        return;
    };
    if validate::config(&merged.config, None).is_err() {
        return;
    }
    let out = export::export(&merged.config, "lk01");
    if let Err(e) = parser::parse(&out, Path::new("exported.conf"), &parser::NoIncludes) {
        panic!("lbd's own export does not parse: {e}\n{out}");
    }
});
