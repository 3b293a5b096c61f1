//! What an admin command prints on stderr besides its one `error:` line: the warnings this
//! workspace's own code logs (a database file readable by others, say), each as one `warning:`
//! line, and nothing that a library logs (sqlx's slow-statement WARN while a command waits on a
//! lock, for example), which would bury the error an operator has to read. `RUST_LOG` set turns
//! this off: the command then logs as `serve` does, filtered by it.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The crates whose warnings are meant for the operator: this workspace's.
const OWN_CRATES: [&str; 6] = [
    "auth_server",
    "storage",
    "keys",
    "edge",
    "owner_only",
    "shared_limits",
];

/// Installs the admin commands' subscriber: our own warnings and errors as `warning:` lines on
/// stderr, everything else dropped.
pub fn init_operator_warnings() {
    let own = Targets::new().with_targets(OWN_CRATES.map(|c| (c, Level::WARN)));
    tracing_subscriber::registry()
        .with(OperatorWarnings.with_filter(own))
        .init();
}

/// Prints each event it sees as `warning: MESSAGE (FIELD: VALUE, …)`.
struct OperatorWarnings;

impl<S: Subscriber> Layer<S> for OperatorWarnings {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        eprintln!("warning: {}", warning_line(event));
    }
}

fn warning_line(event: &Event<'_>) -> String {
    let mut line = Line::default();
    event.record(&mut line);
    let mut text = line.message;
    if !line.fields.is_empty() {
        let _ = write!(text, " ({})", line.fields.join(", "));
    }
    // One event, one line, whatever a field holds.
    text.replace(['\n', '\r'], " ")
}

#[derive(Default)]
struct Line {
    message: String,
    fields: Vec<String>,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push(format!("{}: {value:?}", field.name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects the lines a layer like [`OperatorWarnings`] would print.
    struct Collect(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Collect {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            self.0.lock().unwrap().push(warning_line(event));
        }
    }

    #[test]
    fn only_our_warnings_pass_as_one_line_each() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let own = Targets::new().with_targets(OWN_CRATES.map(|c| (c, Level::WARN)));
        let subscriber =
            tracing_subscriber::registry().with(Collect(lines.clone()).with_filter(own));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "sqlx::query", elapsed = 1.2, "slow statement");
            tracing::info!(target: "storage", "connected");
            tracing::warn!(
                target: "storage",
                path = %"/data/auth.db",
                "database file is readable by others"
            );
            tracing::error!(target: "auth_server::store", error = "two\nlines", "failed");
        });
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "database file is readable by others (path: /data/auth.db)",
                "failed (error: two lines)",
            ]
        );
    }
}
