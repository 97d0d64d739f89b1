//! What every command shares: printing an answer (as the API wrote it with `--json`, as
//! text otherwise) and reading a list a page at a time.

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use skyhook_api_types::query::{DeliveriesQuery, DlqQuery, PageQuery, SubscribersQuery};
use skyhook_api_types::{Cursor, ListResponse};
use skyhook_cli::client::{ApiClient, CliError};
use skyhook_cli::progress::Progress;

/// Prints JSON compact on one line with `--json`, indented otherwise.
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

/// The query of a list route, whose cursor moves on page by page.
pub trait Paged: Serialize {
    fn cursor_mut(&mut self) -> &mut Option<Cursor>;
}

macro_rules! paged {
    ($($query:ty),*) => {
        $(impl Paged for $query {
            fn cursor_mut(&mut self) -> &mut Option<Cursor> {
                &mut self.cursor
            }
        })*
    };
}

paged!(SubscribersQuery, DeliveriesQuery, DlqQuery, PageQuery);

/// The rows of one page or of every page: decoded for the text output, and as the API wrote
/// them for `--json`.
pub struct Rows<T> {
    pub items: Vec<T>,
    pub json: Vec<Value>,
    /// The cursor of the page after the last one read; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Reads a paginated list from where `query`'s cursor points: one page, or with `all` every
/// page to the end.
pub async fn list_pages<T: DeserializeOwned, Q: Paged>(
    client: &ApiClient,
    path: &str,
    mut query: Q,
    all: bool,
) -> Result<Rows<T>, CliError> {
    let mut rows = Rows {
        items: Vec::new(),
        json: Vec::new(),
        next_cursor: None,
    };
    // A bound on pages, so a misbehaving server cannot keep the command looping forever.
    for _ in 0..100_000 {
        let page = client.get::<ListResponse<T>>(path, &query).await?;
        let as_sent: ListResponse<Value> = serde_json::from_str(page.raw())
            .map_err(|e| CliError::Failed(format!("unexpected answer from GET {path}: {e}")))?;
        rows.items.extend(page.body.data);
        rows.json.extend(as_sent.data);
        rows.next_cursor = page.body.next_cursor;
        match &rows.next_cursor {
            Some(c) if all => *query.cursor_mut() = Some(Cursor(c.clone())),
            _ => break,
        }
    }
    Ok(rows)
}

/// With `--json`, `{"data": [...], "next_cursor": ...}` of every row read; otherwise one
/// line per row, and the cursor to go on from when there is more.
pub fn print_rows<T>(json_mode: bool, rows: &Rows<T>, line: impl Fn(&T) -> String) {
    if json_mode {
        println!(
            "{}",
            json!({"data": rows.json, "next_cursor": rows.next_cursor})
        );
    } else {
        for r in &rows.items {
            println!("{}", line(r));
        }
        if let Some(c) = &rows.next_cursor {
            println!("more: --cursor {c}");
        }
    }
}

/// Calls a bulk route (redrive, recover) until it answers `complete`: each call does a
/// bounded slice of the work. `counts` reads an answer's two counts and `complete`; the
/// bar advances by their sum, and the sums of both are returned.
pub async fn until_complete<B: Serialize, T: DeserializeOwned>(
    client: &ApiClient,
    path: &str,
    body: &B,
    progress: &mut Progress,
    counts: impl Fn(&T) -> (usize, usize, bool),
) -> Result<(usize, usize), CliError> {
    let (mut first, mut second) = (0usize, 0usize);
    // A bound on calls, so a misbehaving server cannot keep the command looping forever.
    for _ in 0..10_000 {
        let out = client
            .send::<_, T>(Method::POST, path, Some(body), &[])
            .await?
            .body;
        let (a, b, complete) = counts(&out);
        first += a;
        second += b;
        progress.advance(a.saturating_add(b));
        if complete {
            break;
        }
    }
    progress.finish();
    Ok((first, second))
}
