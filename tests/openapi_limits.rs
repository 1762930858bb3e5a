//! The OpenAPI spec states the limits validation checks, from the same constants: a change to
//! one without the other fails here.

use serde_json::Value;

use lbd::model::limits::*;
use lbd::model::validate::rule;
use lbd::model::{Priority, Vrid, Weight};

fn spec() -> Value {
    serde_json::to_value(lbd::api::openapi()).expect("the spec serializes")
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    &spec["components"]["schemas"][name]
}

fn prop<'a>(spec: &'a Value, name: &str, p: &str) -> &'a Value {
    &schema(spec, name)["properties"][p]
}

#[test]
fn single_field_limits_match_the_validator() {
    let s = spec();
    assert_eq!(prop(&s, "VirtualServer", "port")["maximum"], PORT_MAX);
    assert_eq!(prop(&s, "RealServer", "port")["maximum"], PORT_MAX);
    assert_eq!(prop(&s, "SorryServer", "port")["maximum"], PORT_MAX);
    assert_eq!(prop(&s, "HealthCheck", "connect_port")["maximum"], PORT_MAX);
    assert_eq!(prop(&s, "HealthCheck", "connect_port")["minimum"], 1);
    assert_eq!(
        prop(&s, "VirtualServer", "name")["maxLength"],
        VS_NAME_MAX_BYTES
    );
    assert_eq!(prop(&s, "VirtualServer", "name")["minLength"], 1);
    assert_eq!(
        prop(&s, "VrrpGroup", "name")["maxLength"],
        GROUP_NAME_MAX_BYTES
    );
    assert_eq!(
        prop(&s, "VrrpNode", "node")["maxLength"],
        NODE_NAME_MAX_BYTES
    );
    assert_eq!(
        prop(&s, "VrrpNode", "interface")["maxLength"],
        IFNAME_MAX_BYTES
    );
    assert_eq!(
        prop(&s, "VrrpGroup", "auth_pass")["maxLength"],
        AUTH_PASS_MAX_BYTES
    );
    assert_eq!(
        prop(&s, "VirtualServer", "delay_loop_ms")["minimum"],
        DELAY_LOOP_MIN_MS
    );
    assert_eq!(prop(&s, "HealthCheck", "retry")["maximum"], RETRY_MAX);
    assert_eq!(prop(&s, "HealthCheck", "urls")["maxItems"], URLS_MAX);
    assert_eq!(
        prop(&s, "VrrpGroup", "virtual_addresses")["maxItems"],
        VIRTUAL_ADDRESSES_MAX
    );
    assert_eq!(prop(&s, "GarpSettings", "count")["maximum"], GARP_COUNT_MAX);
    assert_eq!(
        prop(&s, "VrrpGroup", "preempt_delay_ms")["maximum"],
        PREEMPT_DELAY_MAX_MS
    );
    for (name, min, max) in [
        ("Vrid", u64::from(Vrid::MIN), u64::from(Vrid::MAX)),
        (
            "Priority",
            u64::from(Priority::MIN),
            u64::from(Priority::MAX),
        ),
        ("Weight", u64::from(Weight::MIN), u64::from(Weight::MAX)),
    ] {
        assert_eq!(schema(&s, name)["minimum"], min, "{name}");
        assert_eq!(schema(&s, name)["maximum"], max, "{name}");
    }
    assert_eq!((Vrid::MIN, Vrid::MAX), (1, 255));
}

#[test]
fn rules_between_fields_are_stated() {
    let s = spec();
    // Priority 255 only for the address owner; 1-254 otherwise.
    let node = serde_json::to_string(schema(&s, "VrrpNode")).expect("json");
    assert!(
        node.contains(&format!("\"maximum\":{}", PRIORITY_OWNER - 1)),
        "{node}"
    );
    // The VRRP versions' intervals.
    let group = serde_json::to_string(schema(&s, "VrrpGroup")).expect("json");
    for n in [
        V2_ADVERT_MIN_MS,
        V2_ADVERT_MAX_MS,
        V3_ADVERT_MIN_MS,
        V3_ADVERT_MAX_MS,
    ] {
        assert!(group.contains(&n.to_string()), "{n}");
    }
    // A virtual server: an address (either family) or a fwmark (either family).
    let vs = schema(&s, "VirtualServer");
    let variants = vs["allOf"][0]["anyOf"]
        .as_array()
        .expect("identity variants");
    assert_eq!(variants.len(), 4);
    // Every rule code the error body can carry is listed in its schema, and the ones no schema
    // states are among them.
    let codes = prop(&s, "ErrorDetail", "rule")["oneOf"][1]["enum"]
        .as_array()
        .expect("rule codes")
        .clone();
    assert_eq!(codes.len(), rule::ALL.len());
    for c in rule::UNEXPRESSED {
        assert!(rule::ALL.contains(c), "{c}");
    }
    // The Schemathesis hook accepts only documented codes.
    let hooks = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/schemathesis/hooks.py"
    ))
    .expect("hooks.py");
    for c in rule::ALL {
        assert!(hooks.contains(&format!("\"{c}\"")), "hooks.py lacks {c}");
    }
}

#[test]
fn every_operation_documents_its_errors() {
    let s = spec();
    for (path, item) in s["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            let mut need = vec!["400", "500"];
            if op.get("requestBody").is_some() {
                need.extend(["408", "413", "422"]);
            }
            if path.contains('{') {
                need.push("404");
            }
            let write = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "dry_run"));
            if write {
                need.push("412");
            }
            if write && op.get("requestBody").is_some() {
                need.push("409");
            }
            if method == "patch" {
                need.push("415");
            }
            for code in need {
                let r = responses
                    .get(code)
                    .unwrap_or_else(|| panic!("{method} {path} does not document {code}"));
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {code}"
                );
            }
        }
    }
}
