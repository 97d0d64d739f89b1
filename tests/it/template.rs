//! Holds `infra/template.yaml` to the code. A function whose environment lacks a variable
//! its `Config` requires, a variable no `Config` reads (a typo), a parameter default the
//! code would refuse, or a redrive policy that disagrees with the retry schedule would all
//! deploy cleanly and fail only in AWS; these tests fail first.
//!
//! The template is read with a YAML parser that keeps CloudFormation's short-form tags
//! (`!Ref`, `!Sub`, …) as tagged values; they are turned into their long form (`Ref`,
//! `Fn::Sub`, …) and the few intrinsics the checked values use are evaluated with the
//! parameters' defaults.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};
use skyhook_domain::config::{self, ConfigError, Env};
use skyhook_domain::retry::{RetrySchedule, parse_duration};
use skyhook_tests::template::{parse_template, template_path};

/// A Lambda function of the template and how its binary reads its settings.
struct Function {
    logical_id: &'static str,
    binary: &'static str,
    required: &'static [&'static str],
    from_env: fn(&dyn Env) -> Result<(), ConfigError>,
}

const FUNCTIONS: &[Function] = &[
    Function {
        logical_id: "IngestHttpFunction",
        binary: "ingest-http",
        required: skyhook_ingest::REQUIRED_ENV_HTTP,
        from_env: |env| skyhook_ingest::Config::from_env(env, true).map(drop),
    },
    Function {
        logical_id: "IngestInboundFunction",
        binary: "ingest-http",
        required: skyhook_ingest::REQUIRED_ENV_HTTP,
        from_env: |env| skyhook_ingest::Config::from_env(env, true).map(drop),
    },
    Function {
        logical_id: "IngestEventsFunction",
        binary: "ingest-events",
        required: skyhook_ingest::REQUIRED_ENV_EVENTS,
        from_env: |env| skyhook_ingest::Config::from_env(env, false).map(drop),
    },
    Function {
        logical_id: "DeliveryFunction",
        binary: "delivery",
        required: skyhook_delivery::REQUIRED_ENV,
        from_env: |env| skyhook_delivery::Config::from_env(env).map(drop),
    },
    Function {
        logical_id: "StatsFunction",
        binary: "stats",
        required: skyhook_delivery::stats::REQUIRED_ENV_STATS,
        from_env: |env| skyhook_delivery::stats::StatsConfig::from_env(env).map(drop),
    },
    Function {
        logical_id: "ApiFunction",
        binary: "api",
        required: skyhook_api::REQUIRED_ENV,
        from_env: |env| skyhook_api::Config::from_env(env).map(drop),
    },
];

/// Settings a deployment must not carry: the admin key itself would sit in plain text in
/// the function's configuration, so the template gives `SKYHOOK_ADMIN_KEY_SECRET` instead.
const FORBIDDEN_IN_AWS: &[&str] = &[config::ADMIN_KEY];

/// Settings a deployment leaves unset, because their default is what Lambda needs: a
/// function is its own jq worker.
const DEFAULT_IN_AWS: &[&str] = &[config::JQ_WORKER_BIN];

/// The template with parameter values (defaults unless overridden) to evaluate against.
struct Template {
    doc: Value,
    parameters: HashMap<String, String>,
}

impl Template {
    fn new(doc: Value) -> Self {
        let parameters = doc["Parameters"]
            .as_object()
            .expect("Parameters")
            .iter()
            .map(|(name, p)| (name.clone(), scalar_text(&p["Default"])))
            .collect();
        Self { doc, parameters }
    }

    fn load() -> Self {
        let text = std::fs::read_to_string(template_path()).expect("reading infra/template.yaml");
        Self::new(parse_template(&text))
    }

    fn resource(&self, logical_id: &str) -> &Value {
        let r = &self.doc["Resources"][logical_id];
        assert!(r.is_object(), "the template has no resource {logical_id}");
        r
    }

