//! What the derived schemas cannot say: each field's limits, taken from the constants validation
//! checks ([`crate::model::limits`], the bounded units), the exact syntax of addresses, and the
//! rules between fields that JSON Schema (2020-12, OpenAPI 3.1) can state, as `oneOf`/`anyOf`
//! variants. The rules it cannot state are named by the `rule` of a 422
//! ([`crate::model::validate::rule::UNEXPRESSED`]) and described where they apply.

use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{Object, Schema, SchemaType};
use utoipa::openapi::{OpenApi, RefOr};

use crate::model::limits::*;
use crate::model::validate::rule;
use crate::model::SchedulerFlag;

/// Characters `char::is_whitespace` (Unicode White_Space) matches, as a regex class body.
pub const WS: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// White space that is not a control character.
const WS_NOT_CONTROL: &str = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Characters `char::is_control` (Unicode Cc) matches, as a regex class body.
pub const CC: &str = r"\u0000-\u001f\u007f-\u009f";

const HEX: &str = "[0-9a-fA-F]";
const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const OCTET_NOT_255: &str = "(?:25[0-4]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
/// A first octet that is not 0 (0.0.0.0/8), 224-239 (multicast) or 255.
const FIRST_OCTET_HOST: &str = "(?:25[0-4]|24[0-9]|22[0-3]|2[01][0-9]|1[0-9][0-9]|[1-9][0-9]?)";
/// As [`FIRST_OCTET_HOST`], and not 127 (loopback).
const FIRST_OCTET_HOST_NOT_LOOPBACK: &str =
    "(?:25[0-4]|24[0-9]|22[0-3]|2[01][0-9]|1(?:[013-9][0-9]|2[0-689])|[1-9][0-9]?)";
/// An IPv6 first group below ff00 (not multicast).
const FIRST_GROUP_NOT_MULTICAST: &str =
    "(?:[0-9a-fA-F]{1,3}|[0-9a-eA-E][0-9a-fA-F]{3}|[fF][0-9a-eA-E][0-9a-fA-F]{2})";

/// An IPv4 address as `Ipv4Addr::from_str` reads it (dotted quad, no leading zeros); unanchored.
pub fn ipv4() -> String {
    format!(r"{OCTET}(?:\.{OCTET}){{3}}")
}

/// An IPv4 address that can be a host's: not in 0.0.0.0/8, not multicast, not the limited
/// broadcast address (and, with `loopback: false`, not in 127.0.0.0/8).
fn ipv4_host(loopback: bool) -> String {
    let first = if loopback {
        FIRST_OCTET_HOST
    } else {
        FIRST_OCTET_HOST_NOT_LOOPBACK
    };
    let o = OCTET;
    let n = OCTET_NOT_255;
    // 255.x.y.z is reached only with x, y or z not 255.
    format!(r"(?:{first}(?:\.{o}){{3}}|255\.(?:{n}(?:\.{o}){{2}}|255\.(?:{n}\.{o}|255\.{n})))")
}

/// An IPv6 address as `Ipv6Addr::from_str` reads it (groups of 1-4 hex digits, one `::` for one
/// or more zero groups, an IPv4 address in the last 32 bits), with `first` as the pattern of a
/// leading group; unanchored.
fn ipv6_with(first: &str) -> String {
    let g = HEX.to_string() + "{1,4}";
    let v4 = ipv4();
    let mut alts = vec![
        format!("{first}(?::{g}){{7}}"),
        format!("{first}(?::{g}){{5}}:{v4}"),
    ];
    for h in 0..=7usize {
        let head = match h {
            0 => String::new(),
            1 => first.to_string(),
            _ => format!("{first}(?::{g}){{{}}}", h - 1),
        };
        // Groups left for the tail: `::` stands for at least one.
        let room = 7 - h;
        let tail = match room {
            0 => String::new(),
            1 => format!("(?:{g})?"),
            _ => format!(
                "(?:(?:{g}:){{0,{}}}{v4}|(?:{g}(?::{g}){{0,{}}})?)",
                room - 2,
                room - 1
            ),
        };
        alts.push(format!("{head}::{tail}"));
    }
    format!("(?:{})", alts.join("|"))
}

/// Any IPv6 address; unanchored.
pub fn ipv6() -> String {
    ipv6_with(&format!("{HEX}{{1,4}}"))
}

/// An IPv6 address that is not multicast (the unspecified address is left out by
/// [`IPV6_NOT_UNSPECIFIED`]); unanchored.
fn ipv6_not_multicast() -> String {
    ipv6_with(FIRST_GROUP_NOT_MULTICAST)
}

/// Matches an IPv6 address (before any `/`) that has a non-zero digit: not `::`.
const IPV6_NOT_UNSPECIFIED: &str = "^[^/]*[1-9a-fA-F]";

/// Matches an IPv6 address (before any `/`) that is neither `::` nor `::1`: a non-zero digit
/// before the last group, or a last group (or last IPv4 octet) other than 0 and 1.
fn ipv6_not_loopback() -> String {
    format!(
        r"^[^/]*[1-9a-fA-F][0-9a-fA-F]*[:.]|^[^/]*:0*(?:[2-9a-fA-F][0-9a-fA-F]*|1[0-9a-fA-F]+)[{WS}]*(?:/|$)|^[^/]*\.(?:[2-9]|[1-9][0-9]+)[{WS}]*(?:/|$)"
    )
}

/// A prefix length as `u8::from_str` reads it after `trim`, at most `max`.
fn prefix_len(max: u8) -> String {
    let n = match max {
        32 => "(?:[0-9]|[12][0-9]|3[0-2])",
        _ => "(?:[0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])",
    };
    format!(r"(?:/[{WS}]*\+?0*{n}[{WS}]*)?")
}

fn string(pattern: String) -> Value {
    json!({"type": "string", "pattern": pattern})
}

fn anchored(p: &str) -> String {
    format!("^{p}$")
}

/// A prefix as `model::Prefix` reads it: `default`, or an address with an optional length
/// (digits, no leading zero) of its family.
fn route_prefix() -> Value {
    string(format!(
        "^(?:default|{}(?:/(?:[0-9]|[12][0-9]|3[0-2]))?|{}(?:/(?:[0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))?)$",
        ipv4(),
        ipv6()
    ))
}

