//! `GET /audit[?window=24h]` on the admin endpoint: the audit report (JSON) over the window,
//! from the ledger, after a fresh scrape of every proxy so that the window ends now. Like
//! `/stat`, it reads and changes nothing.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use super::ledger::KEEP;
use crate::admin::Admin;
use crate::http_response::{query, respond, text};

const DEFAULT_WINDOW: &str = "24h";

pub async fn handle<B>(admin: &Admin, req: &Request<B>) -> Response<Full<Bytes>> {
    let written = query(req, "window").unwrap_or_else(|| DEFAULT_WINDOW.to_string());
    let window = match weft_api::duration::parse(&written) {
        Ok(w) if w >= Duration::from_secs(60) && w <= KEEP => w,
        Ok(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "window: from 1m to 7d (168h), e.g. 24h\n".into(),
            )
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("window: {e}\n")),
    };
    let published = admin.store.current();
    admin.stats.scrape_all(&published).await;
    let now = crate::stats::unix_now() as u64;
    let seen = admin.stats.ledger.window(window, now);
    let report = super::report::build(&published.model, &seen, &written, window.as_secs());
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    )
}
