//! Property-based fuzzing of `skyhook verify`: the library check behind it (`verify_request`,
//! `describe`, `read_saved`) with any headers, bodies, clocks and secrets, and a handful of
//! runs of the binary itself. No input panics; a refusal is a typed `Verdict::Invalid`, or
//! exit code 1 (does not verify) or 2 (bad usage or input) with a message, and no output
//! ever shows a secret.
//!
//! Every test is named `fuzz_…` (`make fuzz` selects them). Case counts default low enough
//! for `make test`; `PROPTEST_CASES` raises them (the binary runs stay few), and failures are
//! never persisted to files.

use skyhook_domain::fuzzing::config;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use skyhook_cli::listen::{SavedRequest, Verdict, describe, read_saved, verify_request};
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::{SignatureScheme, VerifyError, delivery_headers};

const BIN: &str = env!("CARGO_BIN_EXE_skyhook");

/// [`config`] with at most `cap` cases, however many `PROPTEST_CASES` asks for.
fn capped(default: u32, cap: u32) -> ProptestConfig {
    let mut c = config(default);
    c.cases = c.cases.min(cap);
    c
}

fn secret() -> impl Strategy<Value = SigningSecret> {
    prop::collection::vec(any::<u8>(), 24..=64).prop_map(|k| {
        let text = format!("whsec_{}", base64_standard(&k));
        SigningSecret::parse(&text).unwrap()
    })
}

fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// How a saved request was made: signed with the first secret or another, by which scheme,
/// when, and what was changed afterwards.
#[derive(Debug, Clone)]
struct Case {
    req: SavedRequest,
    secrets: Vec<SigningSecret>,
    /// The request is untouched and signed with one of `secrets`.
    genuine: bool,
    /// Seconds between the signature's timestamp and the clock the check uses.
    skew: i64,
    tolerance: Option<i64>,
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("webhook-id".to_string()),
        Just("webhook-timestamp".to_string()),
        Just("webhook-signature".to_string()),
        Just("x-webhook-id".to_string()),
        Just("x-webhook-timestamp".to_string()),
        Just("x-webhook-signature".to_string()),
        "[a-z-]{1,12}",
        "\\PC{0,8}",
    ]
}

fn header_noise() -> impl Strategy<Value = String> {
    prop_oneof![
        "v1,[A-Za-z0-9+/=]{0,50}",
        "(sha256|sha512)=[0-9a-fA-F]{0,130}",
        "[+-]?[0-9]{0,22}",
        "\\PC{0,30}",
        any::<String>(),
    ]
}

/// The clock of the library checks.
const NOW: i64 = 1_800_000_000;

fn case() -> impl Strategy<Value = Case> {
    case_at(NOW)
}

