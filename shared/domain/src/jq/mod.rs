//! Subscribers' jq programs. A `transform` maps `{"type", "timestamp", "data"}` to the body
//! sent, a `filter` decides whether an event goes to a subscriber; both are compiled when
//! saved and run with bounded time, memory and output. The language is jq as implemented by
//! `jaq`, limited to the functions of [`library::ALLOWED`]: a program computes on the event
//! and nothing else (no environment, files, clock, input stream, logging or exit).
//!
//! Compiling is checked here, in the domain: the program's size, how deep it nests (every
//! construct, see [`depth`]), and the functions it calls. Running is not: jq cannot be
//! interrupted (`def f: f; f` loops for ever) and a deep recursion overflows the stack, so
//! programs run in worker processes behind the [`crate::ports::ProgramRunner`] port
//! (`skyhook-process` has the sandbox that implements it).

mod depth;
pub mod library;

use std::fmt;
use std::sync::Arc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

use crate::model::{MAX_ERROR_TEXT_BYTES, cap_text};

/// The longest program a subscriber may hold, in bytes.
pub const MAX_PROGRAM_BYTES: usize = 16 * 1024;
/// How deeply a program may nest, in the units of [`depth`]: operators, nesting keywords and
/// blocks along the deepest path of its syntax tree. Real transforms use a few dozen.
pub const MAX_NESTING: usize = 256;
/// The stack a program is compiled on outside a worker: jaq's parser and compiler take at
/// most about 16 KiB per level of [`MAX_NESTING`] in a debug build (3 KiB optimised), so
/// this leaves room eight times over. Reserved, not used: only what the program needs is.
pub const COMPILE_STACK_BYTES: usize = 32 * 1024 * 1024;

/// Why a program did not compile or run. Every message is at most
/// [`MAX_ERROR_TEXT_BYTES`] (and says so when it was cut).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum JqError {
    #[error("the program is longer than {MAX_PROGRAM_BYTES} bytes")]
    TooLong,
    #[error(
        "the program nests too deeply: at most {MAX_NESTING} levels of brackets, operators and keywords such as if, try, reduce, def and as"
    )]
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

impl JqError {
    /// The same error with its text capped at [`MAX_ERROR_TEXT_BYTES`]: a program's
    /// `error(…)` can carry megabytes.
    pub fn capped(self) -> Self {
        let cap = |s: String| cap_text(s, MAX_ERROR_TEXT_BYTES);
        match self {
            JqError::Compile(s) => JqError::Compile(cap(s)),
            JqError::Input(s) => JqError::Input(cap(s)),
            JqError::Runtime(s) => JqError::Runtime(cap(s)),
            JqError::Unavailable(s) => JqError::Unavailable(cap(s)),
            other => other,
        }
    }

