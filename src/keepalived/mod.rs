//! Coming from keepalived: read a keepalived.conf ([`parser`]), turn it into lbd's model
//! ([`import`], with every keyword lbd does not support reported with file and line), merge the
//! second director's file into the same groups ([`import::merge`]), and write a keepalived.conf
//! back ([`export`]).

pub mod export;
pub mod import;
pub mod parser;

use std::path::Path;

pub use import::{ImportError, ImportOptions, Imported, Warning};

#[derive(Debug, thiserror::Error)]
pub enum KeepalivedError {
    #[error(transparent)]
    Syntax(#[from] parser::SyntaxError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Parses and converts one director's file, and merges it into `existing`.
pub fn import_into(
    existing: &crate::model::Config,
    text: &str,
    file: &Path,
    node_name: &str,
    includes: &dyn parser::Includes,
) -> Result<Imported, KeepalivedError> {
    import_into_with(
        existing,
        text,
        file,
        node_name,
        includes,
        ImportOptions::default(),
    )
}

/// [`import_into`] with options.
pub fn import_into_with(
    existing: &crate::model::Config,
    text: &str,
    file: &Path,
    node_name: &str,
    includes: &dyn parser::Includes,
    opts: ImportOptions,
) -> Result<Imported, KeepalivedError> {
    let nodes = parser::parse(text, file, includes)?;
    let imported = import::convert_with(&nodes, node_name, opts)?;
    Ok(import::merge_with(existing, imported, node_name, opts)?)
}

/// `lbd check-keepalived`: parse, convert and validate `text` with no daemon, as the import
/// into an empty configuration would; the result carries the report.
pub fn check(
    text: &str,
    file: &Path,
    node_name: &str,
    includes: &dyn parser::Includes,
    opts: ImportOptions,
) -> Result<Imported, KeepalivedError> {
    let mut imported = import_into_with(
        &crate::model::Config::default(),
        text,
        file,
        node_name,
        includes,
        opts,
    )?;
    for v in &mut imported.config.virtual_servers {
        std::sync::Arc::make_mut(v).normalize();
    }
    crate::model::validate::config(&imported.config, None).map_err(|e| {
        // Point at the line of the entity the field belongs to where we can.
        let at = field_line(&imported, &e.field).unwrap_or_else(|| file.display().to_string());
        ImportError {
            at,
            message: e.to_string(),
        }
    })?;
    Ok(imported)
}

/// The file:line of the entity a validation field path (`virtual_servers[2]...`,
/// `vrrp_groups[0]...`) names.
fn field_line(imported: &Imported, field: &str) -> Option<String> {
    let idx = |p: &str| -> Option<usize> { field.strip_prefix(p)?.split(']').next()?.parse().ok() };
    if let Some(i) = idx("virtual_servers[") {
        let v = imported.config.virtual_servers.get(i)?;
        let label = crate::model::diff::vs_label(v);
        return imported.line_of(&label, "").map(str::to_string);
    }
    if let Some(i) = idx("vrrp_groups[") {
        let g = imported.config.vrrp_groups.get(i)?;
        return imported
            .line_of(&format!("group {}", g.name), "")
            .map(str::to_string);
    }
    None
}

/// A multi-line keepalived.conf squashed onto one line (what `curl -d @file` sends): keepalived's
/// syntax is line-based, so such a body would be read as nonsense statements.
pub fn looks_squashed(text: &str) -> bool {
    let t = text.trim();
    !t.contains('\n') && t.contains('{') && t.matches(char::is_whitespace).count() > 8
}

/// What an API answers for a body [`looks_squashed`].
pub const SQUASHED: &str = "the body has no line breaks but holds blocks: it looks like a keepalived.conf whose lines were joined (curl -d strips newlines); send the file with curl --data-binary @FILE";

/// Parses and converts a file sent over an API (no includes): `keepalived.conf:LINE` errors.
pub fn convert_body(
    text: &str,
    node_name: &str,
    opts: ImportOptions,
) -> Result<Imported, KeepalivedError> {
    let nodes = parser::parse(text, Path::new("keepalived.conf"), &parser::NoIncludes)?;
    Ok(import::convert_with(&nodes, node_name, opts)?)
}
