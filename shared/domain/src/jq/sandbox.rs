//! The parent side of the jq sandbox: a few worker processes, each running one program at a
//! time, killed and replaced when a run takes too long or the worker dies.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use super::worker::{Reply, Request};
use super::{JqError, WORKER_ENV};
use crate::config::{self, ConfigError, Env};

/// What one run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall time of one run, from the request to the reply.
    pub time: Duration,
    /// The worker's address space, in MiB.
    pub memory_mib: u64,
    /// The output's size, in bytes.
    pub max_output: usize,
    /// Runs at once (one worker process each).
    pub workers: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            time: Duration::from_millis(250),
            // Beside the function itself, inside the template's 128 MB Lambda.
            memory_mib: 64,
            max_output: 256 * 1024,
            workers: 4,
        }
    }
}

/// How a function builds its sandbox: the limits, and the worker binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    pub limits: SandboxLimits,
    /// `None`: the running binary, which calls [`super::serve_if_worker`] first in `main`.
    pub worker: Option<PathBuf>,
}

impl SandboxSettings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let defaults = SandboxLimits::default();
        let time = config::parsed(env, config::TRANSFORM_TIMEOUT, defaults.time, |v| {
            match crate::retry::parse_duration(v).map_err(|e| e.to_string())? {
                d if d.is_zero() => Err("must be more than zero".to_string()),
                d if d > Duration::from_secs(10) => Err("must be at most 10s".to_string()),
                d => Ok(d),
            }
        })?;
        let memory_mib = config::parsed(
            env,
            config::TRANSFORM_MEMORY_MB,
            defaults.memory_mib,
            |v| match v.parse::<u64>() {
                Ok(n) if (32..=4096).contains(&n) => Ok(n),
                _ => Err("expected a number of MiB from 32 to 4096"),
            },
        )?;
        Ok(SandboxSettings {
            limits: SandboxLimits {
                time,
                memory_mib,
                ..defaults
            },
            worker: config::optional(env, config::JQ_WORKER_BIN).map(PathBuf::from),
        })
    }

    /// The sandbox these settings describe; it starts no worker until a program runs.
    pub fn sandbox(&self) -> Sandbox {
        let worker = self
            .worker
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("skyhook"));
        Sandbox::with_command(worker, self.limits)
    }
}

/// Runs jq programs in worker processes (see the module's documentation).
pub struct Sandbox {
    program: PathBuf,
    limits: SandboxLimits,
    slots: Semaphore,
    idle: Mutex<Vec<Worker>>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Sandbox {
    /// Workers are `program`, a binary that calls [`super::serve_if_worker`] first in `main`.
    pub fn with_command(program: PathBuf, limits: SandboxLimits) -> Self {
        Sandbox {
            program,
            slots: Semaphore::new(limits.workers.max(1)),
            limits,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn spawn(&self) -> Result<Worker, JqError> {
        let mut child = Command::new(&self.program)
            .env(WORKER_ENV, self.limits.memory_mib.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| JqError::Unavailable(format!("cannot start a jq worker: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(JqError::Unavailable("a jq worker has no pipes".into()));
        };
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// Runs `program` on `input` (JSON text): its one output as JSON text, or why not.
    pub async fn run(&self, program: &str, input: &str) -> Result<String, JqError> {
        let line = serde_json::to_string(&Request {
            program: program.to_string(),
            input: input.to_string(),
            max_output: self.limits.max_output,
        })
        .map_err(|e| JqError::Unavailable(e.to_string()))?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| JqError::Unavailable("the sandbox is closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut worker = match idle {
            Some(w) => w,
            None => self.spawn()?,
        };
        let exchange = async {
            worker.stdin.write_all(line.as_bytes()).await?;
            worker.stdin.write_all(b"\n").await?;
            worker.stdin.flush().await?;
            let mut reply = String::new();
            let read = worker.stdout.read_line(&mut reply).await?;
            Ok::<_, std::io::Error>((read, reply))
        };
        match tokio::time::timeout(self.limits.time, exchange).await {
            Ok(Ok((read, reply))) if read > 0 => match serde_json::from_str::<Reply>(&reply) {
                Ok(reply) => {
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.push(worker);
                    }
                    match reply {
                        Reply::Ok(out) => Ok(out),
                        Reply::Err(e) => Err(e),
                    }
                }
                Err(e) => {
                    stop(worker).await;
                    Err(JqError::Unavailable(format!(
                        "a jq worker answered badly: {e}"
                    )))
                }
            },
            // The worker ended or broke its pipe mid-run: out of memory, or a crash such as
            // a stack overflow in a deep recursion.
            Ok(_) => {
                stop(worker).await;
                Err(JqError::Crashed(self.limits.memory_mib))
            }
            Err(_) => {
                stop(worker).await;
                Err(JqError::Timeout(
                    u64::try_from(self.limits.time.as_millis()).unwrap_or(u64::MAX),
                ))
            }
        }
    }
}

/// Kills a worker and reaps it.
async fn stop(mut worker: Worker) {
    let _ = worker.child.start_kill();
    let _ = worker.child.wait().await;
}
