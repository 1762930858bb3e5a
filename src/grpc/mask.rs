//! `google.protobuf.FieldMask` for the Update* RPCs (AIP-134 semantics).
//!
//! Paths are checked against the service's own descriptor (the one reflection serves), so a
//! field added to the proto is maskable without a list to keep in step. The update itself runs
//! on the model's JSON shape: each named path is copied from the request's message into the
//! stored entity (or removed from it when the message leaves it unset, which resets it to the
//! default), and the result is parsed by the same deserializer as every other write.

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldMask, FileDescriptorSet};
use serde_json::{Map, Value};
use tonic::Status;

use super::convert::invalid;
use super::pb;

/// What an update mask names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// `*`: every field, i.e. a replacement.
    All,
    /// Dotted field paths, checked against the message.
    Paths(Vec<String>),
}

impl Mask {
    /// Whether `field` (a top-level field) is named, or everything is.
    pub fn names(&self, field: &str) -> bool {
        match self {
            Mask::All => true,
            Mask::Paths(ps) => ps.iter().any(|p| p == field),
        }
    }

    /// The first path the mask names beyond `allowed` (`*` names everything).
    pub fn beyond(&self, allowed: &[&str]) -> Option<&str> {
        match self {
            Mask::All => Some("*"),
            Mask::Paths(ps) => ps.iter().map(String::as_str).find(|p| !allowed.contains(p)),
        }
    }

    /// Applies the mask: the named fields of `new` replace those of `cur`.
    pub fn apply(&self, cur: &mut Value, new: &Value) {
        match self {
            Mask::All => *cur = new.clone(),
            Mask::Paths(ps) => {
                for p in ps {
                    copy_path(cur, new, p);
                }
            }
        }
    }
}

/// The `lbd.v1` message descriptors (the ones reflection serves), decoded once when the gRPC
/// server is built and owned by it.
#[derive(Debug, Clone, Default)]
pub struct Descriptors {
    messages: Vec<DescriptorProto>,
}

impl Descriptors {
    /// Decodes the descriptor set build.rs compiled into the binary.
    pub fn new() -> Result<Self, prost::DecodeError> {
        let set = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET)?;
        Ok(Descriptors {
            messages: set
                .file
                .into_iter()
                .filter(|f| f.package() == "lbd.v1")
                .flat_map(|f| f.message_type)
                .collect(),
        })
    }

    fn message(&self, name: &str) -> Option<&DescriptorProto> {
        self.messages.iter().find(|m| m.name() == name)
    }

    /// Checks `mask` against message `name` (e.g. "RealServer" of package lbd.v1). Every
    /// segment but the last must be a singular message field. An empty mask names nothing,
    /// which is a mistake rather than a no-op.
    pub fn parse(&self, name: &str, mask: Option<FieldMask>) -> Result<Mask, Status> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(invalid(
                "update_mask",
                "name the fields to change (e.g. \"weight\" or \"health_check.retry\"), or \"*\" for all",
            ));
        }
        if paths.iter().any(|p| p == "*") {
            if paths.len() > 1 {
                return Err(invalid(
                    "update_mask",
                    "\"*\" names every field; give it alone",
                ));
            }
            return Ok(Mask::All);
        }
        for (i, path) in paths.iter().enumerate() {
            self.check_path(name, path).map_err(|why| {
                invalid(
                    &format!("update_mask.paths[{i}]"),
                    &format!("unknown field path {path:?} of lbd.v1.{name}: {why}"),
                )
            })?;
        }
        Ok(Mask::Paths(paths))
    }

    fn check_path(&self, name: &str, path: &str) -> Result<(), String> {
        let mut msg = self
            .message(name)
            .ok_or_else(|| format!("no message {name}"))?;
        let segs: Vec<&str> = path.split('.').collect();
        for (i, seg) in segs.iter().enumerate() {
            let f = msg
                .field
                .iter()
                .find(|f| f.name() == *seg)
                .ok_or_else(|| format!("{} has no field {seg:?}", msg.name()))?;
            if i + 1 < segs.len() {
                if f.r#type() != Type::Message || f.label() == Label::Repeated {
                    return Err(format!(
                        "{seg:?} is not a message field, so it has no sub-fields"
                    ));
                }
                let t = f.type_name().rsplit('.').next().unwrap_or_default();
                msg = self.message(t).ok_or_else(|| format!("no message {t}"))?;
            }
        }
        Ok(())
    }
}

/// Copies the value at dotted `path` of `new` into `cur` (creating objects on the way), or
/// removes it from `cur` when `new` has none.
fn copy_path(cur: &mut Value, new: &Value, path: &str) {
    let segs: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let src = segs.iter().try_fold(new, |v, s| v.get(*s));
    let mut t = cur;
    for s in parents {
        if !t.is_object() {
            if src.is_none() {
                return; // nothing to remove below a field that is not there
            }
            *t = Value::Object(Map::new());
        }
        let Value::Object(m) = t else { return };
        t = m.entry(s.to_string()).or_insert(Value::Null);
    }
    if !t.is_object() {
        if src.is_none() {
            return;
        }
        *t = Value::Object(Map::new());
    }
    let Value::Object(m) = t else { return };
    match src {
        Some(v) => {
            m.insert(last.to_string(), v.clone());
        }
        None => {
            m.remove(*last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(name: &str, mask: Option<FieldMask>) -> Result<Mask, Status> {
        Descriptors::new().unwrap().parse(name, mask)
    }

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        })
    }

    #[test]
    fn paths_are_checked_against_the_descriptor() {
        assert!(parse("RealServer", mask(&["weight", "health_check.retry"])).is_ok());
        assert_eq!(parse("VirtualServer", mask(&["*"])).unwrap(), Mask::All);
        let e = parse("RealServer", mask(&["weight", "wieght"])).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message()
                .starts_with("update_mask.paths[1]: unknown field path \"wieght\""),
            "{}",
            e.message()
        );
        let e = parse("RealServer", mask(&["weight.x"])).unwrap_err();
        assert!(
            e.message().contains("not a message field"),
            "{}",
            e.message()
        );
        let e = parse("VrrpGroup", mask(&["nodes.priority"])).unwrap_err();
        assert!(
            e.message().contains("not a message field"),
            "{}",
            e.message()
        );
        assert!(parse("VrrpGroup", mask(&[])).is_err());
        assert!(parse("VrrpGroup", None).is_err());
        assert!(parse("VrrpGroup", mask(&["*", "name"])).is_err());
    }

    #[test]
    fn apply_copies_and_resets_named_paths_only() {
        let mut cur = json!({"weight": 1, "port": 80,
            "health_check": {"type": "tcp", "retry": 3, "rise": 2}});
        let new = json!({"weight": 9, "port": 81, "health_check": {"type": "http", "retry": 5}});
        Mask::Paths(vec![
            "weight".into(),
            "health_check.retry".into(),
            "health_check.rise".into(),
        ])
        .apply(&mut cur, &new);
        assert_eq!(
            cur,
            json!({"weight": 9, "port": 80, "health_check": {"type": "tcp", "retry": 5}})
        );
        // A named field the message leaves unset is reset (removed: the default applies).
        Mask::Paths(vec!["health_check".into()]).apply(&mut cur, &json!({}));
        assert_eq!(cur, json!({"weight": 9, "port": 80}));
        // A sub-field of a message the entity does not have yet creates it.
        Mask::Paths(vec!["health_check.retry".into()]).apply(&mut cur, &new);
        assert_eq!(cur["health_check"], json!({"retry": 5}));
    }
}
