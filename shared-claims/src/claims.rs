//! RFC 9068 access-token claims and the time, issuer and audience rules applied to them.

use serde::{Deserialize, Serialize};

use crate::{ClientId, PartnerId, ScopeSet};

/// The JOSE `typ` our access tokens carry (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Small on purpose: tokens live minutes.
pub const DEFAULT_LEEWAY_SECS: i64 = 30;

/// Upper bound on the size of a compact JWS we are willing to parse. Our tokens are about 600
/// bytes; anything far larger is refused before base64 decoding or JSON parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// RFC 9068 §4: verifiers accept `at+jwt` and its full media type `application/at+jwt`.
/// Media types compare case-insensitively (RFC 7515 §4.1.9).
pub fn is_access_token_typ(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// One audience serializes as a plain string, several as an array, as most verifiers expect.
    pub fn from_list(mut list: Vec<String>) -> Audience {
        if list.len() == 1 {
            Audience::One(list.remove(0))
        } else {
            Audience::Many(list)
        }
    }

    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

/// The claims of an access token, exactly as the README lists them (RFC 9068 plus `client_id`,
/// `scope` and `partner_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The client id: this grant has no end user, so the subject is the client (RFC 9068 §2.2).
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub partner_id: PartnerId,
    /// RFC 8705 §3.1: the token is bound to the TLS client certificate the client authenticated
    /// with, and is accepted only over a connection that presents that certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim (RFC 7800) of a certificate-bound token (RFC 8705 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// base64url (no padding) of the SHA-256 of the certificate's DER.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// Why a token's claims were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("token issuer is not trusted")]
    WrongIssuer,
    #[error("token is not addressed to this audience")]
    WrongAudience,
    #[error("token subject does not match its client id")]
    SubjectMismatch,
}

impl AccessTokenClaims {
    /// Applies every rule that does not need a key: time window with `leeway`, issuer, audience
    /// (unless `None`: the caller then checks it), and the `sub` = `client_id` invariant of the
    /// client-credentials grant.
    pub fn validate(
        &self,
        now: i64,
        leeway: i64,
        issuer: &str,
        audience: Option<&str>,
    ) -> Result<(), ClaimsError> {
        if self.iss != issuer {
            return Err(ClaimsError::WrongIssuer);
        }
        if audience.is_some_and(|a| !self.aud.contains(a)) {
            return Err(ClaimsError::WrongAudience);
        }
        if now >= self.exp.saturating_add(leeway) {
            return Err(ClaimsError::Expired);
        }
        if now.saturating_add(leeway) < self.nbf {
            return Err(ClaimsError::NotYetValid);
        }
        if now.saturating_add(leeway) < self.iat {
            return Err(ClaimsError::IssuedInFuture);
        }
        if self.sub != self.client_id.as_str() {
            return Err(ClaimsError::SubjectMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://auth.example".into(),
            sub: "cl_1".into(),
            aud: Audience::One("partner-api".into()),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: "j1".into(),
            client_id: ClientId::parse("cl_1").unwrap(),
            scope: ScopeSet::parse("orders:read").unwrap(),
            partner_id: PartnerId::parse("acme").unwrap(),
            cnf: None,
        }
    }

    const ISS: &str = "https://auth.example";

    #[test]
    fn a_fresh_token_is_valid() {
        assert_eq!(
            claims(1000).validate(1000, 30, ISS, Some("partner-api")),
            Ok(())
        );
    }

    #[test]
    fn time_window_honours_the_leeway() {
        let c = claims(1000);
        assert_eq!(c.validate(1600 + 29, 30, ISS, Some("partner-api")), Ok(()));
        assert_eq!(
            c.validate(1600 + 30, 30, ISS, Some("partner-api")),
            Err(ClaimsError::Expired)
        );
        assert_eq!(c.validate(1000 - 30, 30, ISS, Some("partner-api")), Ok(()));
        assert_eq!(
            c.validate(1000 - 31, 30, ISS, Some("partner-api")),
            Err(ClaimsError::NotYetValid)
        );
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let c = claims(1000);
        assert_eq!(
            c.validate(1000, 30, "https://evil", Some("partner-api")),
            Err(ClaimsError::WrongIssuer)
        );
        assert_eq!(
            c.validate(1000, 30, ISS, Some("other-api")),
            Err(ClaimsError::WrongAudience)
        );
        let mut many = c.clone();
        many.aud = Audience::Many(vec!["x".into(), "partner-api".into()]);
        assert_eq!(many.validate(1000, 30, ISS, Some("partner-api")), Ok(()));
    }

    #[test]
    fn typ_accepts_both_rfc_9068_forms() {
        assert!(is_access_token_typ("at+jwt"));
        assert!(is_access_token_typ("application/at+jwt"));
        assert!(is_access_token_typ("AT+JWT"));
        assert!(!is_access_token_typ("JWT"));
        assert!(!is_access_token_typ(""));
    }

    #[test]
    fn claims_of_the_wrong_json_type_do_not_parse() {
        let mut json = serde_json::to_value(claims(1000)).unwrap();
        json["exp"] = serde_json::json!("1600");
        assert!(serde_json::from_value::<AccessTokenClaims>(json).is_err());
        let mut missing = serde_json::to_value(claims(1000)).unwrap();
        missing.as_object_mut().unwrap().remove("exp");
        assert!(serde_json::from_value::<AccessTokenClaims>(missing).is_err());
    }

    #[test]
    fn serialized_claims_are_exactly_the_product_set() {
        let json = serde_json::to_value(claims(1000)).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "aud",
                "client_id",
                "exp",
                "iat",
                "iss",
                "jti",
                "nbf",
                "partner_id",
                "scope",
                "sub"
            ]
        );
        assert_eq!(json["aud"], "partner-api");
        assert_eq!(json["scope"], "orders:read");
    }
}
