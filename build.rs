//! Compiles `proto/` with protox (a pure-Rust protobuf compiler, so no `protoc` is
//! needed), writes the encoded descriptor set (custom options included) for the
//! dynamic gateway path and server reflection, and generates the Rust client stubs.

use std::{env, fs, path::PathBuf};

/// Vendored imports that reflection must be able to describe (error details).
const VENDORED_FILES: &[&str] = &[
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/rpc/code.proto",
];

/// Every `.proto` of `proto/gamegate/v1/`, relative to `proto/`.
fn gamegate_files() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    for entry in fs::read_dir("proto/gamegate/v1")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".proto") {
            files.push(format!("gamegate/v1/{name}"));
        }
    }
    files.sort();
    Ok(files)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    build_commit();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["proto", "proto/vendor"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(gamegate_files()?)?;
    compiler.open_files(VENDORED_FILES)?;

    // Only this encoding keeps the custom options (route, upstream field rules)
    // that the gateway reads at run time.
    let encoded = compiler.encode_file_descriptor_set();
    fs::write(out_dir.join("gamegate_descriptor.bin"), &encoded)?;

    let redacted = redacted_messages(&encoded)?;
    fs::write(
        out_dir.join("redacted_debug.rs"),
        redacted_debug_impls(&redacted),
    )?;

    let file_descriptor_set = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .skip_debug(redacted.iter().map(|m| format!(".{}", m.full_name)))
        .build_server(false)
        .build_client(true)
        // google.rpc types come from tonic-types; do not generate them again.
        .extern_path(".google.rpc", "::tonic_types")
        .compile_fds(file_descriptor_set)?;
    Ok(())
}

/// A message that holds at least one `sensitive` field.
struct RedactedMessage {
    full_name: String,
    rust_path: String,
    fields: Vec<(String, bool)>,
}

/// Finds the `gamegate.v1` messages with fields declared `sensitive` in their
/// `(gamegate.v1.upstream)` option: their derived Debug would print session keys,
/// openkeys and access tokens.
fn redacted_messages(encoded: &[u8]) -> Result<Vec<RedactedMessage>, Box<dyn std::error::Error>> {
    let pool = prost_reflect::DescriptorPool::decode(encoded)?;
    let upstream = pool
        .get_extension_by_name("gamegate.v1.upstream")
        .ok_or("options.proto lost the gamegate.v1.upstream extension")?;
    let mut found = Vec::new();
    for message in pool.all_messages() {
        if message.package_name() != "gamegate.v1" || message.parent_message().is_some() {
            continue;
        }
        let fields: Vec<(String, bool)> = message
            .fields()
            .map(|field| {
                let options = field.options();
                let redact = options.has_extension(&upstream)
                    && matches!(
                        options.get_extension(&upstream).as_ref(),
                        prost_reflect::Value::Message(declared)
                            if declared.get_field_by_name("sensitive")
                                .is_some_and(|value| value.as_bool() == Some(true))
                    );
                (field.name().to_string(), redact)
            })
            .collect();
        if fields.iter().any(|(_, redact)| *redact) {
            found.push(RedactedMessage {
                full_name: message.full_name().to_string(),
                rust_path: message.name().to_string(),
                fields,
            });
        }
    }
    Ok(found)
}

fn redacted_debug_impls(messages: &[RedactedMessage]) -> String {
    let mut out = String::new();
    for message in messages {
        out.push_str(&format!(
            "impl ::core::fmt::Debug for {} {{\n    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{\n        f.debug_struct(\"{}\")\n",
            message.rust_path, message.rust_path
        ));
        for (name, redact) in &message.fields {
            let ident = rust_ident(name);
            if *redact {
                out.push_str(&format!(
                    "            .field(\"{name}\", &\"<redacted>\")\n"
                ));
            } else {
                out.push_str(&format!("            .field(\"{name}\", &self.{ident})\n"));
            }
        }
        out.push_str("            .finish()\n    }\n}\n");
    }
    out
}

fn rust_ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "type", "use", "ref", "match", "move", "self", "fn", "mod", "in", "loop",
    ];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// `GAMEGATE_COMMIT` for `gamegate_build_info`: taken from the environment
/// (a Docker build without `.git` passes it as a build argument), else from
/// git, else `unknown`.
fn build_commit() {
    println!("cargo:rerun-if-env-changed=GAMEGATE_COMMIT");
    let commit = std::env::var("GAMEGATE_COMMIT").ok().or_else(|| {
        // Rebuilt when HEAD moves: the file HEAD names, and HEAD itself.
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Ok(head) = std::fs::read_to_string(".git/HEAD")
            && let Some(reference) = head.trim().strip_prefix("ref: ")
        {
            println!("cargo:rerun-if-changed=.git/{reference}");
        }
        let output = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        let commit = String::from_utf8(output.stdout).ok()?.trim().to_string();
        (output.status.success() && !commit.is_empty()).then_some(commit)
    });
    println!(
        "cargo:rustc-env=GAMEGATE_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}
