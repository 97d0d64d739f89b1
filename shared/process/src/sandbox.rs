//! The parent side of the jq sandbox: a few worker processes, each running one program at a
//! time, killed and replaced when a run takes too long or the worker dies.
//!
//! A worker holds nothing worth stealing and cannot outlive or outgrow its place: it starts
//! with an empty environment and no file descriptors but its three standard streams (its
//! stdin and stdout are the pipes to the parent, stderr is `/dev/null`), no core dumps, an
//! address-space limit, a CPU-time limit per run (see [`super::worker`]) besides the parent's
//! wall-clock one, and it is killed when the parent dies (`PR_SET_PDEATHSIG`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skyhook_domain::config::{self, ConfigError, Env};
use skyhook_domain::ids::TenantId;
use skyhook_domain::jq::JqError;
use skyhook_domain::ports::ProgramRunner;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use super::worker::{Reply, Request, WORKER_ENV, WorkerLimits};

/// What a function's own process is allowed of its Lambda's memory, in MiB, beside its jq
/// workers: the template gives every function that runs programs at least this plus
/// `workers × memory_mib` (a test holds it to that). The functions use about 30 MiB.
pub const PARENT_MEMORY_MIB: u64 = 64;

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
            memory_mib: 64,
            max_output: 256 * 1024,
            workers: 1,
        }
    }
}

impl SandboxLimits {
    /// The memory all the workers may take at once, in MiB.
    pub fn budget_mib(&self) -> u64 {
        self.memory_mib.saturating_mul(self.workers.max(1) as u64)
    }

    /// CPU seconds one run may use: the wall-clock limit rounded up, and one more (the
    /// kernel counts whole seconds). It stops a worker whose parent stopped watching.
    pub fn cpu_seconds(&self) -> u64 {
        self.time.as_secs() + u64::from(self.time.subsec_nanos() > 0) + 1
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
            match skyhook_domain::retry::parse_duration(v).map_err(|e| e.to_string())? {
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
        let workers =
            config::parsed(
                env,
                config::TRANSFORM_WORKERS,
                defaults.workers,
                |v| match v.parse::<usize>() {
                    Ok(n) if (1..=16).contains(&n) => Ok(n),
                    _ => Err("expected a number of workers from 1 to 16"),
                },
            )?;
        Ok(SandboxSettings {
            limits: SandboxLimits {
                time,
                memory_mib,
                workers,
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
    /// Runs each tenant may have at once: all but one of the workers when there are
    /// several, so one tenant's slow programs always leave another tenant a worker.
    per_tenant: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

/// Tenants a sandbox keeps a count for before it forgets the idle ones.
const COUNTED_TENANTS: usize = 10_000;

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
            per_tenant: Mutex::default(),
        }
    }

    /// Runs `program` on `input` for `tenant`, within its share of the workers.
    pub async fn run_for(
        &self,
        tenant: &TenantId,
        program: &str,
        input: &str,
    ) -> Result<String, JqError> {
        let share = {
            let mut shares = self.per_tenant.lock().unwrap_or_else(|e| e.into_inner());
            let most = self.limits.workers.max(2) - 1;
            if shares.len() >= COUNTED_TENANTS && !shares.contains_key(tenant) {
                shares.retain(|_, s| s.available_permits() < most);
            }
            shares
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(most)))
                .clone()
        };
        let _share = share
            .acquire()
            .await
            .map_err(|_| JqError::Unavailable("the sandbox is closed".into()))?;
        self.run(program, input).await
    }

    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }

    fn spawn(&self) -> Result<Worker, JqError> {
        let mut command = Command::new(&self.program);
        command
            .env_clear()
            .env(
                WORKER_ENV,
                WorkerLimits {
                    memory_mib: self.limits.memory_mib,
                    cpu_seconds: self.limits.cpu_seconds(),
                }
                .encode(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        confine(&mut command, self.limits.memory_mib);
        let mut child = command
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
        self.run_or_check(program, Some(input)).await
    }

    /// Compiles `program` in a worker, as a run would, without running it.
    pub async fn check(&self, program: &str) -> Result<(), JqError> {
        self.run_or_check(program, None).await.map(drop)
    }

    /// A worker that died mid-run may have died of what it held from earlier runs (its
    /// cache of compiled programs, other tenants' among them), not of this one: the run is
    /// tried once more on a fresh worker before the program is blamed.
    async fn run_or_check(&self, program: &str, input: Option<&str>) -> Result<String, JqError> {
        let line = serde_json::to_string(&Request {
            program: program.to_string(),
            input: input.map(str::to_string),
            max_output: self.limits.max_output,
        })
        .map_err(|e| JqError::Unavailable(e.to_string()))?;
        let result = match self.exchange(&line, false).await {
            Err(JqError::Crashed(_)) => self.exchange(&line, true).await,
            other => other,
        };
        result.map_err(JqError::capped)
    }

    async fn exchange(&self, line: &str, fresh: bool) -> Result<String, JqError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| JqError::Unavailable("the sandbox is closed".into()))?;
        let idle = if fresh {
            None
        } else {
            self.idle.lock().ok().and_then(|mut idle| idle.pop())
        };
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
            // The worker ended or broke its pipe mid-run: out of memory, out of CPU time, or
            // a crash such as a stack overflow in a deep recursion.
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

#[async_trait]
impl ProgramRunner for Sandbox {
    async fn run(&self, tenant: &TenantId, program: &str, input: &str) -> Result<String, JqError> {
        self.run_for(tenant, program, input).await
    }

    async fn check(&self, program: &str) -> Result<(), JqError> {
        Sandbox::check(self, program).await
    }
}

/// Kills a worker and reaps it.
async fn stop(mut worker: Worker) {
    let _ = worker.child.start_kill();
    let _ = worker.child.wait().await;
}

/// Limits set in the child between fork and exec, so they hold before any of the worker's
/// own code runs.
#[cfg(target_os = "linux")]
fn confine(command: &mut Command, memory_mib: u64) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let bytes = memory_mib.saturating_mul(1024 * 1024) as libc::rlim_t;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit, setrlimit, syscall, close); it
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // Killed when the parent dies; and if it already died between fork and prctl,
            // go now.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            set_limit(libc::RLIMIT_AS, bytes)?;
            set_limit(libc::RLIMIT_CORE, 0)?;
            // No descriptor but stdin, stdout and stderr crosses into the worker, whatever
            // the parent (or its runtime) left open without close-on-exec: every other one
            // is marked close-on-exec (not closed now: the pipe that reports a failed exec
            // back to the parent is among them). Kernels before 5.11 take the loop.
            if libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                for fd in 3..4096 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
}

#[cfg(target_os = "linux")]
fn set_limit(resource: libc::__rlimit_resource_t, value: libc::rlim_t) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads the struct passed and changes only this process's limits.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere (macOS, for `skyhook local` on a laptop) the worker caps its own memory and CPU
/// time once started; the environment is still empty.
#[cfg(not(target_os = "linux"))]
fn confine(_command: &mut Command, _memory_mib: u64) {}
