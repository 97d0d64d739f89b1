//! `infra/template.yaml` as data: read with a YAML parser that keeps CloudFormation's
//! short-form tags (`!Ref`, `!Sub`, …), which become their long form (`Ref`, `Fn::Sub`, …).

use std::path::PathBuf;

use serde_json::{Value, json};

/// Where the template is.
pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

/// Parses a template, turning short-form tags into CloudFormation's long form.
pub fn parse_template(text: &str) -> Value {
    let yaml: serde_norway::Value = serde_norway::from_str(text).expect("template is YAML");
    long_form(yaml)
}

fn long_form(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).expect("YAML number"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_norway::to_string(&other)
                            .expect("YAML key")
                            .trim()
                            .to_string(),
                    };
                    (key, long_form(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let name = name.trim_start_matches('!');
            let value = long_form(tagged.value);
            match name {
                "Ref" | "Condition" => json!({ name: value }),
                // `!GetAtt Res.Attr` is the string form of `Fn::GetAtt: [Res, Attr]`.
                "GetAtt" => match value {
                    Value::String(s) => {
                        let (res, attr) = s.split_once('.').expect("!GetAtt Resource.Attribute");
                        json!({ "Fn::GetAtt": [res, attr] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): value }),
            }
        }
    }
}
