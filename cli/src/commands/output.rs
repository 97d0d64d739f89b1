//! What every command shares: printing an answer (as the API wrote it with `--json`, as
//! text otherwise) and reading a list a page at a time.

use reqwest::Method;
use serde_json::{Value, json};

use skyhook_cli::client::{ApiClient, CliError};

pub fn print_value(json_mode: bool, value: &Value) {
    if json_mode {
        println!("{value}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
}

/// Percent-encodes a query value (timestamps carry `:` and `+`).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads a paginated list: one page, or every page with `all`. `query` holds the filters
/// as `(name, value)`; returns the rows and the cursor of the next page, if any.
pub async fn list_pages(
    client: &ApiClient,
    path: &str,
    query: &[(&str, Option<String>)],
    limit: u32,
    cursor: Option<String>,
    all: bool,
) -> Result<(Vec<Value>, Option<String>), CliError> {
    let mut cursor = cursor;
    let mut rows = Vec::new();
    // A bound on pages, so a misbehaving server cannot keep the command looping forever.
    for _ in 0..100_000 {
        let mut url = format!("{path}?limit={limit}");
        for (name, value) in query {
            if let Some(v) = value {
                url.push_str(&format!("&{name}={}", encode(v)));
            }
        }
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", encode(c)));
        }
        let page = client.call(Method::GET, &url, None, &[]).await?;
        rows.extend(page["data"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if !all || cursor.is_none() {
            break;
        }
    }
    Ok((rows, cursor))
}

pub fn print_rows(
    json_mode: bool,
    rows: &[Value],
    cursor: &Option<String>,
    line: impl Fn(&Value) -> String,
) {
    if json_mode {
        println!("{}", json!({"data": rows, "next_cursor": cursor}));
    } else {
        for r in rows {
            println!("{}", line(r));
        }
        if let Some(c) = cursor {
            println!("more: --cursor {c}");
        }
    }
}

pub fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}
