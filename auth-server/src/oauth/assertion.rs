//! Client assertions: `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, with the
//! audience and typing rules of RFC 10070, draft-ietf-oauth-rfc7523bis).
//!
//! The token endpoint calls [`peek`] to learn which client claims to be speaking and which key it
//! signed with, looks the key up (`client_keys::ClientKeys`), calls [`verify`], and finally
//! records the returned `jti` so that the assertion cannot be used twice. Every failure answers
//! `invalid_client`; [`AssertionError::as_str`] is what the audit trail records.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::client_keys::{ClientKey, KeyLookupError, MAX_KID_CHARS};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A longer assertion is refused before anything is decoded. An RSA-4096 signature and the usual
/// claims take about 1 KiB.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// The longest `jti` accepted (it is stored until the assertion expires).
pub const MAX_JTI_CHARS: usize = 256;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY: i64 = 30;
/// The longest an assertion may live (`exp - iat`), in seconds: an assertion is made for one
/// request, and its `jti` must be kept until it expires.
pub const DEFAULT_MAX_LIFETIME: i64 = 300;

/// Header members that would carry or point at a key (or change how the JWS is processed).
/// The key is always the one the client registered, so these are refused outright rather than
/// ignored: a verifier that honoured one would let the signer pick its own key.
const REFUSED_HEADER_MEMBERS: [&str; 6] = ["jku", "x5u", "jwk", "x5c", "crit", "b64"];

/// What an assertion says before its signature is checked. Nothing here is trusted: it only
/// tells the caller which client to look up and which of its keys to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    /// One of ES256, EdDSA, RS256, PS256.
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
}

impl Unverified {
    /// The client the assertion claims to come from: its `sub`, when `iss` is the same.
    pub fn claimed_client_id(&self) -> Option<&str> {
        match (&self.iss, &self.sub) {
            (Some(iss), Some(sub)) if iss == sub => Some(sub),
            _ => None,
        }
    }
}

/// What a verified assertion must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The authenticating client: `iss` and `sub` must both be exactly this.
    pub client_id: &'a str,
    /// Our issuer identifier (e.g. `https://auth.example.com`), the only acceptable audience.
    pub issuer: &'a str,
    /// The current time, seconds since the Unix epoch.
    pub now: i64,
    pub leeway: i64,
    pub max_lifetime: i64,
}

impl<'a> Expected<'a> {
    /// The expectations with [`DEFAULT_LEEWAY`] and [`DEFAULT_MAX_LIFETIME`].
    pub fn new(client_id: &'a str, issuer: &'a str, now: i64) -> Expected<'a> {
        Expected {
            client_id,
            issuer,
            now,
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }
}

/// A verified assertion. The caller must store `(client_id, jti)` until `exp` and refuse the
/// assertion if the pair is already there: a signature says who made an assertion, not that it
/// is being used for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    /// Seconds since the Unix epoch; after it (plus the leeway) the assertion is refused anyway,
    /// so the `jti` need not be kept longer.
    pub exp: i64,
}

