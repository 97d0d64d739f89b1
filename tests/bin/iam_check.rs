//! `make test`'s IAM check: reads what every function did across the suite (the records
//! of `SKYHOOK_IAM_RECORD`), holds it to the roles of `infra/template.yaml`, prints the
//! table and fails on a missing or an unused grant.

use std::path::PathBuf;
use std::process::ExitCode;

use skyhook_tests::{iam, recorder, template};

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: skyhook-iam-check <directory of SKYHOOK_IAM_RECORD records>");
        return ExitCode::from(2);
    };
    let used = match recorder::read_all(&dir) {
        Ok(u) => u,
        Err(e) => {
            eprintln!(
                "IAM check: cannot read the records in {}: {e}",
                dir.display()
            );
            return ExitCode::from(2);
        }
    };
    if used.is_empty() {
        eprintln!(
            "IAM check: no AWS call was recorded in {}; did the suite run with {}?",
            dir.display(),
            recorder::RECORD_DIR
        );
        return ExitCode::FAILURE;
    }
    let text = match std::fs::read_to_string(template::template_path()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("IAM check: cannot read the template: {e}");
            return ExitCode::from(2);
        }
    };
    let granted = match iam::grants(&template::parse_template(&text)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("IAM check: {e}");
            return ExitCode::FAILURE;
        }
    };
    let findings = iam::check(&used, &granted);
    println!("{}", iam::report(&used, &granted, &findings));
    if findings.is_clean() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "IAM check failed: a MISSING grant is AccessDenied in AWS; an UNUSED one is more than the function needs (remove it, exercise it in a test, or exempt it in tests/support/iam.rs with the reason)"
        );
        ExitCode::FAILURE
    }
}
