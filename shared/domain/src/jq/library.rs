//! The jq functions a tenant's program may call: an explicit allowlist of what only computes
//! on its input and arguments. Everything else jaq's libraries offer is refused by name, with
//! the reason, when the program is compiled, so saving, previewing, delivering and filtering
//! all refuse the same programs.

use jaq_core::data;
use jaq_core::load::parse::Def;
use jaq_core::native::Fun;
use jaq_json::Val;

type D = data::JustLut<Val>;

/// Functions (native or defined in jq) a program may call. Each takes only its input and
/// arguments and gives values back: no environment, files, clock, input stream, logging or
/// exit. A test holds every function jaq's libraries offer to this list or [`REFUSED`].
pub const ALLOWED: &[&str] = &[
    // jaq-core: definitions
    "empty",
    "error",
    "true",
    "false",
    "not",
    "select",
    "tostring",
    "range",
    "repeat",
    "recurse",
    "while",
    "until",
    "paths",
    "getpath",
    "setpath",
    "delpaths",
    "map",
    "map_values",
    "walk",
    "del",
    "first",
    "last",
    "nth",
    "join",
    "combinations",
    "to_entries",
    "from_entries",
    "with_entries",
    "isempty",
    "all",
    "any",
    // jaq-core: natives
    "error_empty",
    "path",
    "path_value",
    "keys_unsorted",
    "key_values",
    "limit",
    "skip",
    // jaq-std: definitions
    "null",
    "isboolean",
    "isnumber",
    "isstring",
    "isarray",
    "isobject",
    "nan",
    "infinite",
    "isnan",
    "isinfinite",
    "isfinite",
    "isnormal",
    "abs",
    "logb",
    "significand",
    "pow10",
    "drem",
    "nexttoward",
    "scalb",
    "gamma",
    "type",
    "values",
    "nulls",
    "booleans",
    "numbers",
    "finites",
    "normals",
    "strings",
    "arrays",
    "objects",
    "iterables",
    "scalars",
    "add",
    "min_by",
    "max_by",
    "min",
    "max",
    "unique_by",
    "unique",
    "pick",
    "keys",
    "flatten",
    "capture_of_match",
    "test",
    "scan_",
    "match",
    "capture",
    "split",
    "splits",
    "sub",
    "gsub",
    "scan",
    "todate",
    "fromdate",
    "@sh",
    "@text",
    "@html",
    "@htmld",
    "@uri",
    "@urid",
    "@base64",
    "@base64d",
    // jaq-std: natives
    "floor",
    "round",
    "ceil",
    "utf8bytelength",
    "explode",
    "implode",
    "ascii_downcase",
    "ascii_upcase",
    "reverse",
    "sort",
    "sort_by",
    "group_by",
    "min_by_or_empty",
    "max_by_or_empty",
    "startswith",
    "endswith",
    "ltrimstr",
    "rtrimstr",
    "trim",
    "ltrim",
    "rtrim",
    "escape_sh",
    "escape_html",
    "unescape_html",
    "encode_uri",
    "decode_uri",
    "encode_base64",
    "decode_base64",
    "matches",
    "split_matches",
    "split_",
    "fromdateiso8601",
    "todateiso8601",
    "strftime",
    "gmtime",
    "strptime",
    "mktime",
    // jaq-std: math natives
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cbrt",
    "cos",
    "cosh",
    "erf",
    "erfc",
    "exp",
    "exp10",
    "exp2",
    "expm1",
    "fabs",
    "j0",
    "j1",
    "lgamma",
    "log",
    "log10",
    "log1p",
    "log2",
    "nearbyint",
    "rint",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "tgamma",
    "trunc",
    "y0",
    "y1",
    "frexp",
    "ilogb",
    "modf",
    "atan2",
    "copysign",
    "fdim",
    "fmax",
    "fmin",
    "fmod",
    "hypot",
    "jn",
    "ldexp",
    "nextafter",
    "pow",
    "remainder",
    "scalbln",
    "yn",
    "fma",
    // jaq-json
    "fromjson",
    "tojson",
    "tobytes",
    "length",
    "contains",
    "has",
    "indices",
    "bsearch",
    "totype",
    "tonumber",
    "toboolean",
    "transpose",
    "in",
    "inside",
    "index",
    "rindex",
    "@json",
];

/// What a program may not use, and why: functions that read the process or the world outside
/// the event, write outside the program's answer, or stop the process. Some are not offered
/// by jaq at all (`input`, `$ENV`, …); they are named here so the refusal says why.
pub const REFUSED: &[(&str, &str)] = &[
    ("env", "it reads the process environment"),
    ("$ENV", "it reads the process environment"),
    (
        "now",
        "it reads the clock (a program's answer depends only on the event: use .timestamp)",
    ),
    ("localtime", "it reads the machine's time zone"),
    ("strflocaltime", "it reads the machine's time zone"),
    ("input", "it reads input beyond the event"),
    ("inputs", "it reads input beyond the event"),
    ("input_filename", "it reads the process's input"),
    ("input_line_number", "it reads the process's input"),
    ("$__loc__", "it reads the program's location"),
    ("$__prog_args", "it reads the process's arguments"),
    ("get_search_list", "it reads the module search path"),
    ("get_prog_origin", "it reads the file system"),
    ("get_jq_origin", "it reads the file system"),
    ("modulemeta", "it reads modules from the file system"),
    ("builtins", "it lists the process's functions"),
    ("debug", "it writes to the process's log"),
    ("debug_empty", "it writes to the process's log"),
    ("stderr", "it writes to the process's error stream"),
    ("stderr_empty", "it writes to the process's error stream"),
    ("halt", "it stops the process"),
    ("halt_error", "it stops the process"),
];

/// Why `name` (a function, or a variable with its `$`) is refused, if it is.
pub fn refused(name: &str) -> Option<&'static str> {
    REFUSED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

fn allowed(name: &str) -> bool {
    ALLOWED.contains(&name)
}

/// The definitions a program sees: those of jaq's libraries that are allowed.
pub(super) fn defs() -> impl Iterator<Item = Def<&'static str>> {
    all_defs().filter(|d| allowed(d.name))
}

/// The native functions a program sees: those of jaq's libraries that are allowed.
pub(super) fn funs() -> impl Iterator<Item = Fun<D>> {
    all_funs().filter(|f| allowed(f.0))
}

fn all_defs() -> impl Iterator<Item = Def<&'static str>> {
    jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
}

fn all_funs() -> impl Iterator<Item = Fun<D>> {
    jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new version of jaq that offers a new function fails here until it is decided.
    #[test]
    fn every_function_jaq_offers_is_decided() {
        let offered: Vec<String> = all_defs()
            .map(|d| d.name.to_string())
            .chain(all_funs().map(|f| f.0.to_string()))
            .collect();
        let undecided: Vec<&String> = offered
            .iter()
            .filter(|n| !allowed(n) && refused(n).is_none())
            .collect();
        assert!(undecided.is_empty(), "decide: {undecided:?}");
        // And the lists name only what is offered or known to be refused.
        for name in ALLOWED {
            assert!(offered.iter().any(|o| o == name), "{name} is not offered");
            assert!(
                refused(name).is_none(),
                "{name} is both allowed and refused"
            );
        }
    }

    #[test]
    fn the_definitions_kept_call_only_what_is_kept() {
        // Every allowed definition compiles against the allowed natives (the compiler
        // refuses a definition that calls something missing).
        let program = super::super::Program::compile(".");
        assert!(program.is_ok(), "{program:?}");
    }
}