/// A case signed `skew` seconds before `now`.
fn case_at(now: i64) -> impl Strategy<Value = Case> {
    (
        secret(),
        secret(),
        0usize..3,
        prop::sample::select(vec![
            SignatureScheme::Standard,
            SignatureScheme::HexSha256,
            SignatureScheme::HexSha512,
        ]),
        prop_oneof!["evt_[0-9A-Za-z]{1,30}", "\\PC{0,20}"],
        prop_oneof![
            "\\{\"type\":\"[a-z.]{1,10}\",\"data\":\\{\\}\\}",
            "\\PC{0,60}",
            any::<String>()
        ],
        prop_oneof![
            Just(0i64),
            -10i64..10,
            prop_oneof![-20_000i64..-1000, 1000i64..20_000],
            any::<i64>()
        ],
        prop_oneof![
            Just(None),
            Just(Some(300i64)),
            Just(Some(0)),
            any::<i64>().prop_map(Some)
        ],
        any::<bool>(),
        prop::collection::vec((header_name(), header_noise()), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |(
                first,
                other,
                n_secrets,
                scheme,
                id,
                body,
                skew,
                tolerance,
                sign_with_first,
                noise,
                tamper_body,
                upper,
            )| {
                let ts = now.saturating_sub(skew);
                let signer = if sign_with_first { &first } else { &other };
                let mut headers: BTreeMap<String, String> = delivery_headers(
                    scheme,
                    std::slice::from_ref(signer),
                    &id,
                    ts,
                    body.as_bytes(),
                )
                .into_iter()
                .map(|(k, v)| {
                    (
                        if upper {
                            k.to_ascii_uppercase()
                        } else {
                            k.to_string()
                        },
                        v,
                    )
                })
                .collect();
                let touched = !noise.is_empty() || tamper_body;
                for (k, v) in noise {
                    headers.insert(k, v);
                }
                let secrets: Vec<SigningSecret> = match n_secrets {
                    0 => Vec::new(),
                    1 => vec![first],
                    _ => vec![other.clone(), first],
                };
                // Standard Webhooks signs the id too, and an empty one never verifies.
                let genuine = !touched
                    && (scheme != SignatureScheme::Standard || !id.is_empty())
                    && (sign_with_first || secrets.iter().any(|s| s == &other))
                    && !secrets.is_empty();
                Case {
                    req: SavedRequest {
                        method: "POST".into(),
                        path: "/hook".into(),
                        headers,
                        body: if tamper_body {
                            format!("{body} ")
                        } else {
                            body
                        },
                        received_at: "2027-01-15T08:00:00.000Z".into(),
                    },
                    secrets,
                    genuine,
                    skew,
                    tolerance,
                }
            },
        )
}

/// `read_saved` lower-cases header names; the library check is given what it would read.
fn as_read(req: &SavedRequest) -> SavedRequest {
    let mut r = req.clone();
    r.headers = r
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    r
}

fn no_secret_in(text: &str, secrets: &[SigningSecret]) -> Result<(), TestCaseError> {
    for s in secrets {
        prop_assert!(!text.contains(&s.expose()[6..]), "a secret in {text:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(capped(256, u32::MAX))]

    /// Any saved request against any secrets and clock: `Unchecked` without secrets, a
    /// genuine request within the tolerance verifies, an altered one does not, and the
    /// summary never shows a secret.
    #[test]
    fn fuzz_verify_request(case in case()) {
        let req = as_read(&case.req);
        let verdict = verify_request(&req, &case.secrets, NOW, case.tolerance);
        if case.secrets.is_empty() {
            prop_assert_eq!(&verdict, &Verdict::Unchecked);
        }
        let in_time = match case.tolerance {
            None => true,
            Some(t) => case.skew.unsigned_abs() <= t.max(0).unsigned_abs(),
        };
        if case.genuine && in_time {
            prop_assert!(matches!(verdict, Verdict::Verified(_)), "{verdict:?}");
        }
        match &verdict {
            Verdict::Verified(scheme) => {
                prop_assert_eq!(*scheme, req.scheme());
                prop_assert!(!case.secrets.is_empty());
            }
            Verdict::Invalid(e) => {
                prop_assert!(!case.secrets.is_empty());
                prop_assert!(matches!(
                    e,
                    VerifyError::MissingHeader
                        | VerifyError::InvalidTimestamp
                        | VerifyError::TimestampTooOld
                        | VerifyError::TimestampTooNew
                        | VerifyError::NoMatchingSignature
                ));
            }
            Verdict::Unchecked => prop_assert!(case.secrets.is_empty()),
        }
        let text = describe(&req, &verdict);
        no_secret_in(&text, &case.secrets)?;
        let expected_word = match verdict {
            Verdict::Verified(_) => "signature verified",
            Verdict::Invalid(_) => "SIGNATURE INVALID",
            Verdict::Unchecked => "not checked",
        };
        prop_assert!(text.contains(expected_word), "{text}");
    }
}

static FILES: AtomicUsize = AtomicUsize::new(0);

/// A temporary file of its own for each case, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "skyhook-fuzz-{}-{}.json",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("write a temporary file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What `skyhook verify` may be handed: a saved request, one with fields of the wrong type
/// or missing, JSON of another shape, or bytes that are not UTF-8.
fn saved_file(case: Case) -> impl Strategy<Value = Vec<u8>> {
    let good = serde_json::to_vec(&case.req).unwrap();
    prop_oneof![
        6 => Just(good),
        1 => ("\\PC{0,8}", prop_oneof![Just(serde_json::json!(1)), Just(serde_json::json!(null)), Just(serde_json::json!(["x"])), Just(serde_json::json!({"a": 1}))])
            .prop_map(move |(field, value)| {
                let mut v = serde_json::to_value(&case.req).unwrap();
                let key = ["method", "path", "headers", "body", "received_at"]
                    .into_iter()
                    .find(|k| field.contains(k))
                    .unwrap_or("headers");
                v[key] = value;
                serde_json::to_vec(&v).unwrap()
            }),
        1 => prop::collection::vec(any::<u8>(), 0..80),
        1 => Just(b"{\"method\": \"POST\"}".to_vec()),
    ]
}

proptest! {
    #![proptest_config(capped(256, u32::MAX))]

    /// `read_saved` on any file: a request with lower-case header names, or a message that
    /// names the file.
    #[test]
    fn fuzz_read_saved(bytes in case().prop_flat_map(saved_file)) {
        let file = TempFile::new(&bytes);
        match read_saved(&file.0) {
            Ok(req) => prop_assert!(req.headers.keys().all(|k| *k == k.to_ascii_lowercase())),
            Err(e) => prop_assert!(e.contains(&file.0.display().to_string()), "{e}"),
        }
    }
}

/// `--secret` values: the real ones, and ones that do not parse.
fn secret_args(case: &Case) -> impl Strategy<Value = Vec<String>> + use<> {
    let real: Vec<String> = case.secrets.iter().map(SigningSecret::expose).collect();
    prop_oneof![
        4 => Just(real.clone()),
        1 => "whsec_[A-Za-z0-9+/]{0,20}".prop_map(|s| vec![s]),
        1 => "[A-Za-z0-9!@#]{12,20}".prop_map(|s| vec![s]),
        1 => Just(Vec::new()),
    ]
}

/// The binary: exit 0 exactly when the library verifies the request as of now, 1 with
/// "signature does not verify" when it does not, 2 with a message for bad secrets and
/// unreadable files; never a panic, never a secret on stdout or stderr.
///
/// Each case starts a process, so there are a handful even when `make fuzz` raises
/// `PROPTEST_CASES` (which the `proptest!` macro would apply over any explicit count); the
/// other `PROPTEST_*` settings, the seed among them, still apply.
#[test]
fn fuzz_verify_binary() {
    let mut settings = proptest::test_runner::contextualize_config(capped(6, 24));
    settings.cases = capped(6, 24).cases;
    let strategy = (
        case_at(chrono::Utc::now().timestamp()).prop_flat_map(|c| {
            let files = saved_file(c.clone());
            let args = secret_args(&c);
            (files, args)
        }),
        any::<bool>(),
    );
    let result = proptest::test_runner::TestRunner::new(settings)
        .run(&strategy, |((bytes, secrets), ignore_age)| {
            run_verify(&bytes, &secrets, ignore_age)
        });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn run_verify(bytes: &[u8], secrets: &[String], ignore_age: bool) -> Result<(), TestCaseError> {
    let file = TempFile::new(bytes);
    let mut cmd = Command::new(BIN);
    cmd.arg("verify")
        .env_remove("SKYHOOK_API_URL")
        .env_remove("SKYHOOK_API_KEY");
    for s in secrets {
        cmd.arg("--secret").arg(s);
    }
    if ignore_age {
        cmd.arg("--ignore-age");
    }
    cmd.arg(&file.0);
    let out = cmd.output().expect("run skyhook");
    let code = out.status.code();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    prop_assert!(!stderr.contains("panicked"), "{stderr}");
    prop_assert!(matches!(code, Some(0..=2)), "exit {code:?}: {stderr}");
    for s in secrets {
        if let Some(body) = s
            .strip_prefix("whsec_")
            .filter(|b| b.len() >= 12)
            .or(Some(s.as_str()).filter(|s| s.len() >= 12))
        {
            prop_assert!(
                !stdout.contains(body) && !stderr.contains(body),
                "a --secret value was printed"
            );
        }
    }
    if code != Some(0) {
        prop_assert!(
            stderr.starts_with("error: ") && stderr.trim().len() > "error:".len(),
            "{stderr}"
        );
    }
    if secrets.is_empty() {
        // clap refuses a missing required --secret itself.
        prop_assert_eq!(code, Some(2));
        return Ok(());
    }
    let parsed: Result<Vec<SigningSecret>, _> =
        secrets.iter().map(|s| SigningSecret::parse(s)).collect();
    let Ok(parsed) = parsed else {
        prop_assert_eq!(code, Some(2), "{}", stderr);
        return Ok(());
    };
    match read_saved(&file.0) {
        Err(_) => prop_assert_eq!(code, Some(2), "{}", stderr),
        Ok(req) => {
            let now = chrono::Utc::now().timestamp();
            let tolerance = (!ignore_age).then_some(300);
            // A timestamp within a few seconds of the limit could flip between this
            // check and the binary's; those runs only need a sane exit.
            let near_limit = req
                .headers
                .get(req.scheme().header_names().timestamp)
                .and_then(|t| t.trim().parse::<i64>().ok())
                .is_some_and(|t| ((i128::from(now) - i128::from(t)).abs() - 300).abs() < 5);
            let verdict = verify_request(&req, &parsed, now, tolerance);
            if !near_limit {
                match verdict {
                    Verdict::Verified(_) => prop_assert_eq!(code, Some(0), "{}", stderr),
                    Verdict::Invalid(_) => {
                        prop_assert_eq!(code, Some(1), "{}", stderr);
                        prop_assert!(stderr.contains("signature does not verify"), "{stderr}");
                    }
                    Verdict::Unchecked => prop_assert_eq!(code, Some(2)),
                }
            }
        }
    }
    Ok(())
}
