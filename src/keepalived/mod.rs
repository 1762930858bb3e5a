//! Coming from keepalived: read a keepalived.conf ([`parser`]), turn it into lbd's model
//! ([`import`], with every keyword lbd does not support reported with file and line), merge the
//! second director's file into the same groups ([`import::merge`]), and write a keepalived.conf
//! back ([`export`]).

pub mod export;
pub mod import;
pub mod parser;

use std::path::Path;

pub use import::{ImportError, Imported, Warning};

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
    let nodes = parser::parse(text, file, includes)?;
    let imported = import::convert(&nodes, node_name)?;
    Ok(import::merge(existing, imported)?)
}
