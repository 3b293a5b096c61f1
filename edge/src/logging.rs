//! How the binaries log: `LOG_FORMAT=text` (the default, for people) or `json` (one JSON object
//! per line, for a log pipeline), filtered by `RUST_LOG`. Each answered request leaves one
//! `access` event, inside the request's span, so both formats carry its request id, method,
//! path, matched route, client id (once authenticated), status and duration.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields at the top
    /// level, and the request's fields under `span`.
    Json,
}

/// `LOG_FORMAT` / `--log-format`, shared by every binary.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LogArgs {
    /// The shape of log lines: `text` for people, `json` for one JSON object per line.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Installs the process's log subscriber, writing to stderr: `RUST_LOG` when set, else
/// `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::registry()
        .with(layer(format, std::io::stderr, std::io::stderr().is_terminal()).with_filter(filter))
        .init();
}

/// The formatting layer of `format`, writing to `writer` (the binaries pass stderr; tests a
/// capture, to read what an operator would); `ansi`: colours in the text format.
pub fn layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => fmt.with_ansi(ansi).boxed(),
        LogFormat::Json => fmt
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
}
