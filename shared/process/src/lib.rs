//! What a Skyhook function's process does besides its domain: the logging set-up, and the
//! sandbox that runs tenants' jq programs in worker processes (the domain checks and
//! compiles programs; spawning, `setrlimit` and the worker loop live here, behind the
//! domain's [`skyhook_domain::ports::ProgramRunner`] port).
//!
//! jq cannot be interrupted: `def f: f; f` loops for ever, and a deep recursion overflows
//! the stack, which aborts the whole process. So programs never run in the process that
//! serves requests or delivers: [`Sandbox`] hands each run to a worker process (this same
//! binary, started with [`WORKER_ENV`] set, see [`serve_if_worker`]) and kills the worker
//! when a run takes too long or the worker dies.

mod sandbox;
pub mod telemetry;
mod worker;

pub use sandbox::{PARENT_MEMORY_MIB, Sandbox, SandboxLimits, SandboxSettings};
pub use worker::{WORKER_ENV, serve, serve_if_worker};