/// A scope as `model::Scope` reads it.
fn route_scope() -> Value {
    string(
        "^(?:global|universe|site|link|host|nowhere|[0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])$"
            .into(),
    )
}

/// An interface name as validation checks it (bytes beyond 15: rule `max_bytes`).
fn ifname_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": IFNAME_MAX_BYTES, "pattern": format!("^[^/:{WS}{CC}]*$")})
}

fn any_ip() -> Value {
    json!({"anyOf": [r("Ipv4Address"), r("Ipv6Address")]})
}

/// A virtual route: the kernel's numbers, the strings as the parsers read them.
fn virtual_route(s: &mut Value) {
    limit(s, "table", json!({"minimum": 1, "maximum": u32::MAX}));
    limit(s, "metric", json!({"maximum": u32::MAX}));
    limit(s, "protocol", json!({"maximum": u8::MAX}));
    props(s).insert("to".into(), route_prefix());
    nullable(s, "via", any_ip());
    nullable(s, "src", any_ip());
    nullable(s, "dev", ifname_schema());
    nullable(s, "scope", route_scope());
    describe(s, &unexpressed(&[rule::VIRTUAL_ROUTE, rule::MAX_BYTES]));
}

/// A virtual rule, as [`virtual_route`].
fn virtual_rule(s: &mut Value) {
    limit(s, "table", json!({"minimum": 1, "maximum": u32::MAX}));
    for p in ["priority", "fwmark", "fwmask"] {
        limit(s, p, json!({"maximum": u32::MAX}));
    }
    nullable(s, "from", route_prefix());
    nullable(s, "to", route_prefix());
    nullable(s, "iif", ifname_schema());
    nullable(s, "oif", ifname_schema());
    nullable(
        s,
        "type",
        json!({"type": "string", "enum": ["blackhole", "unreachable", "prohibit"]}),
    );
    describe(s, &unexpressed(&[rule::VIRTUAL_ROUTE, rule::MAX_BYTES]));
}

/// A virtual address with options: IPv4 with all of them, IPv6 with `dev` only.
fn vip_with_options() -> Value {
    let opt = |v: Value| json!({"oneOf": [null_type(), v]});
    let label = json!({"type": "string", "maxLength": IFNAME_MAX_BYTES, "pattern": format!("^[^{WS}{CC}]*$")});
    let no_track = json!({"type": "boolean", "description": "keepalived's `no_track`: when the address is deleted from the kernel the master stays master; it is added again only on the next transition to master. Without it (the default) the master leaves master as keepalived does: a priority-0 advert, everything removed, and back to master after Skew_Time unless a peer takes over."});
    json!({
        "description": "A virtual address with keepalived's options (`virtual_ipaddress { ADDR dev IF scope S label L brd B no_track }`). `scope`, `label` and `broadcast` are IPv4 only; `label` is the interface's name or starts with it and a colon (rule `vip_label`), at most 15 bytes (rule `max_bytes`).",
        "anyOf": [
            {
                "title": "IPv4",
                "type": "object",
                "additionalProperties": false,
                "required": ["address"],
                "properties": {
                    "address": r("VirtualIpv4Address"),
                    "dev": opt(ifname_schema()),
                    "scope": opt(route_scope()),
                    "label": opt(label),
                    "broadcast": opt(r("Ipv4Address")),
                    "no_track": no_track,
                },
            },
            {
                "title": "IPv6",
                "type": "object",
                "additionalProperties": false,
                "required": ["address"],
                "properties": {
                    "address": r("VirtualIpv6Address"),
                    "dev": opt(ifname_schema()),
                    "scope": null_type(),
                    "label": null_type(),
                    "broadcast": null_type(),
                    "no_track": no_track,
                },
            },
        ],
    })
}

