//! The worker side of the jq sandbox: a process that reads one request per line on stdin,
//! runs it, and writes one reply per line on stdout, until stdin closes.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use super::{JqError, Program};

/// Set in the environment of a worker process: its value is the memory limit in MiB.
pub const WORKER_ENV: &str = "SKYHOOK_JQ_WORKER";

/// Compiled programs a worker keeps; a subscriber's program is compiled once per worker.
const CACHED_PROGRAMS: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Request {
    pub program: String,
    /// The input, JSON text.
    pub input: String,
    pub max_output: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Reply {
    /// The one output, JSON text.
    Ok(String),
    Err(JqError),
}

/// When this process was started as a jq worker ([`WORKER_ENV`] set), serves requests until
/// stdin closes and exits; otherwise returns at once. Every binary that runs jq programs
/// through a [`super::Sandbox`] calls this first in `main`, before it starts any runtime,
/// so a worker is one small single-threaded process.
pub fn serve_if_worker() {
    let Some(limit) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let mib = limit
        .to_str()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if mib > 0 {
        limit_memory(mib);
    }
    let code = match serve(io::stdin().lock(), io::stdout().lock()) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code);
}

/// Caps this process's address space, so a program that builds a huge value fails to
/// allocate (and the worker dies) instead of taking the machine's memory.
#[cfg(unix)]
fn limit_memory(mib: u64) {
    let bytes = mib.saturating_mul(1024 * 1024);
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    if rc != 0 {
        eprintln!("jq worker: could not limit memory to {mib} MiB");
    }
}

#[cfg(not(unix))]
fn limit_memory(_mib: u64) {}

/// Serves requests from `input` until it ends, one reply line per request line.
pub fn serve(input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let mut programs: HashMap<String, Result<Program, JqError>> = HashMap::new();
    for line in input.lines() {
        let line = line?;
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Err(JqError::Unavailable(format!("bad request: {e}"))),
            Ok(req) => {
                if programs.len() >= CACHED_PROGRAMS && !programs.contains_key(&req.program) {
                    programs.clear();
                }
                let program = programs
                    .entry(req.program.clone())
                    .or_insert_with(|| Program::compile(&req.program));
                match program {
                    Ok(p) => match p.run(req.input.as_bytes(), req.max_output) {
                        Ok(out) => Reply::Ok(out),
                        Err(e) => Reply::Err(e),
                    },
                    Err(e) => Reply::Err(e.clone()),
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
            input: input.into(),
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
        ]
        .join("\n");
        let mut out = Vec::new();
        serve(io::Cursor::new(lines), &mut out).unwrap();
        let replies: Vec<Reply> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(replies.len(), 5);
        assert!(matches!(&replies[0], Reply::Ok(o) if o == r#"{"n":1}"#));
        assert!(matches!(&replies[1], Reply::Err(JqError::Compile(_))));
        assert!(matches!(&replies[2], Reply::Err(JqError::Input(_))));
        assert!(matches!(&replies[3], Reply::Err(JqError::Unavailable(_))));
        assert!(matches!(&replies[4], Reply::Ok(o) if o == r#"{"n":2}"#));
    }
}
