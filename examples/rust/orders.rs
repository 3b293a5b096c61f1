//! Prints your first page of orders from the partner API as JSON.
//!
//! Run it from the repository with `examples/run rust`, or copy it into your own project with
//! the `partner-client` crate, which does the work: it gets an access token with your client id
//! and secret, keeps it until shortly before it expires (renewing it in one request however
//! many tasks share the client), and retries once with a new token when the API says the token
//! is no longer valid.
//!
//! Settings come from the environment:
//!   PARTNER_TOKEN_URL      the token endpoint, e.g. https://auth.example.com/oauth2/token
//!   PARTNER_API_URL        the API's base URL, e.g. https://api.example.com
//!   PARTNER_CLIENT_ID      your client id
//!   PARTNER_CLIENT_SECRET  your client secret (never printed)

use std::process::ExitCode;
use std::time::Duration;

use partner_client::{Client, Config, Error, PageRequest};

/// How many times a rate-limited request is tried again, and the longest wait we accept.
const RATE_LIMIT_RETRIES: u32 = 3;
const LONGEST_WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Errors never contain the secret or a token, so they are safe to print and log.
            eprintln!("error: {err}");
            eprintln!("{}", advice(&err));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let client = Client::new(Config::from_env()?)?;
    let mut attempt = 0;
    let page = loop {
        match client.orders(&PageRequest::first()).await {
            // Too many requests: wait as long as the API asks, then try again.
            Err(Error::RateLimited { retry_after }) if attempt < RATE_LIMIT_RETRIES => {
                attempt += 1;
                let wait = retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(LONGEST_WAIT);
                eprintln!("rate limited; retrying in {} s", wait.as_secs());
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
        Some("invalid_client") => "check PARTNER_CLIENT_ID and PARTNER_CLIENT_SECRET",
        Some("insufficient_scope") => "your client lacks the orders:read scope; ask your contact",
        Some("invalid_token") => "the API refused a fresh token: check PARTNER_API_URL",
        _ => match err {
            Error::Config(_) => {
                "set PARTNER_TOKEN_URL, PARTNER_API_URL, PARTNER_CLIENT_ID, PARTNER_CLIENT_SECRET"
            }
            Error::RateLimited { .. } => "still rate limited; try again later",
            Error::Transport(_) => "check the URLs and your network",
            _ => "see the error above",
        },
    }
}