    /// Evaluates the intrinsics that settings use. A resource reference stands for a
    /// value only AWS knows, so it becomes a placeholder naming it.
    fn eval(&self, v: &Value) -> Value {
        match v {
            Value::Object(m) if m.len() == 1 => {
                let (name, arg) = m.iter().next().expect("one key");
                match name.as_str() {
                    "Ref" => {
                        let target = arg.as_str().expect("Ref names a string");
                        match self.parameters.get(target) {
                            Some(value) => Value::String(value.clone()),
                            None => Value::String(format!("<{target}>")),
                        }
                    }
                    "Fn::GetAtt" => Value::String(format!("<{}>", scalar_text(arg))),
                    "Fn::Sub" => {
                        Value::String(self.substitute(arg.as_str().expect("Fn::Sub string")))
                    }
                    "Fn::Split" => {
                        let delimiter = arg[0].as_str().expect("Fn::Split delimiter").to_string();
                        let text = self.eval(&arg[1]);
                        let text = text.as_str().expect("Fn::Split of a string");
                        Value::Array(
                            text.split(delimiter.as_str())
                                .map(|s| Value::String(s.to_string()))
                                .collect(),
                        )
                    }
                    "Fn::Length" => {
                        let list = self.eval(arg);
                        json!(list.as_array().expect("Fn::Length of a list").len())
                    }
                    _ => panic!("the template test cannot evaluate {name}"),
                }
            }
            other => other.clone(),
        }
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closing brace in Fn::Sub") + start;
            let name = &rest[start + 2..end];
            match self.parameters.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&format!("<{name}>")),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A function's environment as SAM builds it: the globals, then its own variables.
    fn environment(&self, logical_id: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for vars in [
            &self.doc["Globals"]["Function"]["Environment"]["Variables"],
            &self.resource(logical_id)["Properties"]["Environment"]["Variables"],
        ] {
            if let Some(vars) = vars.as_object() {
                for (name, value) in vars {
                    env.insert(name.clone(), scalar_text(&self.eval(value)));
                }
            }
        }
        env
    }

    fn property(&self, logical_id: &str, name: &str) -> Value {
        let own = &self.resource(logical_id)["Properties"][name];
        if own.is_null() {
            self.doc["Globals"]["Function"][name].clone()
        } else {
            own.clone()
        }
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join("."),
        other => panic!("not a scalar: {other}"),
    }
}

fn number(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().expect("a whole number"),
        Value::String(s) => s.parse().expect("a whole number"),
        other => panic!("not a number: {other}"),
    }
}

/// An `Env` that answers from a map and remembers every name asked for, so a `Config`
/// tells which settings it reads.
struct RecordingEnv {
    values: BTreeMap<String, String>,
    asked: RefCell<BTreeSet<String>>,
}

impl Env for RecordingEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_string());
        self.values.get(name).cloned()
    }
}

/// The settings a function's `Config` reads: all of them are asked for even when only the
/// required ones are set.
fn settings_read(f: &Function) -> BTreeSet<String> {
    let env = RecordingEnv {
        values: f
            .required
            .iter()
            .map(|n| (n.to_string(), "set".to_string()))
            .collect(),
        asked: RefCell::default(),
    };
    (f.from_env)(&env).unwrap_or_else(|e| panic!("{}: {e}", f.binary));
    env.asked.into_inner()
}

