//! Subscribers' jq programs. A `transform` maps `{"type", "timestamp", "data"}` to the body
//! sent; it is compiled when saved and run at delivery with bounded time, memory and output.
//! The language is jq as implemented by `jaq` (its core, standard and JSON libraries).
//!
//! jq cannot be interrupted: `def f: f; f` loops for ever, and a deep recursion overflows
//! the stack, which aborts the whole process. So programs never run in the process that
//! delivers: [`Sandbox`] hands each run to a worker process (this same binary, started with
//! [`WORKER_ENV`] set, see [`serve_if_worker`]) under a memory limit, and kills the worker
//! when a run takes too long or the worker dies. Compiling is bounded by the program's size
//! and nesting, so it happens in-process.

mod sandbox;
mod worker;

pub use sandbox::{Sandbox, SandboxLimits, SandboxSettings};
pub use worker::{WORKER_ENV, serve, serve_if_worker};

use std::fmt;
use std::sync::Arc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

/// The longest program a subscriber may hold, in bytes.
pub const MAX_PROGRAM_BYTES: usize = 16 * 1024;
/// The deepest nesting of brackets a program may have: the parser recurses on each.
pub const MAX_NESTING: usize = 64;

/// Why a program did not compile or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum JqError {
    #[error("the program is longer than {MAX_PROGRAM_BYTES} bytes")]
    TooLong,
    #[error("the program nests brackets more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("the program does not compile: {0}")]
    Compile(String),
    #[error("the input is not JSON: {0}")]
    Input(String),
    #[error("the program failed: {0}")]
    Runtime(String),
    #[error("the program produced no output; it must produce exactly one value")]
    NoOutput,
    #[error("the program produced more than one output; it must produce exactly one value")]
    ManyOutputs,
    #[error("the program's output is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the program ran longer than {0} ms")]
    Timeout(u64),
    #[error("the program was stopped: it used more than {0} MiB of memory, or crashed")]
    Crashed(u64),
    #[error("the program could not be run: {0}")]
    Unavailable(String),
}

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// A compiled jq program, cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Program {
    source: Arc<str>,
    filter: Arc<Filter>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Program").field(&self.source).finish()
    }
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Program {
    /// Parses and compiles `source`; the error says where and what is wrong.
    pub fn compile(source: &str) -> Result<Self, JqError> {
        if source.len() > MAX_PROGRAM_BYTES {
            return Err(JqError::TooLong);
        }
        if nesting(source) > MAX_NESTING {
            return Err(JqError::TooDeep);
        }
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: source,
                    path: (),
                },
            )
            .map_err(|errs| JqError::Compile(describe_load_errors(source, &errs)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| JqError::Compile(describe_compile_errors(source, &errs)))?;
        Ok(Program {
            source: source.into(),
            filter: Arc::new(filter),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the program on `input` (JSON text) and returns its one output as JSON text of at
    /// most `max_output` bytes. It runs on the caller's thread with no limit on time or
    /// memory, so only a sandbox worker calls it on programs from outside: see [`Sandbox`].
    pub fn run(&self, input: &[u8], max_output: usize) -> Result<String, JqError> {
        let input =
            jaq_json::read::parse_single(input).map_err(|e| JqError::Input(e.to_string()))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let first = match outputs.next() {
            None => return Err(JqError::NoOutput),
            Some(Err(e)) => return Err(JqError::Runtime(e.to_string())),
            Some(Ok(v)) => v,
        };
        if outputs.next().is_some() {
            return Err(JqError::ManyOutputs);
        }
        let text = first.to_string();
        if text.len() > max_output {
            return Err(JqError::TooLarge { limit: max_output });
        }
        Ok(text)
    }
}

/// The deepest nesting of `(`, `[` and `{` in `source`, outside string literals (roughly:
/// an escaped quote is skipped; an over-estimate only refuses a program early).
fn nesting(source: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for c in source.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// 1-based line and column of byte `offset` in `source`.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The byte offset of `part` (a slice of `source`) in `source`.
fn offset_in(source: &str, part: &str) -> usize {
    (part.as_ptr() as usize)
        .checked_sub(source.as_ptr() as usize)
        .filter(|o| *o <= source.len())
        .unwrap_or(0)
}

fn at(source: &str, part: &str) -> String {
    let (line, column) = position(source, offset_in(source, part));
    format!("line {line}, column {column}")
}

fn snippet(part: &str) -> String {
    let s: String = part.chars().take(20).collect();
    if s.is_empty() {
        "the end of the program".to_string()
    } else {
        format!("{s:?}")
    }
}

/// A lex or parse error: what was expected, where, and what came instead.
fn expected_at(source: &str, expected: &str, found: &str) -> String {
    format!(
        "expected {expected} at {} (found {})",
        at(source, found),
        snippet(found)
    )
}

fn describe_load_errors<P>(source: &str, errs: &jaq_core::load::Errors<&str, P>) -> String {
    use jaq_core::load::Error;
    let mut out = Vec::new();
    for (_, err) in errs {
        match err {
            Error::Io(items) => {
                for (path, e) in items {
                    out.push(format!("cannot load module {path:?}: {e}"));
                }
            }
            Error::Lex(items) => out.extend(
                items
                    .iter()
                    .map(|(expected, found)| expected_at(source, expected.as_str(), found)),
            ),
            Error::Parse(items) => out.extend(
                items
                    .iter()
                    .map(|(expected, found)| expected_at(source, expected.as_str(), found)),
            ),
        }
    }
    out.join("; ")
}

fn describe_compile_errors<P>(source: &str, errs: &jaq_core::compile::Errors<&str, P>) -> String {
    let mut out = Vec::new();
    for (_, items) in errs {
        for (name, undefined) in items {
            out.push(format!(
                "undefined {} {name} at {}",
                undefined.as_str(),
                at(source, name)
            ));
        }
    }
    out.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"type":"order.created","timestamp":"2026-11-30T00:00:00.000Z","data":{"id":7,"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}]}}"#;

    #[test]
    fn a_program_maps_the_event_to_one_value() {
        let p = Program::compile(
            r#"{kind: .type, order: .data.id, units: ([.data.items[].qty] | add)}"#,
        )
        .unwrap();
        assert_eq!(
            p.run(EVENT.as_bytes(), 1024).unwrap(),
            r#"{"kind":"order.created","order":7,"units":3}"#
        );
    }

    #[test]
    fn compile_errors_say_where() {
        let err = Program::compile("{a: .b").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = Program::compile(".a |\n nosuchfn(1)")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nosuchfn") && err.contains("line 2"), "{err}");
        assert_eq!(
            Program::compile(&" ".repeat(MAX_PROGRAM_BYTES + 1)).unwrap_err(),
            JqError::TooLong
        );
    }

    #[test]
    fn exactly_one_output_of_bounded_size() {
        let run = |src: &str| Program::compile(src).unwrap().run(EVENT.as_bytes(), 64);
        assert_eq!(run("empty").unwrap_err(), JqError::NoOutput);
        assert_eq!(run(".data.items[]").unwrap_err(), JqError::ManyOutputs);
        assert_eq!(
            run("[range(100)]").unwrap_err(),
            JqError::TooLarge { limit: 64 }
        );
        assert!(matches!(
            run(r#"error("no")"#).unwrap_err(),
            JqError::Runtime(_)
        ));
        assert!(matches!(
            Program::compile(".").unwrap().run(b"{", 64).unwrap_err(),
            JqError::Input(_)
        ));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}.{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(Program::compile(&deep).unwrap_err(), JqError::TooDeep);
        // Brackets inside strings do not count.
        let quoted = format!("\"{}\"", "(".repeat(500));
        assert!(Program::compile(&quoted).is_ok());
        assert!(Program::compile(&format!("{}.{}", "[".repeat(10), "]".repeat(10))).is_ok());
    }
}