    /// Whether the failure is the sandbox's, not the program's: the run may be tried again
    /// later and should not count against the tenant.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, JqError::Unavailable(_))
    }
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
    /// Checks and compiles `source` on a thread of its own with [`COMPILE_STACK_BYTES`] of
    /// stack, so no program can overflow the caller's; the error says where and what is
    /// wrong, or which function is not allowed and why.
    pub fn compile(source: &str) -> Result<Self, JqError> {
        check_shape(source)?;
        let owned = source.to_string();
        let compiled = std::thread::Builder::new()
            .name("jq-compile".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn(move || compile_filter(&owned))
            .map_err(|e| JqError::Unavailable(format!("cannot start the compiler: {e}")))?
            .join()
            .map_err(|_| JqError::Unavailable("the compiler failed".into()))??;
        Ok(Program {
            source: source.into(),
            filter: Arc::new(compiled),
        })
    }

    /// [`Program::compile`] on the calling thread: only for a sandbox worker, whose main
    /// thread has the stack the nesting limit is sized for and whose crash costs nothing
    /// but itself.
    pub fn compile_here(source: &str) -> Result<Self, JqError> {
        check_shape(source)?;
        let filter = compile_filter(source)?;
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
    /// memory, so only a sandbox worker calls it on programs from outside.
    pub fn run(&self, input: &[u8], max_output: usize) -> Result<String, JqError> {
        self.run_uncapped(input, max_output)
            .map_err(JqError::capped)
    }

    fn run_uncapped(&self, input: &[u8], max_output: usize) -> Result<String, JqError> {
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

/// What is checked before jaq sees the program: its size and how deep it nests.
fn check_shape(source: &str) -> Result<(), JqError> {
    if source.len() > MAX_PROGRAM_BYTES {
        return Err(JqError::TooLong);
    }
    if depth::units(source) > MAX_NESTING {
        return Err(JqError::TooDeep);
    }
    Ok(())
}

/// Parses and compiles against the allowed library.
fn compile_filter(source: &str) -> Result<Filter, JqError> {
    let loader = Loader::new(library::defs());
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: source,
                path: (),
            },
        )
        .map_err(|errs| JqError::Compile(describe_load_errors(source, &errs)).capped())?;
    // `import "file" as $data;` loads nothing while compiling: the caller is to read the
    // file and bind it. Nothing is read here; such a program is refused.
    jaq_core::load::import(&modules, |_| Err("modules cannot be loaded".to_string()))
        .map_err(|errs| JqError::Compile(describe_load_errors(source, &errs)).capped())?;
    Compiler::default()
        .with_funs(library::funs())
        .compile(modules)
        .map_err(|errs| JqError::Compile(describe_compile_errors(source, &errs)).capped())
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
                for (path, _) in items {
                    out.push(format!(
                        "modules cannot be loaded (include or import of {path:?} at {})",
                        at(source, path)
                    ));
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
            out.push(match library::refused(name) {
                Some(why) => format!("{name} is not allowed at {}: {why}", at(source, name)),
                None => format!(
                    "undefined {} {name} at {}",
                    undefined.as_str(),
                    at(source, name)
                ),
            });
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
    fn deep_nesting_of_any_construct_is_refused_before_parsing() {
        for (open, close) in [
            ("(", ")"),
            ("[", "]"),
            ("- ", ""),
            ("try ", ""),
            ("if . then ", " end"),
            (". as $x | ", ""),
            ("def f: ", "; f"),
            ("reduce . as $x (.; ", ")"),
            ("label $out | ", ""),
            ("\"\\(", ")\""),
            (". | ", ""),
            ("1 + ", ""),
            (". // ", ""),
        ] {
            let n = MAX_NESTING;
            let deep = format!("{}.{}", open.repeat(n), close.repeat(n));
            assert_eq!(
                Program::compile(&deep).unwrap_err(),
                JqError::TooDeep,
                "{deep:.40}"
            );
            let fits = format!("{}.{}", open.repeat(20), close.repeat(20));
            assert!(Program::compile(&fits).is_ok(), "{fits:.60}");
        }
        // The issue's program: 8,000 minus signs.
        let minus = format!("{}.", "-".repeat(8000));
        assert_eq!(Program::compile(&minus).unwrap_err(), JqError::TooDeep);
        // Brackets inside strings do not count.
        let quoted = format!("\"{}\"", "(".repeat(500));
        assert!(Program::compile(&quoted).is_ok());
    }

    #[test]
    fn functions_that_reach_outside_the_event_are_refused_by_name() {
        for (program, name) in [
            ("env", "env"),
            ("env.HOME", "env"),
            ("$ENV.PATH", "$ENV"),
            ("now", "now"),
            ("localtime", "localtime"),
            (r#"strflocaltime("%c")"#, "strflocaltime"),
            ("input", "input"),
            ("[inputs]", "inputs"),
            ("input_filename", "input_filename"),
            ("$__loc__", "$__loc__"),
            ("debug", "debug"),
            (r#"debug("x")"#, "debug"),
            ("stderr", "stderr"),
            ("halt", "halt"),
            (r#"halt_error("x")"#, "halt_error"),
            ("get_search_list", "get_search_list"),
            ("error(env | tostring)", "env"),
        ] {
            let err = Program::compile(program).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{name} is not allowed")) && err.contains("it "),
                "{program}: {err}"
            );
        }
        let err = Program::compile(r#"include "x"; ."#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("modules cannot be loaded"), "{err}");
        let err = Program::compile(r#"import "x" as $x; ."#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("modules cannot be loaded"), "{err}");
        // What is allowed still works, user definitions included.
        let p = Program::compile("def twice(f): f | f; .data.id | twice(. * 2) | tostring");
        assert_eq!(p.unwrap().run(EVENT.as_bytes(), 64).unwrap(), r#""28""#);
    }

    #[test]
    fn a_huge_error_is_cut_to_the_limit() {
        let p = Program::compile("error([range(400000)])").unwrap();
        let err = p.run(EVENT.as_bytes(), 64).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < MAX_ERROR_TEXT_BYTES + 128, "{}", text.len());
        assert!(text.contains("cut to"), "{text:.100}");
    }
}
