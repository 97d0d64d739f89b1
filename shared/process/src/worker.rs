//! The worker side of the jq sandbox: a process that reads one request per line on stdin,
//! runs it, and writes one reply per line on stdout, until stdin closes.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};
use skyhook_domain::jq::{JqError, Program};

/// Set in the environment of a worker process (and nothing else is): its value is
/// `<memory MiB>,<CPU seconds per run>`.
pub const WORKER_ENV: &str = "SKYHOOK_JQ_WORKER";

/// Compiled programs a worker keeps, so a subscriber's program is compiled once per worker:
/// at most this many, and at most this much program text in all (a 16 KiB program can take
/// megabytes compiled; the cache must never crowd out the run it serves).
const CACHED_PROGRAMS: usize = 64;
const CACHED_SOURCE_BYTES: usize = 32 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub program: String,
    /// The input, JSON text; `None` only compiles the program (the reply is `Ok("")`).
    pub input: Option<String>,
    pub max_output: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reply {
    /// The one output, JSON text.
    Ok(String),
    Err(JqError),
}

/// The limits a worker is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkerLimits {
    pub memory_mib: u64,
    pub cpu_seconds: u64,
}

impl WorkerLimits {
    pub(crate) fn encode(&self) -> String {
        format!("{},{}", self.memory_mib, self.cpu_seconds)
    }

    fn decode(value: &str) -> Option<Self> {
        let (memory, cpu) = value.split_once(',')?;
        Some(WorkerLimits {
            memory_mib: memory.parse().ok().filter(|m| *m > 0)?,
            cpu_seconds: cpu.parse().ok().filter(|c| *c > 0)?,
        })
    }
}

/// When this process was started as a jq worker ([`WORKER_ENV`] set), serves requests until
/// stdin closes and exits; otherwise returns at once. Every binary that runs jq programs
/// through a [`super::Sandbox`] calls this first in `main`, before it starts any runtime,
/// so a worker is one small single-threaded process.
pub fn serve_if_worker() {
    let Some(value) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let Some(limits) = value.to_str().and_then(WorkerLimits::decode) else {
        // Started by hand with a value we did not write: refuse to run unconfined.
        std::process::exit(2);
    };
    // The parent set these between fork and exec on Linux; setting them again is a no-op
    // there and the only limit elsewhere.
    if limit_memory(limits.memory_mib).is_err() {
        std::process::exit(2);
    }
    let code = match serve_with(io::stdin().lock(), io::stdout().lock(), || {
        limit_cpu(limits.cpu_seconds)
    }) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code);
}

/// Caps this process's address space, so a program that builds a huge value fails to
/// allocate (and the worker dies) instead of taking the machine's memory.
#[cfg(unix)]
fn limit_memory(mib: u64) -> io::Result<()> {
    let bytes = mib.saturating_mul(1024 * 1024) as libc::rlim_t;
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn limit_memory(_mib: u64) -> io::Result<()> {
    Ok(())
}

/// Lets the next run use `seconds` more CPU time than this process has used so far: past
/// it the kernel ends the worker (SIGXCPU), even if the parent stopped watching the clock.
#[cfg(unix)]
fn limit_cpu(seconds: u64) -> io::Result<()> {
    // SAFETY: getrusage writes into the struct we pass; it is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let used = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) as u64 + 1;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_CPU, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    limit.rlim_cur = (used.saturating_add(seconds) as libc::rlim_t).min(limit.rlim_max);
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
    if unsafe { libc::setrlimit(libc::RLIMIT_CPU, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn limit_cpu(_seconds: u64) -> io::Result<()> {
    Ok(())
}

/// Serves requests from `input` until it ends, one reply line per request line.
pub fn serve(input: impl BufRead, output: impl Write) -> io::Result<()> {
    serve_with(input, output, || Ok(()))
}

/// [`serve`], calling `before_run` before each program runs (the CPU limit).
fn serve_with(
    input: impl BufRead,
    mut output: impl Write,
    mut before_run: impl FnMut() -> io::Result<()>,
) -> io::Result<()> {
    let mut programs: HashMap<String, Result<Program, JqError>> = HashMap::new();
    let mut cached_bytes = 0usize;
    for line in input.lines() {
        let line = line?;
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Err(JqError::Unavailable(format!("bad request: {e}"))),
            Ok(req) => {
                before_run()?;
                if !programs.contains_key(&req.program)
                    && (programs.len() >= CACHED_PROGRAMS
                        || cached_bytes + req.program.len() > CACHED_SOURCE_BYTES)
                {
                    programs.clear();
                    cached_bytes = 0;
                }
                let program = programs.entry(req.program.clone()).or_insert_with(|| {
                    cached_bytes += req.program.len();
                    Program::compile_here(&req.program)
                });
                match (program, &req.input) {
                    (Err(e), _) => Reply::Err(e.clone()),
                    (Ok(_), None) => Reply::Ok(String::new()),
                    (Ok(p), Some(input)) => match p.run(input.as_bytes(), req.max_output) {
                        Ok(out) => Reply::Ok(out),
                        Err(e) => Reply::Err(e),
                    },
                }
            }
        };
        let text = serde_json::to_string(&reply).map_err(io::Error::other)?;
        output.write_all(text.as_bytes())?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(program: &str, input: &str) -> String {
        serde_json::to_string(&Request {
            program: program.into(),
            input: Some(input.into()),
            max_output: 1024,
        })
        .unwrap()
    }

    #[test]
    fn one_reply_line_per_request_line() {
        let lines = [
            request("{n: .a}", r#"{"a": 1}"#),
            request(".a +", "{}"),
            request(".a", "{"),
            "not json".to_string(),
            request("{n: .a}", r#"{"a": 2}"#),
            request("env", "{}"),
        ]
        .join("\n");
        let mut out = Vec::new();
        serve(io::Cursor::new(lines), &mut out).unwrap();
        let replies: Vec<Reply> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(replies.len(), 6);
        assert!(matches!(&replies[0], Reply::Ok(o) if o == r#"{"n":1}"#));
        assert!(matches!(&replies[1], Reply::Err(JqError::Compile(_))));
        assert!(matches!(&replies[2], Reply::Err(JqError::Input(_))));
        assert!(matches!(&replies[3], Reply::Err(JqError::Unavailable(_))));
        assert!(matches!(&replies[4], Reply::Ok(o) if o == r#"{"n":2}"#));
        // A program saved before a function was refused is refused when it runs.
        assert!(
            matches!(&replies[5], Reply::Err(JqError::Compile(m)) if m.contains("env is not allowed"))
        );
    }

    #[test]
    fn limits_travel_in_one_variable() {
        let limits = WorkerLimits {
            memory_mib: 64,
            cpu_seconds: 2,
        };
        assert_eq!(WorkerLimits::decode(&limits.encode()), Some(limits));
        assert_eq!(WorkerLimits::decode("64"), None);
        assert_eq!(WorkerLimits::decode("0,1"), None);
        assert_eq!(WorkerLimits::decode("64,x"), None);
    }
}
