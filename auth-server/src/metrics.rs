//! The token service's counters, on its own `edge::Metrics` registry: token requests by grant
//! type and outcome, and failed client authentications by reason. Every label value is one of a
//! fixed set chosen here: a client id, a grant type a client made up or an error description
//! never becomes a label.

use edge::Metrics;
use metrics::Counter;

use crate::oauth::error::{ErrorCode, OAuthError};

const TOKEN_REQUESTS: &str = "auth_token_requests_total";
const AUTH_FAILURES: &str = "auth_client_auth_failures_total";

/// The `grant_type` labels: the two grants, and `other` for anything else or nothing.
const GRANTS: [&str; 3] = ["client_credentials", "refresh_token", "other"];

/// The outcome of a token request, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Issued,
    /// Refused with this RFC 6749 §5.2 (or RFC 8707) error code.
    Refused(ErrorCode),
    /// Refused by the failed-authentication lockout (429).
    RateLimited,
}

impl Outcome {
    /// Every outcome, in the order of [`Outcome::index`].
    const COUNT: usize = ErrorCode::ALL.len() + 2;

    pub fn of<T>(result: &Result<T, OAuthError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Issued,
            Err(OAuthError::Client { code, .. } | OAuthError::Forbidden { code, .. }) => {
                Outcome::Refused(*code)
            }
            Err(OAuthError::TooManyAttempts { .. }) => Outcome::RateLimited,
            Err(OAuthError::BodyTooLarge { .. }) => Outcome::Refused(ErrorCode::InvalidRequest),
            Err(OAuthError::NoSigningKey) => Outcome::Refused(ErrorCode::TemporarilyUnavailable),
            Err(OAuthError::DatabaseUnavailable(_)) => {
                Outcome::Refused(ErrorCode::TemporarilyUnavailable)
            }
            Err(OAuthError::Unexpected(_)) => Outcome::Refused(ErrorCode::ServerError),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Issued => "issued",
            Outcome::Refused(code) => code.as_str(),
            Outcome::RateLimited => "rate_limited",
        }
    }

    fn index(self) -> usize {
        match self {
            Outcome::Issued => 0,
            Outcome::Refused(code) => 1 + code as usize,
            Outcome::RateLimited => 1 + ErrorCode::ALL.len(),
        }
    }

    fn all() -> impl Iterator<Item = Outcome> {
        std::iter::once(Outcome::Issued)
            .chain(ErrorCode::ALL.into_iter().map(Outcome::Refused))
            .chain(std::iter::once(Outcome::RateLimited))
    }
}

/// The `grant_type` label of a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    ClientCredentials = 0,
    RefreshToken = 1,
    /// Missing, unsupported, or never read (the request was refused before).
    Other = 2,
}

/// The token service's metrics: its registry (for the envelope and the `/metrics` listener) and
/// the handles of every token-request series, registered once so that counting a request is one
/// atomic add.
pub struct AuthMetrics {
    registry: Metrics,
    token_requests: [[Counter; Outcome::COUNT]; GRANTS.len()],
}

impl AuthMetrics {
    /// Counters in `registry` (no-ops when it is off).
    pub fn new(registry: Metrics) -> AuthMetrics {
        registry.describe_counter(
            TOKEN_REQUESTS,
            "Token endpoint requests, by grant type and outcome (issued, or the error code)",
        );
        registry.describe_counter(
            AUTH_FAILURES,
            "Failed client authentications (token, revocation, introspection), by reason",
        );
        let mut token_requests: [[Counter; Outcome::COUNT]; GRANTS.len()] =
            std::array::from_fn(|_| std::array::from_fn(|_| Counter::noop()));
        for (grant, counters) in GRANTS.iter().zip(token_requests.iter_mut()) {
            for outcome in Outcome::all() {
                counters[outcome.index()] = registry.counter(
                    TOKEN_REQUESTS,
                    &[("grant_type", grant), ("outcome", outcome.as_str())],
                );
            }
        }
        AuthMetrics {
            registry,
            token_requests,
        }
    }

    pub fn registry(&self) -> &Metrics {
        &self.registry
    }

    /// One token request.
    pub fn token_request(&self, grant: Grant, outcome: Outcome) {
        self.token_requests[grant as usize][outcome.index()].increment(1);
    }

    /// One failed client authentication. Failures are rare and already cost a hash comparison,
    /// so the handle is looked up each time rather than kept for every reason.
    /// `reason` is one of the fixed `AuthFailure` names, never anything a client sent.
    pub fn client_auth_failed(&self, reason: &'static str) {
        self.registry
            .counter(AUTH_FAILURES, &[("reason", reason)])
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_counter_and_label() {
        let all: Vec<Outcome> = Outcome::all().collect();
        assert_eq!(all.len(), Outcome::COUNT);
        for (i, outcome) in all.iter().enumerate() {
            assert_eq!(outcome.index(), i, "{outcome:?}");
        }
        for code in ErrorCode::ALL {
            // The label is the code as the client reads it in the body.
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }

    #[test]
    fn requests_are_counted_by_grant_and_outcome() {
        let metrics = AuthMetrics::new(Metrics::new("auth", None));
        metrics.token_request(Grant::ClientCredentials, Outcome::Issued);
        metrics.token_request(Grant::ClientCredentials, Outcome::Issued);
        metrics.token_request(
            Grant::Other,
            Outcome::Refused(ErrorCode::UnsupportedGrantType),
        );
        metrics.client_auth_failed("wrong_secret");
        let text = metrics.registry().render();
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(
            line("grant_type=\"client_credentials\",outcome=\"issued\"").as_deref(),
            Some("2"),
            "{text}"
        );
        assert_eq!(
            line("grant_type=\"other\",outcome=\"unsupported_grant_type\"").as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            line("reason=\"wrong_secret\"").as_deref(),
            Some("1"),
            "{text}"
        );
    }
}