/// Every way the template disagrees with the code, as readable lines.
fn problems(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let known: BTreeSet<String> = FUNCTIONS.iter().flat_map(settings_read).collect();

    for f in FUNCTIONS {
        let resource = t.resource(f.logical_id);
        if resource["Type"] != "AWS::Serverless::Function" {
            problems.push(format!(
                "{} is not an AWS::Serverless::Function",
                f.logical_id
            ));
        }
        let build = &resource["Metadata"];
        if build["BuildMethod"] != "rust-cargolambda"
            || build["BuildProperties"]["Binary"] != f.binary
        {
            problems.push(format!(
                "{} must be built by rust-cargolambda from binary {}",
                f.logical_id, f.binary
            ));
        }
        let env = t.environment(f.logical_id);
        for name in f.required {
            if !env.contains_key(*name) {
                problems.push(format!(
                    "{} ({}) lacks {name}, which its Config requires",
                    f.logical_id, f.binary
                ));
            }
        }
        for name in settings_read(f) {
            if !env.contains_key(&name)
                && !FORBIDDEN_IN_AWS.contains(&name.as_str())
                && !DEFAULT_IN_AWS.contains(&name.as_str())
            {
                problems.push(format!(
                    "{} ({}) does not wire {name}, which its Config reads",
                    f.logical_id, f.binary
                ));
            }
        }
        for name in env.keys() {
            if FORBIDDEN_IN_AWS.contains(&name.as_str()) {
                problems.push(format!("{} sets {name} in plain text", f.logical_id));
            } else if name.starts_with("SKYHOOK_") && !known.contains(name) {
                problems.push(format!(
                    "{} sets {name}, which no function's Config reads",
                    f.logical_id
                ));
            }
        }
        // The parameter defaults must be values the function accepts at start-up.
        let values = RecordingEnv {
            values: env.clone(),
            asked: RefCell::default(),
        };
        if let Err(e) = (f.from_env)(&values) {
            problems.push(format!(
                "{} would not start with the template's defaults: {e}",
                f.logical_id
            ));
        }
    }

    // Every function that runs jq programs holds itself and its workers at their largest
    // inside its memory: a worker that grows to its cap must not get the function (and the
    // other tenants' messages of its batch) killed for memory.
    let largest_worker = number(&t.doc["Parameters"]["TransformMemoryMB"]["MaxValue"]);
    for f in FUNCTIONS {
        let env = t.environment(f.logical_id);
        if !env.contains_key(config::TRANSFORM_MEMORY_MB) {
            continue;
        }
        let workers: u64 = env.get(config::TRANSFORM_WORKERS).map_or(1, |w| {
            w.parse().expect("SKYHOOK_TRANSFORM_WORKERS is a number")
        });
        let memory = number(&t.property(f.logical_id, "MemorySize"));
        let needed = skyhook_process::PARENT_MEMORY_MIB + workers * largest_worker;
        if memory < needed {
            problems.push(format!(
                "{} has {memory} MB, under its own {} MB plus {workers} jq worker(s) of up to {largest_worker} MB",
                f.logical_id,
                skyhook_process::PARENT_MEMORY_MIB
            ));
        }
    }

    // Anyone may call the inbound route: it is served by a function of its own, with a
    // throttle and a concurrency of its own, so its flood takes nothing POST /v1/events needs.
    let route_of = |logical_id: &str, path: &str| {
        t.resource(logical_id)["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flat_map(|events| events.values())
            .find(|e| e["Properties"]["Path"] == path)
            .cloned()
    };
    if route_of("IngestHttpFunction", "/v1/inbound/{source_id}").is_some() {
        problems.push("IngestHttpFunction serves the inbound route beside /v1/events".into());
    }
    match route_of("IngestInboundFunction", "/v1/inbound/{source_id}") {
        Some(route) if route["Properties"]["RouteSettings"]["ThrottlingRateLimit"].is_object() => {}
        _ => problems.push(
            "IngestInboundFunction must serve the inbound route with a throttle of its own".into(),
        ),
    }
    for (function, parameter) in [
        ("DeliveryFunction", "DeliveryReservedConcurrency"),
        ("IngestHttpFunction", "IngestReservedConcurrency"),
        ("IngestInboundFunction", "InboundReservedConcurrency"),
        ("IngestEventsFunction", "IngestEventsReservedConcurrency"),
    ] {
        let reserved = &t.resource(function)["Properties"]["ReservedConcurrentExecutions"];
        if reserved["Fn::If"][1] != json!({"Ref": parameter}) {
            problems.push(format!(
                "{function} must reserve {parameter} of concurrency"
            ));
        }
    }
    let reserved = number(&t.doc["Parameters"]["DeliveryReservedConcurrency"]["Default"]);
    let most = number(&t.doc["Parameters"]["DeliveryMaxConcurrency"]["Default"]);
    if reserved < most {
        problems.push(format!(
            "DeliveryReservedConcurrency {reserved} is under DeliveryMaxConcurrency {most}"
        ));
    }

    let delivery_env = t.environment("DeliveryFunction");
    let schedule = delivery_env
        .get(config::RETRY_SCHEDULE)
        .map(|s| RetrySchedule::parse(s).expect("the template's retry schedule"))
        .unwrap_or_default();
    let redrive = &t.resource("DeliveryQueue")["Properties"]["RedrivePolicy"];
    let max_receive = number(&t.eval(&redrive["maxReceiveCount"]));
    if max_receive != u64::from(schedule.max_attempts()) {
        problems.push(format!(
            "DeliveryQueue maxReceiveCount is {max_receive}, but the retry schedule makes {} attempts",
            schedule.max_attempts()
        ));
    }
    if redrive["deadLetterTargetArn"] != json!({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}) {
        problems.push("DeliveryQueue must redrive to DeadLetterQueue".to_string());
    }

    let function_timeout = number(&t.property("DeliveryFunction", "Timeout"));
    let visibility = number(&t.resource("DeliveryQueue")["Properties"]["VisibilityTimeout"]);
    if visibility < 6 * function_timeout {
        problems.push(format!(
            "DeliveryQueue VisibilityTimeout {visibility} s is under 6 x the delivery timeout {function_timeout} s"
        ));
    }
    let longest_http = number(&t.doc["Parameters"]["HttpTimeoutSeconds"]["MaxValue"]);
    if longest_http >= function_timeout {
        problems.push(format!(
            "HttpTimeoutSeconds may reach {longest_http} s, not below the delivery timeout {function_timeout} s"
        ));
    }
    // A retry schedule is refused when it could outlive the queue's retention, which is
    // only true if the queue keeps messages that long.
    let retention = number(&t.resource("DeliveryQueue")["Properties"]["MessageRetentionPeriod"]);
    if retention != skyhook_domain::retry::QUEUE_RETENTION.as_secs() {
        problems.push(format!(
            "DeliveryQueue MessageRetentionPeriod {retention} s is not the {} s the retry schedule check assumes",
            skyhook_domain::retry::QUEUE_RETENTION.as_secs()
        ));
    }
    let largest_payload = number(&t.doc["Parameters"]["MaxPayloadBytes"]["MaxValue"]);
    for queue in ["DeliveryQueue", "DeadLetterQueue"] {
        let size = number(&t.resource(queue)["Properties"]["MaximumMessageSize"]);
        if size != config::MAX_MAX_PAYLOAD_BYTES as u64 || largest_payload > size {
            problems.push(format!(
                "{queue} MaximumMessageSize {size} must be the SQS maximum and hold the largest payload"
            ));
        }
    }
    problems
}

#[test]
fn the_template_agrees_with_the_code() {
    let problems = problems(&Template::load());
    assert!(
        problems.is_empty(),
        "infra/template.yaml disagrees with the code:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_default_retry_schedule_parameter_is_the_code_default_and_sets_max_receive_count() {
    let t = Template::load();
    assert_eq!(
        RetrySchedule::parse(&t.parameters["RetrySchedule"]).unwrap(),
        RetrySchedule::default()
    );
    let redrive = &t.resource("DeliveryQueue")["Properties"]["RedrivePolicy"];
    assert_eq!(
        number(&t.eval(&redrive["maxReceiveCount"])),
        u64::from(RetrySchedule::default().max_attempts())
    );
    // A deployer's own schedule moves maxReceiveCount with it.
    let mut custom = Template::load();
    custom
        .parameters
        .insert("RetrySchedule".into(), "1m,1h".into());
    assert_eq!(number(&custom.eval(&redrive["maxReceiveCount"])), 3);
    // And the default HTTP timeout is the code's default.
    assert_eq!(
        parse_duration(&t.environment("DeliveryFunction")[config::HTTP_TIMEOUT]).unwrap(),
        config::DEFAULT_HTTP_TIMEOUT
    );
}

#[test]
fn a_missing_required_variable_is_reported() {
    let mut t = Template::load();
    let vars = t.doc["Resources"]["DeliveryFunction"]["Properties"]["Environment"]["Variables"]
        .as_object_mut()
        .unwrap();
    assert!(vars.remove(config::DLQ_URL).is_some());
    let found = problems(&t);
    assert!(
        found
            .iter()
            .any(|p| p.contains("DeliveryFunction") && p.contains("lacks SKYHOOK_DLQ_URL")),
        "{found:?}"
    );
}

#[test]
fn a_variable_from_globals_counts_and_its_absence_everywhere_is_reported() {
    let mut t = Template::load();
    let globals = t.doc["Globals"]["Function"]["Environment"]["Variables"]
        .as_object_mut()
        .unwrap();
    assert!(globals.remove(config::TABLE).is_some());
    let found = problems(&t);
    // Every function that reads the ledger table (the stats consumer gets its changes from
    // the table's stream, not the table).
    for f in FUNCTIONS
        .iter()
        .filter(|f| f.required.contains(&config::TABLE))
    {
        assert!(
            found
                .iter()
                .any(|p| p.contains(f.logical_id) && p.contains("lacks SKYHOOK_TABLE")),
            "{}: {found:?}",
            f.logical_id
        );
    }
}

#[test]
fn a_max_receive_count_that_disagrees_with_the_schedule_is_reported() {
    let mut t = Template::load();
    t.doc["Resources"]["DeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] =
        json!(5);
    let found = problems(&t);
    assert!(
        found.iter().any(|p| p.contains("maxReceiveCount is 5")),
        "{found:?}"
    );
}

#[test]
fn jq_workers_that_outgrow_their_function_are_reported() {
    let mut t = Template::load();
    t.doc["Parameters"]["TransformMemoryMB"]["MaxValue"] = json!(128);
    let found = problems(&t);
    for f in [
        "IngestHttpFunction",
        "IngestEventsFunction",
        "DeliveryFunction",
        "ApiFunction",
    ] {
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(f) && p.contains("jq worker")),
            "{f}: {found:?}"
        );
    }
    let mut t = Template::load();
    t.doc["Resources"]["DeliveryFunction"]["Properties"]["Environment"]["Variables"]
        [config::TRANSFORM_WORKERS] = json!("3");
    assert!(
        problems(&t)
            .iter()
            .any(|p| p.starts_with("DeliveryFunction") && p.contains("3 jq worker")),
    );
}

#[test]
fn typos_plain_text_admin_keys_and_bad_defaults_are_reported() {
    let mut t = Template::load();
    let vars = t.doc["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
        .as_object_mut()
        .unwrap();
    vars.insert("SKYHOOK_SECRET_PREFX".into(), json!("x/"));
    vars.insert(config::ADMIN_KEY.into(), json!("sk_plain_text_0123456789"));
    t.parameters.insert("LogRetention".into(), "a month".into());
    let found = problems(&t);
    for expected in [
        "sets SKYHOOK_SECRET_PREFX, which no function's Config reads",
        "ApiFunction sets SKYHOOK_ADMIN_KEY in plain text",
        "would not start with the template's defaults: configuration SKYHOOK_LOG_RETENTION",
    ] {
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{expected}: {found:?}"
        );
    }
}

#[test]
fn short_form_tags_become_long_form_intrinsics() {
    let doc = parse_template(
        "A: !Ref X\nB: !GetAtt Q.Arn\nC: !Sub 'a-${X}'\nD: !If [Cond, [!Ref X], !Ref AWS::NoValue]\n",
    );
    assert_eq!(doc["A"], json!({"Ref": "X"}));
    assert_eq!(doc["B"], json!({"Fn::GetAtt": ["Q", "Arn"]}));
    assert_eq!(doc["C"], json!({"Fn::Sub": "a-${X}"}));
    assert_eq!(
        doc["D"],
        json!({"Fn::If": ["Cond", [{"Ref": "X"}], {"Ref": "AWS::NoValue"}]})
    );
    let t = Template::new(json!({"Parameters": {"X": {"Default": 7}}}));
    assert_eq!(t.eval(&doc["C"]), json!("a-7"));
}