/// The address components, referenced from the entities' schemas.
fn address_schemas() -> Vec<(&'static str, Value)> {
    let v4_va = format!("^[{WS}]*{}[{WS}]*{}$", ipv4_host(false), prefix_len(32));
    let v6_va = format!(
        "^[{WS}]*{}[{WS}]*{}$",
        ipv6_not_multicast(),
        prefix_len(128)
    );
    vec![
        ("Ipv4Address", {
            let mut s = string(anchored(&ipv4()));
            s["description"] = "An IPv4 address (dotted quad, no leading zeros).".into();
            s
        }),
        ("Ipv6Address", {
            let mut s = string(anchored(&ipv6()));
            s["description"] = "An IPv6 address (RFC 4291 2.2 text, no zone).".into();
            s
        }),
        ("HostIpv4Address", {
            let mut s = string(anchored(&ipv4_host(true)));
            s["description"] =
                "An IPv4 address a host can have: not in 0.0.0.0/8, not multicast, not 255.255.255.255."
                    .into();
            s
        }),
        (
            "HostIpv6Address",
            json!({
                "description": "An IPv6 address a host can have: not multicast (ff00::/8), not the unspecified address.",
                "type": "string",
                "allOf": [
                    {"pattern": anchored(&ipv6_not_multicast())},
                    {"pattern": IPV6_NOT_UNSPECIFIED},
                ],
            }),
        ),
        ("VirtualAddressWithOptions", vip_with_options()),
        ("VirtualIpv4Address", {
            let mut s = string(v4_va);
            s["description"] = "An IPv4 virtual address, `addr` or `addr/prefix` (default /32): not in 0.0.0.0/8 or 127.0.0.0/8, not multicast, not 255.255.255.255.".into();
            s
        }),
        (
            "VirtualIpv6Address",
            json!({
                "description": "An IPv6 virtual address, `addr` or `addr/prefix` (default /128): not multicast, not `::` or `::1`.",
                "type": "string",
                "allOf": [
                    {"pattern": v6_va},
                    {"pattern": ipv6_not_loopback()},
                ],
            }),
        ),
    ]
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn null_type() -> Value {
    json!({"type": "null"})
}

/// The `properties` of an object schema.
fn props(schema: &mut Value) -> &mut Map<String, Value> {
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    match schema["properties"].as_object_mut() {
        Some(m) => m,
        None => unreachable!("just made an object"),
    }
}

/// Adds (or replaces) keywords of one property's schema.
fn limit(schema: &mut Value, prop: &str, keywords: Value) {
    let p = props(schema)
        .entry(prop.to_string())
        .or_insert_with(|| json!({}));
    if let (Some(p), Value::Object(k)) = (p.as_object_mut(), keywords) {
        // utoipa calls a u32 `int32`, which a generator reads as a bound of its own.
        if k.get("maximum")
            .and_then(Value::as_u64)
            .is_some_and(|m| m > i32::MAX as u64)
        {
            p.insert("format".into(), "int64".into());
        }
        p.extend(k);
    }
}

/// A nullable property replaced by `null` or `schema` (keeping its description).
fn nullable(schema: &mut Value, prop: &str, inner: Value) {
    let p = &mut props(schema)[prop];
    let description = p.get("description").cloned();
    let mut v = json!({"oneOf": [null_type(), inner]});
    if let Some(d) = description {
        v["description"] = d;
    }
    *p = v;
}

/// Removes a keyword from one property's schema.
fn drop_key(schema: &mut Value, prop: &str, keyword: &str) {
    if let Some(p) = props(schema).get_mut(prop).and_then(Value::as_object_mut) {
        p.remove(keyword);
    }
}

fn text(min: usize, max: usize, pattern: String) -> Value {
    json!({"minLength": min, "maxLength": max, "pattern": pattern})
}

/// Appends a sentence to a schema's description.
fn describe(schema: &mut Value, sentence: &str) {
    let d = schema["description"].as_str().unwrap_or("").to_string();
    schema["description"] = if d.is_empty() {
        sentence.into()
    } else {
        format!("{d}\n\n{sentence}").into()
    };
}

fn all_of(schema: &mut Value, rules: Vec<Value>) {
    schema["allOf"] = Value::Array(rules);
}

fn unexpressed(codes: &[&str]) -> String {
    let list: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    format!(
        "Rules no schema states (a 422 names them as `rule`): {}.",
        list.join(", ")
    )
}

// Each `anyOf` multiplies the variants a generator (or a validator) works through, so the rules
// that would add more (`hysteresis`: below the quorum, 1 without one) are left to descriptions.
fn virtual_server(s: &mut Value) {
    let label = format!("^[^{CC}]*$");
    let command = format!(r#"^[{WS_NOT_CONTROL}]*(?:'')*'?/[^"{CC}]*$"#);
    limit(s, "name", text(1, VS_NAME_MAX_BYTES, label));
    nullable(
        s,
        "address",
        json!({"anyOf": [r("HostIpv4Address"), r("HostIpv6Address")]}),
    );
    limit(s, "port", json!({"maximum": PORT_MAX}));
    limit(s, "fwmark", json!({"minimum": 1, "maximum": u32::MAX}));
    limit(
        s,
        "persistence_timeout_secs",
        json!({"minimum": PERSISTENCE_TIMEOUT_MIN_SECS, "maximum": u32::MAX}),
    );
    limit(s, "persistence_granularity", json!({"maximum": 128}));
    limit(
        s,
        "delay_loop_ms",
        json!({"minimum": DELAY_LOOP_MIN_MS, "maximum": u32::MAX}),
    );
    limit(s, "quorum", json!({"minimum": 1, "maximum": u32::MAX}));
    limit(s, "hysteresis", json!({"maximum": u32::MAX - 1}));
    for c in ["quorum_up", "quorum_down"] {
        limit(s, c, text(1, COMMAND_MAX_BYTES, command.clone()));
    }
    let family = |f: &str| {
        let (host, any, max) = if f == "ipv4" {
            ("HostIpv4Address", "Ipv4Address", 32)
        } else {
            ("HostIpv6Address", "Ipv6Address", 128)
        };
        json!({
            "sorry_server": {"oneOf": [null_type(), {"type": "object", "properties": {"address": r(any)}}]},
            "persistence_granularity": {"maximum": max},
            "real_servers": {"items": {"properties": {"address": r(host)}}},
        })
    };
    let by_address = |f: &str, host: &str| {
        let mut p = family(f);
        p["address"] = r(host);
        p["port"] = json!({"type": "integer"});
        p["fwmark"] = null_type();
        p["family"] = json!({"enum": [f, null]});
        json!({"title": format!("{f} address"), "required": ["address", "port"], "properties": p})
    };
    let by_mark = |f: &str| {
        let mut p = family(f);
        p["fwmark"] = json!({"type": "integer"});
        p["family"] = json!({"const": f});
        for k in ["address", "port", "protocol"] {
            p[k] = null_type();
        }
        json!({"title": format!("{f} fwmark"), "required": ["fwmark", "family"], "properties": p})
    };
    let persistent = json!({"required": ["persistence_timeout_secs"],
        "properties": {"persistence_timeout_secs": {"type": "integer"}}});
    let flags = |sched: &str| -> Value {
        let names: Vec<&str> = SchedulerFlag::ALL
            .iter()
            .filter(|f| f.scheduler().kernel_name() == sched)
            .map(|f| f.name())
            .collect();
        json!({"required": ["scheduler"], "properties": {
            "scheduler": {"const": sched}, "scheduler_flags": {"items": {"enum": names}}}})
    };
    all_of(
        s,
        vec![
            json!({"description": format!("rule `{}` (and `{}`): an address and port, or a fwmark and family", rule::IDENTITY, rule::ADDRESS_FAMILY),
                "anyOf": [by_address("ipv4", "HostIpv4Address"), by_address("ipv6", "HostIpv6Address"), by_mark("ipv4"), by_mark("ipv6")]}),
            json!({"description": format!("rules `{}` and `{}`: port 0 and a granularity only when persistent", rule::PORT_ZERO, rule::PERSISTENCE),
                "anyOf": [persistent, {"properties": {"port": {"minimum": 1}, "persistence_granularity": null_type()}}]}),
            json!({"description": format!("rule `{}`: one-packet scheduling for udp or fwmark services", rule::ONE_PACKET),
                "anyOf": [{"properties": {"one_packet": {"const": false}}},
                    {"required": ["fwmark"], "properties": {"fwmark": {"type": "integer"}}},
                    {"required": ["protocol"], "properties": {"protocol": {"const": "udp"}}}]}),
            json!({"description": format!("rule `{}`: flags of the scheduler", rule::SCHEDULER_FLAG),
                "anyOf": [{"properties": {"scheduler_flags": {"maxItems": 0}}}, flags("sh"), flags("mh")]}),
        ],
    );
    describe(
        s,
        &unexpressed(&[
            rule::HYSTERESIS,
            rule::REAL_SERVER_PORT,
            rule::THRESHOLDS,
            rule::CHECK_PORT,
            rule::MAX_BYTES,
        ]),
    );
}

fn real_server(s: &mut Value) {
    limit(
        s,
        "address",
        json!({"anyOf": [r("HostIpv4Address"), r("HostIpv6Address")]}),
    );
    drop_key(s, "address", "type");
    limit(s, "port", json!({"maximum": PORT_MAX}));
    for t in ["upper_threshold", "lower_threshold"] {
        limit(s, t, json!({"maximum": u32::MAX}));
    }
    describe(
        s,
        &unexpressed(&[
            rule::ADDRESS_FAMILY,
            rule::REAL_SERVER_PORT,
            rule::THRESHOLDS,
            rule::CHECK_PORT,
        ]),
    );
}

fn health_check(s: &mut Value) {
    let no_space = format!("^[^{WS}{CC}]*$");
    let path = format!("^/[^{WS}{CC}]*$");
    limit(
        s,
        "connect_port",
        json!({"minimum": 1, "maximum": PORT_MAX}),
    );
    limit(
        s,
        "connect_timeout_ms",
        json!({"minimum": 1, "maximum": u32::MAX}),
    );
    limit(s, "retry", json!({"maximum": RETRY_MAX}));
    limit(s, "delay_before_retry_ms", json!({"maximum": u32::MAX}));
    for k in ["rise", "fall", "misc_timeout_ms"] {
        limit(s, k, json!({"minimum": 1, "maximum": u32::MAX}));
    }
    limit(s, "path", json!({"pattern": path}));
    limit(
        s,
        "expected_status",
        json!({"minimum": HTTP_STATUS_MIN, "maximum": HTTP_STATUS_MAX}),
    );
    limit(s, "urls", json!({"maxItems": URLS_MAX}));
    limit(
        s,
        "misc_path",
        json!({"pattern": format!(r#"^[{WS}]*(?:''|"")*['"]?/"#)}),
    );
    limit(s, "user", text(1, USER_MAX_BYTES, format!("^[^{CC}]*$")));
    limit(s, "virtualhost", text(1, VIRTUALHOST_MAX_BYTES, no_space));
    let absent = |fields: &[&str]| -> Value {
        let mut p = Map::new();
        for f in fields {
            let v = match *f {
                "urls" => json!({"maxItems": 0}),
                "misc_dynamic" => json!({"const": false}),
                _ => null_type(),
            };
            p.insert(f.to_string(), v);
        }
        Value::Object(p)
    };
    let http_only = ["path", "expected_status", "body_contains", "urls"];
    let misc_only = ["misc_path", "misc_timeout_ms", "misc_dynamic", "user"];
    let https_only = ["tls_ca_file", "tls_server_name"];
    let variant = |kind: &str, gone: Vec<&str>| {
        let mut p = absent(&gone);
        p["type"] = json!({"const": kind});
        json!({"title": kind, "properties": p})
    };
    let tcp = variant(
        "tcp",
        [&http_only[..], &misc_only, &https_only, &["virtualhost"]].concat(),
    );
    let mut misc = variant(
        "misc",
        [&http_only[..], &https_only, &["virtualhost"]].concat(),
    );
    misc["required"] = json!(["misc_path"]);
    misc["properties"]["misc_path"] = json!({"type": "string"});
    let urls_or_path = json!({"anyOf": [
        {"properties": {"urls": {"maxItems": 0}}},
        {"properties": {"path": null_type(), "expected_status": null_type()}}]});
    let mut http = variant("http", [&misc_only[..], &https_only].concat());
    http["allOf"] = json!([urls_or_path.clone()]);
    let mut https = variant("https", misc_only.to_vec());
    https["allOf"] = json!([urls_or_path]);
    all_of(
        s,
        vec![
            json!({"description": format!("rule `{}`: the fields of each check type", rule::CHECK_FIELDS),
            "anyOf": [tcp, http, https, misc]}),
        ],
    );
}

fn url_check(s: &mut Value) {
    let code = format!(r"[{WS}]*\+?0*[1-5][0-9]{{2}}[{WS}]*");
    limit(s, "path", json!({"pattern": format!("^/[^{WS}{CC}]*$")}));
    limit(
        s,
        "status_codes",
        json!({"items": {"type": "string", "pattern": format!("^{code}(?:-{code})?$")}}),
    );
    limit(
        s,
        "digest",
        json!({"pattern": format!("^[0-9a-fA-F]{{{DIGEST_HEX_LEN}}}$")}),
    );
    describe(s, &unexpressed(&[rule::STATUS_RANGE]));
}

fn vrrp_group(s: &mut Value) {
    let ifname = format!("^[^/:{WS}{CC}]*$");
    limit(
        s,
        "name",
        text(1, GROUP_NAME_MAX_BYTES, format!("^[^{WS}{CC}]*$")),
    );
    limit(s, "version", json!({"enum": [2, 3]}));
    drop_key(s, "version", "minimum");
    limit(
        s,
        "advert_interval_ms",
        json!({"minimum": V3_ADVERT_MIN_MS, "maximum": V2_ADVERT_MAX_MS, "multipleOf": V3_ADVERT_STEP_MS}),
    );
    limit(s, "auth_pass", json!({"maxLength": AUTH_PASS_MAX_BYTES}));
    limit(
        s,
        "virtual_addresses",
        json!({"minItems": 1, "maxItems": VIRTUAL_ADDRESSES_MAX,
            "items": {"anyOf": [r("VirtualIpv4Address"), r("VirtualIpv6Address"), r("VirtualAddressWithOptions")]}}),
    );
    if let Some(items) = props(s)["virtual_addresses"]["items"].as_object_mut() {
        items.remove("type");
    }
    limit(
        s,
        "unicast_peers",
        json!({"items": {"anyOf": [r("Ipv4Address"), r("Ipv6Address")]}}),
    );
    if let Some(items) = props(s)["unicast_peers"]["items"].as_object_mut() {
        items.remove("type");
    }
    limit(
        s,
        "preempt_delay_ms",
        json!({"maximum": PREEMPT_DELAY_MAX_MS}),
    );
    limit(
        s,
        "track_interfaces",
        json!({"items": {"type": "string", "minLength": 1, "maxLength": IFNAME_MAX_BYTES, "pattern": ifname}}),
    );
    let family = |f: &str| {
        let (va, any) = if f == "ipv4" {
            ("VirtualIpv4Address", "Ipv4Address")
        } else {
            ("VirtualIpv6Address", "Ipv6Address")
        };
        json!({
            "virtual_addresses": {"items": {"anyOf": [
                r(va),
                {"allOf": [r("VirtualAddressWithOptions"), {"properties": {"address": r(va)}}]},
            ]}},
            "unicast_peers": {"items": r(any)},
            "nodes": {"items": {"properties": {"unicast_src": {"oneOf": [null_type(), r(any)]}}}},
        })
    };
    let mut v2 = family("ipv4");
    v2["version"] = json!({"const": 2});
    v2["advert_interval_ms"] = json!({"minimum": V2_ADVERT_MIN_MS, "maximum": V2_ADVERT_MAX_MS, "multipleOf": V2_ADVERT_STEP_MS});
    let v3 = |f: &str| {
        let mut p = family(f);
        p["version"] = json!({"const": 3});
        p["advert_interval_ms"] = json!({"minimum": V3_ADVERT_MIN_MS, "maximum": V3_ADVERT_MAX_MS, "multipleOf": V3_ADVERT_STEP_MS});
        p["auth_pass"] = json!({"oneOf": [null_type(), {"const": ""}]});
        json!({"title": format!("version 3, {f}"), "required": ["version"], "properties": p})
    };
    all_of(
        s,
        vec![json!({
            "description": format!("rules `{}` and `{}`: what each VRRP version carries; one address family", rule::VRRP_VERSION, rule::ADDRESS_FAMILY),
            "anyOf": [{"title": "version 2", "properties": v2}, v3("ipv4"), v3("ipv6")],
        })],
    );
    for list in [
        "track_interfaces_weighted",
        "track_virtual_servers",
        "track_scripts",
        "virtual_routes",
        "virtual_rules",
    ] {
        limit(s, list, json!({"maxItems": TRACKED_MAX}));
    }
    limit(
        s,
        "vmac_name",
        json!({"minLength": 1, "maxLength": IFNAME_MAX_BYTES, "pattern": ifname}),
    );
    describe(
        s,
        &unexpressed(&[
            rule::DUPLICATE_ADDRESS,
            rule::ADDRESS_OWNER,
            rule::MAX_BYTES,
            rule::DUPLICATE_TRACKER,
            rule::VIP_LABEL,
            rule::VIRTUAL_ROUTE,
        ]),
    );
}

fn track_weight() -> Value {
    json!({"minimum": -TRACK_WEIGHT_MAX, "maximum": TRACK_WEIGHT_MAX})
}

fn tracked_interface(s: &mut Value) {
    let ifname = format!("^[^/:{WS}{CC}]*$");
    limit(s, "interface", text(1, IFNAME_MAX_BYTES, ifname));
    limit(s, "weight", track_weight());
}

/// A virtual server's key as `VsKey::parse` reads it.
pub fn vs_key() -> String {
    let port = "(?:0|[1-9][0-9]{0,3})";
    format!(
        r"^(?:(?:tcp|udp|sctp) (?:{}|\[{}\]):{port}|fwmark (?:0|[1-9][0-9]{{0,8}}) ipv[46])$",
        ipv4(),
        ipv6()
    )
}

fn tracked_virtual_server(s: &mut Value) {
    limit(s, "virtual_server", json!({"pattern": vs_key()}));
    limit(s, "weight", track_weight());
}

fn command_pattern() -> String {
    format!(r#"^[{WS_NOT_CONTROL}]*(?:'')*'?/[^"{CC}]*$"#)
}

fn track_script(s: &mut Value) {
    limit(
        s,
        "name",
        text(1, SCRIPT_NAME_MAX_BYTES, format!("^[^{CC}]*$")),
    );
    limit(s, "command", text(1, COMMAND_MAX_BYTES, command_pattern()));
    limit(
        s,
        "interval_ms",
        json!({"minimum": SCRIPT_INTERVAL_MIN_MS, "maximum": SCRIPT_INTERVAL_MAX_MS}),
    );
    nullable(
        s,
        "timeout_ms",
        json!({"type": "integer", "minimum": SCRIPT_TIMEOUT_MIN_MS, "maximum": SCRIPT_INTERVAL_MAX_MS}),
    );
    limit(s, "weight", track_weight());
    for k in ["rise", "fall"] {
        limit(s, k, json!({"minimum": 1, "maximum": SCRIPT_RISE_FALL_MAX}));
    }
}

fn notify(s: &mut Value) {
    for k in ["master", "backup", "fault", "stop", "any"] {
        nullable(
            s,
            k,
            json!({"type": "string", "minLength": 1, "maxLength": COMMAND_MAX_BYTES, "pattern": command_pattern()}),
        );
    }
    limit(
        s,
        "timeout_ms",
        json!({"minimum": SCRIPT_TIMEOUT_MIN_MS, "maximum": SCRIPT_INTERVAL_MAX_MS}),
    );
}

fn connection_sync(s: &mut Value) {
    // utoipa states a u8 as an int32 from 0 only.
    limit(s, "sync_id", json!({"minimum": 0, "maximum": 255}));
    limit(
        s,
        "interface",
        text(1, IFNAME_MAX_BYTES, format!("^[^/:{WS}{CC}]*$")),
    );
    limit(
        s,
        "vrrp_group",
        text(1, GROUP_NAME_MAX_BYTES, format!("^[^{CC}]*$")),
    );
    nullable(
        s,
        "group",
        json!({"anyOf": [r("Ipv4Address"), r("Ipv6Address")]}),
    );
    describe(
        s,
        &format!(
            "{} (`multicast_group`: `group` is a multicast address, IPv4 224.0.0.0/4 or IPv6 ff00::/8)",
            unexpressed(&[rule::MULTICAST_GROUP, rule::MAX_BYTES])
        ),
    );
}

fn vrrp_node(s: &mut Value) {
    limit(
        s,
        "node",
        text(1, NODE_NAME_MAX_BYTES, format!("^[^{CC}]*$")),
    );
    limit(
        s,
        "interface",
        text(1, IFNAME_MAX_BYTES, format!("^[^/:{WS}{CC}]*$")),
    );
    nullable(
        s,
        "unicast_src",
        json!({"anyOf": [r("Ipv4Address"), r("Ipv6Address")]}),
    );
    all_of(
        s,
        vec![json!({
            "description": format!("rule `{}`: priority {PRIORITY_OWNER} only for the address owner, whose unicast_src is a virtual address", rule::ADDRESS_OWNER),
            "anyOf": [{"properties": {"priority": {"maximum": PRIORITY_OWNER - 1}}},
                {"required": ["unicast_src"], "properties": {"unicast_src": {"type": "string"}}}],
        })],
    );
}

fn garp(s: &mut Value) {
    limit(s, "count", json!({"maximum": GARP_COUNT_MAX}));
    limit(s, "repeat_delay_ms", json!({"maximum": u32::MAX}));
    nullable(
        s,
        "refresh_interval_ms",
        json!({"type": "integer", "anyOf": [{"const": 0}, {"minimum": GARP_REFRESH_MIN_MS, "maximum": u32::MAX}]}),
    );
    limit(s, "interval_ms", json!({"maximum": GARP_INTERVAL_MAX_MS}));
    limit(
        s,
        "na_interval_ms",
        json!({"maximum": GARP_INTERVAL_MAX_MS}),
    );
}

fn vrrp_settings(s: &mut Value) {
    limit(s, "sync_groups", json!({"maxItems": SYNC_GROUPS_MAX}));
    describe(
        s,
        &format!(
            "{} (`sync_group_member`: a sync group names existing VRRP groups, each in one sync group; `vrrp_strict`: with `strict`, every VRRP group keeps to it)",
            unexpressed(&[rule::SYNC_GROUP_MEMBER, rule::VRRP_STRICT])
        ),
    );
}

fn vrrp_sync_group(s: &mut Value) {
    limit(
        s,
        "name",
        text(1, GROUP_NAME_MAX_BYTES, format!("^[^{CC}]*$")),
    );
    let mut item = text(1, GROUP_NAME_MAX_BYTES, format!("^[^{CC}]*$"));
    item["type"] = "string".into();
    limit(s, "groups", json!({"minItems": 1, "items": item}));
}

fn sorry_server(s: &mut Value) {
    limit(
        s,
        "address",
        json!({"anyOf": [r("Ipv4Address"), r("Ipv6Address")]}),
    );
    drop_key(s, "address", "type");
    limit(s, "port", json!({"maximum": PORT_MAX}));
}

fn error_detail(s: &mut Value) {
    let mut d = String::from(
        "The rule a 422 broke, when the request schema cannot say it all (a value between \
         fields, or beyond JSON Schema):",
    );
    for c in rule::ALL {
        d.push_str(&format!("\n- `{c}`"));
    }
    props(s).insert(
        "rule".into(),
        json!({"oneOf": [null_type(), {"type": "string", "enum": rule::ALL}], "description": d}),
    );
}

/// The merge-patch body of an entity: any of its fields (read-only ones aside); `null` removes
/// an optional one (it gets its default). Whatever the result breaks is a 422.
fn patch_of(entity: &Value) -> Value {
    let required: Vec<&str> = entity["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut props = Map::new();
    if let Some(ps) = entity["properties"].as_object() {
        for (k, v) in ps {
            if v["readOnly"] == true && k != "id" {
                continue;
            }
            let v = if required.contains(&k.as_str()) {
                v.clone()
            } else {
                json!({"anyOf": [null_type(), v]})
            };
            props.insert(k.clone(), v);
        }
    }
    json!({
        "type": "object",
        "description": "A JSON Merge Patch (RFC 7396): the fields to change; `null` removes an optional field (it gets its default). The result is checked as a whole, like a PUT body.",
        "properties": props,
        "additionalProperties": false,
    })
}

/// Request bodies that are not the entity itself: merge patches, and a node entry PUT under its
/// name (whose `node` may be left out).
fn document_bodies(spec: &mut OpenApi) {
    use utoipa::openapi::Ref;
    let Some(components) = spec.components.as_mut() else {
        return;
    };
    let json_of = |name: &str| {
        components
            .schemas
            .get(name)
            .and_then(|s| serde_json::to_value(s).ok())
    };
    let mut added = Vec::new();
    for entity in [
        "VirtualServer",
        "RealServer",
        "VrrpGroup",
        "VrrpNode",
        "IpvsTimeouts",
    ] {
        if let Some(v) = json_of(entity) {
            added.push((format!("{entity}Patch"), patch_of(&v)));
        }
    }
    if let Some(mut v) = json_of("VrrpNode") {
        if let Some(r) = v["required"].as_array_mut() {
            r.retain(|x| x != "node");
        }
        describe(
            &mut v,
            &format!(
                "Under `/nodes/{{node}}`, `node` may be left out; when given it must be the path's (rule `{}`).",
                rule::PATH_MISMATCH
            ),
        );
        added.push(("VrrpNodeEntry".into(), v));
    }
    for (name, v) in added {
        components.schemas.insert(name, raw(v));
    }
    // A node entry's name in the path is its `node`.
    for (path, item) in spec.paths.paths.iter_mut() {
        if !path.contains("{node}") {
            continue;
        }
        let ops = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            for p in op.parameters.iter_mut().flatten() {
                if p.name == "node" {
                    p.schema = Some(raw(json!({"type": "string", "minLength": 1,
                        "maxLength": NODE_NAME_MAX_BYTES, "pattern": format!("^[^{CC}]*$")})));
                }
            }
        }
    }
    let bodies = [
        (
            "/api/v1/virtual-servers/{id}",
            "patch",
            "VirtualServerPatch",
        ),
        (
            "/api/v1/virtual-servers/{id}/real-servers/{rs_id}",
            "patch",
            "RealServerPatch",
        ),
        ("/api/v1/vrrp-groups/{id}", "patch", "VrrpGroupPatch"),
        (
            "/api/v1/vrrp-groups/{id}/nodes/{node}",
            "patch",
            "VrrpNodePatch",
        ),
        (
            "/api/v1/vrrp-groups/{id}/nodes/{node}",
            "put",
            "VrrpNodeEntry",
        ),
        ("/api/v1/ipvs/timeouts", "patch", "IpvsTimeoutsPatch"),
    ];
    for (path, method, schema) in bodies {
        let Some(item) = spec.paths.paths.get_mut(path) else {
            continue;
        };
        let op = match method {
            "patch" => item.patch.as_mut(),
            _ => item.put.as_mut(),
        };
        if let Some(body) = op.and_then(|o| o.request_body.as_mut()) {
            for content in body.content.values_mut() {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name(schema)));
            }
        }
    }
}

/// A schema component given as JSON as it is (utoipa's types have no keyword for `allOf` next
/// to `properties`, `const` or a second `pattern`).
fn raw(v: Value) -> RefOr<Schema> {
    let mut o = Object::builder().schema_type(SchemaType::AnyValue).build();
    if let Value::Object(m) = v {
        let mut ext = utoipa::openapi::extensions::Extensions::default();
        ext.extend(m);
        o.extensions = Some(ext);
    }
    RefOr::T(Schema::Object(o))
}

/// Puts the limits and rules into `spec`'s schemas.
pub fn document_limits(spec: &mut OpenApi) {
    let Some(components) = spec.components.as_mut() else {
        return;
    };
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 18] = [
        ("VirtualRoute", virtual_route),
        ("VirtualRule", virtual_rule),
        ("ConnectionSync", connection_sync),
        ("VrrpSettings", vrrp_settings),
        ("VrrpSyncGroup", vrrp_sync_group),
        ("VirtualServer", virtual_server),
        ("RealServer", real_server),
        ("HealthCheck", health_check),
        ("UrlCheck", url_check),
        ("VrrpGroup", vrrp_group),
        ("VrrpNode", vrrp_node),
        ("GarpSettings", garp),
        ("TrackedInterface", tracked_interface),
        ("TrackedVirtualServer", tracked_virtual_server),
        ("TrackScript", track_script),
        ("Notify", notify),
        ("SorryServer", sorry_server),
        ("ErrorDetail", error_detail),
    ];
    for (name, edit) in edits {
        let Some(schema) = components.schemas.get(name) else {
            continue;
        };
        let Ok(mut v) = serde_json::to_value(schema) else {
            continue;
        };
        edit(&mut v);
        components.schemas.insert(name.to_string(), raw(v));
    }
    for (name, v) in address_schemas() {
        components.schemas.insert(name.to_string(), raw(v));
    }
    document_bodies(spec);
    document_service_query(spec);
}

/// The query that names one service of the kernel's table (`POST /api/v1/ipvs/zero`): any
/// address the kernel can hold, a port, a 32-bit firewall mark. That `address` goes with `port`
/// and neither with `fwmark` is rule `identity`, which a query's parameters cannot state.
fn document_service_query(spec: &mut OpenApi) {
    let Some(item) = spec.paths.paths.get_mut("/api/v1/ipvs/zero") else {
        return;
    };
    let Some(op) = item.post.as_mut() else {
        return;
    };
    for p in op.parameters.iter_mut().flatten() {
        let schema = match p.name.as_str() {
            "address" => json!({"anyOf": [r("Ipv4Address"), r("Ipv6Address")]}),
            "port" => json!({"type": "integer", "minimum": 0, "maximum": PORT_MAX}),
            "fwmark" => json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
            _ => continue,
        };
        p.schema = Some(raw(schema));
    }
    if let Some(d) = op.description.as_mut() {
        d.push_str(&format!(
            "\n\nRule `{}`: `address` and `port` together, or `fwmark`, or none (every service). Rule `{}`: `family` is the address's.",
            rule::IDENTITY,
            rule::ADDRESS_FAMILY
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn re(p: &str) -> regex::Regex {
        regex::Regex::new(p).unwrap()
    }

    /// Strings around the edges of the address syntax.
    fn samples() -> Vec<String> {
        let mut v: Vec<String> = [
            "0.0.0.0",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "255.255.255.255",
            "255.255.255.254",
            "256.1.1.1",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "127.0.0.1",
            "0.1.2.3",
            "10.0.0.1",
            "192.168.10.100",
            "1.2.3.04",
            "",
            " 1.2.3.4",
            "::",
            "::1",
            "1::",
            "1::2",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5::1.2.3.4",
            "1:2:3:4:5:6::1.2.3.4",
            "ff02::1",
            "ff::1",
            "fe80::1",
            "FF00::",
            "fff::1",
            "0:0:0:0:0:0:0:0",
            "0::0",
            "::0.0.0.0",
            "::0.0.0.1",
            "::1.2.3.4",
            "0:0:0:0:0:0:0:1",
            "::0001",
            "00000::1",
            "1:::2",
            ":1::2",
            "1::2::3",
            "12345::",
            "2001:db8::1",
            "2001:DB8::",
            "::1.2.3.04",
            "1:2:3:4:5:6:7:8:9",
            "1.2.3.4::",
            "2001:db8::1%eth0",
            "[::1]",
            "g::1",
            "::01:2",
            "0.0.0.1",
            "1.0.0.0",
            "9.9.9.9",
            "99.99.99.99",
            "100.200.250.255",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every group count, with and without `::` and an IPv4 tail.
        for n in 0..=9 {
            let groups: Vec<String> = (1..=n).map(|i| format!("{i:x}")).collect();
            v.push(groups.join(":"));
            for cut in 0..=n {
                v.push(format!(
                    "{}::{}",
                    groups[..cut].join(":"),
                    groups[cut..].join(":")
                ));
                v.push(format!(
                    "{}::{}{}1.2.3.4",
                    groups[..cut].join(":"),
                    groups[cut..].join(":"),
                    if cut < n { ":" } else { "" }
                ));
            }
            v.push(format!("{}:1.2.3.4", groups.join(":")));
        }
        v
    }

    fn special(a: &IpAddr) -> bool {
        crate::model::validate::special_address(a).is_some()
    }

    #[test]
    fn address_patterns_read_addresses_as_rust_does() {
        let v4 = re(&anchored(&ipv4()));
        let v6 = re(&anchored(&ipv6()));
        let host4 = re(&anchored(&ipv4_host(true)));
        let host6 = re(&anchored(&ipv6_not_multicast()));
        let not_zero = re(IPV6_NOT_UNSPECIFIED);
        let va4 = re(&format!("^{}$", ipv4_host(false)));
        let not_loop = re(&ipv6_not_loopback());
        for s in samples() {
            let p4 = s.parse::<Ipv4Addr>().ok();
            let p6 = s.parse::<Ipv6Addr>().ok();
            assert_eq!(v4.is_match(&s), p4.is_some(), "ipv4 {s:?}");
            assert_eq!(v6.is_match(&s), p6.is_some(), "ipv6 {s:?}");
            if let Some(a) = p4 {
                let a = IpAddr::V4(a);
                assert_eq!(host4.is_match(&s), !special(&a), "host ipv4 {s:?}");
                assert_eq!(
                    va4.is_match(&s),
                    !special(&a) && !a.is_loopback(),
                    "virtual ipv4 {s:?}"
                );
            }
            if let Some(a) = p6 {
                let a = IpAddr::V6(a);
                assert_eq!(
                    host6.is_match(&s) && not_zero.is_match(&s),
                    !special(&a),
                    "host ipv6 {s:?}"
                );
                assert_eq!(
                    host6.is_match(&s) && not_loop.is_match(&s),
                    !special(&a) && !a.is_loopback(),
                    "virtual ipv6 {s:?}"
                );
            }
        }
    }

    #[test]
    fn virtual_address_pattern_reads_as_the_parser() {
        let specs = address_schemas();
        let get = |n: &str| specs.iter().find(|(k, _)| *k == n).unwrap().1.clone();
        let v4 = re(get("VirtualIpv4Address")["pattern"].as_str().unwrap());
        let v6 = get("VirtualIpv6Address");
        let v6a = re(v6["allOf"][0]["pattern"].as_str().unwrap());
        let v6b = re(v6["allOf"][1]["pattern"].as_str().unwrap());
        let mut cases = vec![];
        for a in samples() {
            for suffix in [
                "", "/0", "/24", "/32", "/33", "/64", "/128", "/129", "/+8", "/ 08 ", "/", "/x",
                " / 1",
            ] {
                cases.push(format!("{a}{suffix}"));
                cases.push(format!(" {a}\u{3000}{suffix}"));
            }
        }
        for s in cases {
            let parsed = s.parse::<crate::model::VirtualAddress>().ok();
            let ok = parsed.is_some_and(|va| !special(&va.address) && !va.address.is_loopback());
            let matched = v4.is_match(&s) || (v6a.is_match(&s) && v6b.is_match(&s));
            assert_eq!(matched, ok, "{s:?}");
        }
    }

    #[test]
    fn status_codes_pattern_reads_as_the_parser() {
        let mut s = serde_json::to_value(crate::api::openapi()).unwrap();
        let p = s["components"]["schemas"]["UrlCheck"]["properties"]["status_codes"]["items"]
            ["pattern"]
            .take();
        let p = re(p.as_str().unwrap());
        for c in [
            "200",
            "200-299",
            " +0200 - 299 ",
            "99",
            "600",
            "200-",
            "-200",
            "2x0",
            "300-200",
            "599-100",
        ] {
            let parsed = c.parse::<crate::model::StatusRange>();
            assert_eq!(p.is_match(c), parsed.is_ok(), "{c:?}");
        }
    }

    #[test]
    fn vs_key_pattern_reads_as_the_parser() {
        let p = re(&vs_key());
        for c in [
            "tcp 192.0.2.1:80",
            "udp [2001:db8::1]:53",
            "sctp 10.0.0.1:0",
            "fwmark 7 ipv4",
            "fwmark 123456789 ipv6",
            "tcp 192.0.2.1",
            "tcp 2001:db8::1:53",
            "icmp 192.0.2.1:80",
            "fwmark x ipv4",
            "fwmark 7",
            "tcp 192.0.2.1:80 x",
            "",
        ] {
            let parsed = crate::model::VsKey::parse(c);
            assert_eq!(p.is_match(c), parsed.is_some(), "{c:?}");
            if let Some(k) = parsed {
                assert_eq!(k.to_string(), c, "the key prints as it was written");
            }
        }
    }

    #[test]
    fn commands_pattern_reads_as_the_splitter() {
        let p = re(&format!(r#"^[{WS_NOT_CONTROL}]*(?:'')*'?/[^"{CC}]*$"#));
        for c in [
            "/bin/true",
            "  /bin/x a",
            "'/bin/x' a",
            "''/x",
            "'' /x",
            "x /y",
            "'x'/y",
            "'''/x'",
            "/a\"b",
            "\t/x",
            "",
        ] {
            let argv = crate::model::real_server::split_command(c);
            let ok = argv.first().is_some_and(|a| a.starts_with('/'))
                && !c.chars().any(|ch| ch == '"' || ch.is_control());
            assert_eq!(p.is_match(c), ok, "{c:?}");
        }
    }
}
