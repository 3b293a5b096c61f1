//! Prints your first page of orders from the partner API as JSON, calling it with an API key.
//!
//! Run it from the repository with `examples/run rust` (with `PARTNER_API_KEY` set), or copy it
//! into your own project with the `partner-client` crate, which sends the key in `X-API-Key` on
//! every call. There is no token to get or renew: a refused key stays refused.
//!
//! Settings come from the environment:
//!   PARTNER_API_URL   the API's base URL, e.g. https://api.example.com
//!   PARTNER_API_KEY   your API key, pak_... (never printed)

use std::process::ExitCode;
use std::time::Duration;

use partner_client::{ApiKeyConfig, Client, Error, PageRequest};

/// How many times a rate-limited (429) or unavailable (503) request is tried again, and the
/// longest wait we accept.
const RETRIES: u32 = 3;
const LONGEST_WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Errors never contain the key, so they are safe to print and log.
            eprintln!("error: {err}");
            eprintln!("{}", advice(&err));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let client = Client::with_api_key(ApiKeyConfig::from_env()?)?;
    let mut attempt = 0;
    let page = loop {
        match client.orders(&PageRequest::first()).await {
            // Too many requests, or the key cannot be checked right now: wait as long as the API
            // asks, then try again.
            Err(
                ref err @ (Error::RateLimited { retry_after } | Error::Unavailable { retry_after }),
            ) if attempt < RETRIES => {
                attempt += 1;
                let wait = retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(LONGEST_WAIT);
                let why = match err {
                    Error::RateLimited { .. } => "rate limited",
                    _ => "the partner API is unavailable (503)",
                };
                eprintln!("{why}; retrying in {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
            }
            other => break other?,
        }
    };
    // `Page<Order>` serializes as the API wrote it: {"items": [...], "next_cursor": ...}.
    let json = serde_json::to_string_pretty(&page).expect("a page serializes");
    println!("{json}");
    Ok(())
}

/// What to do about the errors a partner meets.
fn advice(err: &Error) -> &'static str {
    match err.oauth_error() {
        Some("invalid_token") => {
            "the API refused the key: check PARTNER_API_KEY (and PARTNER_API_URL)"
        }
        Some("insufficient_scope") => "your key lacks the orders:read scope; ask your contact",
        _ => match err {
            Error::Config(_) => "set PARTNER_API_URL and PARTNER_API_KEY",
            Error::RateLimited { .. } => "still rate limited; try again later",
            Error::Unavailable { .. } => "the API is still unavailable; try again later",
            Error::Transport(_) => "check PARTNER_API_URL and your network",
            _ => "see the error above",
        },
    }
}
