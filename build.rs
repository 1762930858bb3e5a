//! Compiles proto/ with tonic-prost-build, using the protoc that protoc-bin-vendored ships (no
//! system protoc needed), and writes the file descriptor set that server reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds migrations/: a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY (edition 2021: set_var is safe): build scripts are single-threaded.
    std::env::set_var("PROTOC", protoc);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("lbd_descriptor.bin"))
        .compile_protos(
            &[
                PathBuf::from("proto/lbd/v1/lbd.proto"),
                PathBuf::from("proto/lbd/peer/v1/peer.proto"),
            ],
            // google/protobuf/field_mask.proto; prost maps it to prost_types::FieldMask.
            &[PathBuf::from("proto"), protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