/// Why an assertion was refused. The client is told only `invalid_client`; the messages name the
/// rule and never echo assertion content, so they are safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("the client assertion is malformed: {0}")]
    Malformed(&'static str),
    #[error("the client assertion header is not acceptable: {0}")]
    Header(&'static str),
    #[error("the client assertion algorithm is not acceptable: {0}")]
    Alg(&'static str),
    #[error("no registered key of the client matches the assertion")]
    UnknownKey,
    #[error("the client's keys are unavailable")]
    KeysUnavailable,
    #[error("the client assertion signature is invalid")]
    Signature,
    #[error("the client assertion's iss and sub must both be the client id")]
    Issuer,
    #[error("the client assertion's audience must be exactly our issuer identifier")]
    Audience,
    #[error("the client assertion has expired")]
    Expired,
    #[error("the client assertion is not valid yet")]
    NotYetValid,
    #[error("the client assertion lives longer than allowed")]
    Lifetime,
    #[error("the client assertion claims are invalid: {0}")]
    Claims(&'static str),
    /// Not produced here: for the caller, when the `jti` has been seen before.
    #[error("the client assertion has already been used")]
    Replayed,
}

impl AssertionError {
    /// A stable short reason for the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionError::Malformed(_) => "assertion_malformed",
            AssertionError::Header(_) => "assertion_header",
            AssertionError::Alg(_) => "assertion_alg",
            AssertionError::UnknownKey => "unknown_key",
            AssertionError::KeysUnavailable => "keys_unavailable",
            AssertionError::Signature => "assertion_signature",
            AssertionError::Issuer => "assertion_issuer",
            AssertionError::Audience => "assertion_audience",
            AssertionError::Expired => "assertion_expired",
            AssertionError::NotYetValid => "assertion_not_yet_valid",
            AssertionError::Lifetime => "assertion_lifetime",
            AssertionError::Claims(_) => "assertion_claims",
            AssertionError::Replayed => "assertion_replayed",
        }
    }
}

impl From<&KeyLookupError> for AssertionError {
    fn from(err: &KeyLookupError) -> Self {
        match err {
            KeyLookupError::UnknownKey => AssertionError::UnknownKey,
            _ => AssertionError::KeysUnavailable,
        }
    }
}

/// Structural checks before any key is looked up: size, three base64url parts, a header that
/// names an accepted algorithm and type and carries no key, and a JSON object as payload.
pub fn peek(assertion: &str) -> Result<Unverified, AssertionError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(AssertionError::Malformed("too long"));
    }
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed(
            "expected three dot-separated parts",
        ));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AssertionError::Malformed("header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|_| AssertionError::Malformed("header is not a JSON object"))?;
    if REFUSED_HEADER_MEMBERS
        .iter()
        .any(|member| header.contains_key(*member))
    {
        return Err(AssertionError::Header(
            "jku, x5u, jwk, x5c, crit and b64 are not accepted: the key is the registered one",
        ));
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => accepted_alg(alg)?,
        _ => return Err(AssertionError::Alg("alg is missing or not a string")),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(typ)) if is_client_assertion_typ(typ) => Some(typ.clone()),
        Some(_) => {
            return Err(AssertionError::Header(
                "typ must be absent, JWT or client-authentication+jwt",
            ));
        }
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.chars().count() <= MAX_KID_CHARS => {
            Some(kid.clone())
        }
        Some(_) => {
            return Err(AssertionError::Header(
                "kid must be a non-empty string of at most 256 characters",
            ));
        }
    };
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AssertionError::Malformed("payload is not base64url"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| AssertionError::Malformed("payload is not a JSON object"))?;
    let string_claim = |name| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(AssertionError::Malformed("iss and sub must be strings")),
    };
    Ok(Unverified {
        alg,
        kid,
        typ,
        iss: string_claim("iss")?,
        sub: string_claim("sub")?,
    })
}

/// The algorithms an assertion may be signed with. `none` and the HMAC algorithms are refused by
/// name: a client authenticating with a shared secret uses `client_secret_basic`, and an HMAC
/// "signed" with a public key is the classic algorithm-confusion forgery.
fn accepted_alg(alg: &str) -> Result<Algorithm, AssertionError> {
    match alg {
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        "RS256" => Ok(Algorithm::RS256),
        "PS256" => Ok(Algorithm::PS256),
        _ if alg.eq_ignore_ascii_case("none") => Err(AssertionError::Alg("alg none is refused")),
        _ if alg.starts_with("HS") => Err(AssertionError::Alg("HMAC algorithms are refused")),
        _ => Err(AssertionError::Alg(
            "alg must be ES256, EdDSA, RS256 or PS256",
        )),
    }
}

/// `typ` may be `JWT` (RFC 7523 assertions) or `client-authentication+jwt` (the explicit type of
/// RFC 10070), compared as media types: case-insensitively, with the `application/` prefix
/// optional (RFC 7515 §4.1.9). Anything else (`at+jwt`, a media type with parameters, other
/// explicit types) marks a token made for another purpose.
fn is_client_assertion_typ(typ: &str) -> bool {
    let subtype = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    subtype.eq_ignore_ascii_case("jwt") || subtype.eq_ignore_ascii_case("client-authentication+jwt")
}

/// The claims checked after the signature ([`peek`] has made sure the payload is a JSON object).
/// Times are JSON numbers, possibly with a fraction (RFC 7519 NumericDate).
#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<Number>,
    nbf: Option<Number>,
    iat: Option<Number>,
    jti: Option<String>,
}

