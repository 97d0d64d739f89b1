//! `make openapi`: writes the OpenAPI document generated from the two routers and the API's
//! types to `functions/api/src/openapi.json`, which the `api` function serves. With `--check`
//! it writes nothing and fails when the file is not what the code generates.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace");
    let path = root.join("functions/api/src/openapi.json");
    let generated =
        skyhook_api::openapi::to_json(&skyhook_api::openapi::generate(skyhook_ingest::openapi()));
    let check = std::env::args().any(|a| a == "--check");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == generated {
        println!("{} is current", path.display());
        return ExitCode::SUCCESS;
    }
    if check {
        eprintln!(
            "{} is not what the code generates; run `make openapi`",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    match std::fs::write(&path, generated) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
