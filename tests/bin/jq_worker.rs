//! A jq sandbox worker for the tests: the Lambda binaries are their own workers (they call
//! `serve_if_worker` first in `main`), but a test binary cannot be, so the tests start this.

fn main() {
    skyhook_process::serve_if_worker();
    eprintln!(
        "this is a jq worker: start it with {} set",
        skyhook_process::WORKER_ENV
    );
    std::process::exit(2);
}