/// Verifies `assertion` with the client's registered `key` and checks its claims against
/// `expect`.
///
/// - The algorithm comes from the registered key: the header's `alg` must be one the key
///   allows, and is never `none` or HMAC. The signature is checked by jsonwebtoken with our ring
///   provider.
/// - `iss` and `sub` are both the client id (RFC 7523 §3).
/// - `aud` is our issuer identifier and nothing else: the string itself, or an array holding
///   only it, compared exactly (RFC 10070). Our token endpoint URL, which RFC 7523 allowed, is
///   refused, and so is any array with more than one value. The reason is the audience
///   injection attacks that led to RFC 10070: a client that talks to several authorization
///   servers takes the audience from each server's metadata, so a malicious server can
///   advertise *our* token endpoint as its own, collect an assertion "for" it, and replay it here
///   to impersonate the client. A server cannot advertise our issuer identifier in the same way,
///   since clients check that a server's metadata names the issuer they fetched it from
///   (RFC 8414 §3.3); hence the issuer as the sole audience.
/// - `exp` is required and in the future; `nbf` and `iat`, when present, not in the future
///   (each with `expect.leeway`); the assertion lives at most `expect.max_lifetime`, measured
///   as `exp - iat`, or as `exp - now` (plus the leeway, for the partner's clock) without `iat`.
/// - `jti` is required, 1 to 256 characters, and returned for the replay check.
pub fn verify(
    assertion: &str,
    key: &ClientKey,
    expect: &Expected<'_>,
) -> Result<VerifiedAssertion, AssertionError> {
    let header = peek(assertion)?;
    if !key.allows(header.alg) {
        return Err(AssertionError::Alg(
            "alg is not one the registered key verifies",
        ));
    }
    keys::install_crypto_provider();
    let mut validation = Validation::new(header.alg);
    // Every claim is checked below, against `expect.now` rather than the system clock.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(assertion, key.decoding_key(), &validation)
        .map_err(|err| match err.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => AssertionError::Signature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::MissingAlgorithm => AssertionError::Alg("refused by the verifier"),
            ErrorKind::Json(_) => {
                AssertionError::Claims("claims are not a JSON object of the expected types")
            }
            _ => AssertionError::Malformed("cannot be decoded"),
        })?
        .claims;
    check_claims(claims, expect)
}

fn check_claims(
    claims: Claims,
    expect: &Expected<'_>,
) -> Result<VerifiedAssertion, AssertionError> {
    if claims.iss.as_deref() != Some(expect.client_id)
        || claims.sub.as_deref() != Some(expect.client_id)
    {
        return Err(AssertionError::Issuer);
    }
    let sole_audience = match &claims.aud {
        Some(Value::String(aud)) => Some(aud),
        Some(Value::Array(values)) => match values.as_slice() {
            [Value::String(aud)] => Some(aud),
            _ => None,
        },
        _ => None,
    };
    if sole_audience.is_none_or(|aud| aud != expect.issuer) {
        return Err(AssertionError::Audience);
    }
    let exp =
        numeric_date(claims.exp.as_ref())?.ok_or(AssertionError::Claims("exp is required"))?;
    let nbf = numeric_date(claims.nbf.as_ref())?;
    let iat = numeric_date(claims.iat.as_ref())?;
    let jti = claims
        .jti
        .ok_or(AssertionError::Claims("jti is required"))?;
    if jti.is_empty() || jti.chars().count() > MAX_JTI_CHARS {
        return Err(AssertionError::Claims("jti must have 1 to 256 characters"));
    }
    let (now, leeway) = (expect.now, expect.leeway);
    if now >= exp.saturating_add(leeway) {
        return Err(AssertionError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway))
        || iat.is_some_and(|iat| iat > now.saturating_add(leeway))
    {
        return Err(AssertionError::NotYetValid);
    }
    let too_long = match iat {
        Some(iat) => exp.saturating_sub(iat) > expect.max_lifetime,
        None => exp.saturating_sub(now) > expect.max_lifetime.saturating_add(leeway),
    };
    if too_long {
        return Err(AssertionError::Lifetime);
    }
    Ok(VerifiedAssertion { jti, exp })
}

/// A NumericDate in whole seconds (a fraction is dropped).
fn numeric_date(value: Option<&Number>) -> Result<Option<i64>, AssertionError> {
    let Some(value) = value else {
        return Ok(None);
    };
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f.floor() as i64)
        })
        .map(Some)
        .ok_or(AssertionError::Claims(
            "exp, nbf and iat must be numbers of seconds",
        ))
}

#[cfg(test)]
mod tests;
