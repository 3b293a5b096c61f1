//! The partner API's counters, on its own `edge::Metrics` registry: refused credentials by
//! reason, and the introspection calls made to resolve API keys by outcome (the envelope counts
//! requests by route template and status, the JWKS cache its fetches). Reasons and outcomes are a
//! fixed set chosen here, never text from a token or key.

use edge::Metrics;
use metrics::Counter;
use shared_claims::ClaimsError;

use crate::verify::TokenError;

/// The name of the envelope's request counter (by `route` and `status`).
pub const REQUESTS: &str = "resource_requests_total";
const REJECTIONS: &str = "resource_token_rejections_total";
/// Introspection calls made to resolve API keys, by outcome (`active`, `inactive`,
/// `unavailable`): their sum over a minute is the load keys put on the token service.
pub const KEY_INTROSPECTIONS: &str = "resource_api_key_introspections_total";

/// Why a request's bearer token was refused, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer token (no `Authorization` header, or another scheme).
    Missing,
    /// Not a JWS, or an empty or non-ASCII credential.
    Malformed,
    /// A header other than `alg`, `typ: at+jwt` and `kid`.
    BadHeader,
    /// Signed by a key the JWKS does not hold.
    UnknownKey,
    BadSignature,
    /// Claims missing or of the wrong types.
    BadClaims,
    Expired,
    NotYetValid,
    IssuedInFuture,
    WrongIssuer,
    WrongAudience,
    SubjectMismatch,
    /// A certificate-bound token without its certificate.
    CertificateBinding,
    /// A valid token without the route's scope (403).
    InsufficientScope,
    /// Valid locally, inactive at the token service (online routes).
    Revoked,
    /// An API key that is malformed, unknown or inactive (401).
    WrongKey,
    /// Credentials that cannot be read as one: two `Authorization` headers, a key and a token,
    /// a key in both headers, two `X-API-Key` fields (400).
    Ambiguous,
    /// An API key the token service could not be asked about (503).
    KeyLookupUnavailable,
    /// An API key from an address locked out after too many wrong keys (429).
    LockedOut,
}

impl Rejection {
    const ALL: [Rejection; 19] = [
        Rejection::Missing,
        Rejection::Malformed,
        Rejection::BadHeader,
        Rejection::UnknownKey,
        Rejection::BadSignature,
        Rejection::BadClaims,
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::IssuedInFuture,
        Rejection::WrongIssuer,
        Rejection::WrongAudience,
        Rejection::SubjectMismatch,
        Rejection::CertificateBinding,
        Rejection::InsufficientScope,
        Rejection::Revoked,
        Rejection::WrongKey,
        Rejection::Ambiguous,
        Rejection::KeyLookupUnavailable,
        Rejection::LockedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Malformed => "malformed",
            Rejection::BadHeader => "bad_header",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::BadClaims => "bad_claims",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::IssuedInFuture => "issued_in_future",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::SubjectMismatch => "subject_mismatch",
            Rejection::CertificateBinding => "certificate_binding",
            Rejection::InsufficientScope => "insufficient_scope",
            Rejection::Revoked => "revoked",
            Rejection::WrongKey => "wrong_api_key",
            Rejection::Ambiguous => "ambiguous_credentials",
            Rejection::KeyLookupUnavailable => "api_key_lookup_unavailable",
            Rejection::LockedOut => "locked_out",
        }
    }

    /// The reason a verification failure is counted under.
    pub fn of(err: &TokenError) -> Rejection {
        match err {
            TokenError::Malformed(_) => Rejection::Malformed,
            TokenError::Header(_) => Rejection::BadHeader,
            TokenError::UnknownKey => Rejection::UnknownKey,
            TokenError::BadSignature => Rejection::BadSignature,
            TokenError::Claims(_) => Rejection::BadClaims,
            TokenError::Rejected(claims) => match claims {
                ClaimsError::Expired => Rejection::Expired,
                ClaimsError::NotYetValid => Rejection::NotYetValid,
                ClaimsError::IssuedInFuture => Rejection::IssuedInFuture,
                ClaimsError::WrongIssuer => Rejection::WrongIssuer,
                ClaimsError::WrongAudience => Rejection::WrongAudience,
                ClaimsError::SubjectMismatch => Rejection::SubjectMismatch,
            },
        }
    }
}

/// The partner API's metrics: its registry (for the envelope and the `/metrics` listener) and a
/// handle per rejection reason, registered once.
pub struct ApiMetrics {
    registry: Metrics,
    rejections: [Counter; Rejection::ALL.len()],
    key_introspections: KeyIntrospections,
}

/// The counters of the introspection calls made for API keys, one per outcome.
#[derive(Clone)]
pub struct KeyIntrospections {
    pub active: Counter,
    pub inactive: Counter,
    pub unavailable: Counter,
}

impl ApiMetrics {
    /// A registry for the partner API, counting requests too.
    pub fn new_registry() -> Metrics {
        Metrics::new("resource", Some(REQUESTS))
    }

    /// Counters in `registry` (no-ops when it is off).
    pub fn new(registry: Metrics) -> ApiMetrics {
        registry.describe_counter(
            REJECTIONS,
            "Requests refused for their bearer token, by reason",
        );
        let rejections = std::array::from_fn(|i| {
            registry.counter(REJECTIONS, &[("reason", Rejection::ALL[i].as_str())])
        });
        registry.describe_counter(
            KEY_INTROSPECTIONS,
            "Introspection calls made to resolve API keys, by outcome",
        );
        let outcome = |name| registry.counter(KEY_INTROSPECTIONS, &[("outcome", name)]);
        let key_introspections = KeyIntrospections {
            active: outcome("active"),
            inactive: outcome("inactive"),
            unavailable: outcome("unavailable"),
        };
        ApiMetrics {
            registry,
            rejections,
            key_introspections,
        }
    }

    pub fn registry(&self) -> &Metrics {
        &self.registry
    }

    /// The counter of `reason`, for code that counts without the state at hand.
    pub fn rejection(&self, reason: Rejection) -> &Counter {
        &self.rejections[reason as usize]
    }

    pub fn rejected(&self, reason: Rejection) {
        self.rejection(reason).increment(1);
    }

    /// The counters of introspection calls for API keys (for `crate::api_keys`).
    pub fn key_introspections(&self) -> &KeyIntrospections {
        &self.key_introspections
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter() {
        for (i, reason) in Rejection::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason:?}");
        }
        let metrics = ApiMetrics::new(ApiMetrics::new_registry());
        metrics.rejected(Rejection::Expired);
        metrics.rejected(Rejection::Expired);
        let text = metrics.registry().render();
        assert!(
            text.lines().any(|l| l
                == "resource_token_rejections_total{service=\"resource\",reason=\"expired\"} 2"),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l
                == "resource_token_rejections_total{service=\"resource\",reason=\"revoked\"} 0"),
            "{text}"
        );
    }
}
