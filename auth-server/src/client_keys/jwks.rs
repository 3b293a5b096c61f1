//! A client's JWKS document parsed into the public keys its assertions may be signed with.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, OctetKeyPairParameters, OctetKeyPairType, RSAKeyParameters,
    RSAKeyType,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// A JWKS document larger than this is refused, registered or fetched.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// At most this many keys in one document: a partner needs two during a rotation.
pub const MAX_KEYS: usize = 16;
/// The longest `kid` accepted.
pub const MAX_KID_CHARS: usize = 256;
/// Smallest RSA modulus accepted (NIST SP 800-57: 2048 bits until 2030).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus ring verifies with.
const MAX_RSA_BITS: usize = 8192;

/// Members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// One public key a client registered, with the algorithms it may verify.
///
/// The only way to get one is [`parse_jwks`], so every `ClientKey` has passed its checks.
pub struct ClientKey {
    kid: Option<String>,
    algorithms: &'static [Algorithm],
    kind: KeyKind,
    thumbprint: String,
    key: DecodingKey,
}

/// The key type and size, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// EC on P-256.
    P256,
    /// OKP Ed25519.
    Ed25519,
    /// RSA, with the modulus size in bits.
    Rsa(usize),
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::P256 => f.write_str("EC P-256"),
            KeyKind::Ed25519 => f.write_str("OKP Ed25519"),
            KeyKind::Rsa(bits) => write!(f, "RSA {bits}"),
        }
    }
}

impl ClientKey {
    /// The key's `kid`; `None` only for the single key of a one-key set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms an assertion signed with this key may name: one, except for an RSA key
    /// registered without `alg`, which verifies RS256 and PS256.
    pub fn algorithms(&self) -> &'static [Algorithm] {
        self.algorithms
    }

    /// Whether an assertion whose header names `alg` may be verified with this key.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// The key type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url), which identifies the key whatever its
    /// `kid`: what `client show` displays and what a partner can compute to compare.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The key for jsonwebtoken's `decode`.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .field("kind", &self.kind)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// Why a JWKS document was refused. Messages name the key (by position and `kid`) and the rule;
/// they quote at most short, escaped member names and values, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the JWKS document is not a JSON object with a \"keys\" array")]
    NotAJwks,
    #[error("the JWKS document has no usable signing key")]
    Empty,
    #[error("the JWKS document has {0} keys; at most {MAX_KEYS} are accepted")]
    TooManyKeys(usize),
    #[error("two keys have the kid {0}")]
    DuplicateKid(String),
    #[error("key {index}{}: {problem}", kid_suffix(.kid))]
    Key {
        /// The key's position in the `keys` array, from 0.
        index: usize,
        /// Its `kid` when it has one, quoted and shortened for display.
        kid: Option<String>,
        problem: KeyProblem,
    },
}

/// What is wrong with one key of a JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("not a JSON object")]
    NotAnObject,
    #[error(
        "this is a private key (it has the member \"{0}\"): register only the public key, and \
         since the private key has been shared, ask the partner to generate a new key pair"
    )]
    PrivateKey(&'static str),
    #[error(
        "symmetric (kty \"oct\") keys are not accepted: private_key_jwt needs a public key, and \
         a shared secret must not be stored as one"
    )]
    Symmetric,
    #[error("the key is not for signatures ({0}); register signing keys only")]
    NotForSignatures(String),
    #[error("unsupported kty {0} (expected \"EC\", \"OKP\" or \"RSA\")")]
    UnsupportedKeyType(String),
    #[error("unsupported crv {0} (expected \"P-256\" for EC, \"Ed25519\" for OKP)")]
    UnsupportedCurve(String),
    #[error("alg {0} is not a public-key signature algorithm and is never accepted")]
    ForbiddenAlg(String),
    #[error("unsupported alg {0} (accepted: ES256, EdDSA, RS256, PS256)")]
    UnsupportedAlg(String),
    #[error("alg {alg} does not fit a {kty} key")]
    AlgMismatch { alg: String, kty: &'static str },
    #[error("the member \"{0}\" is missing or not a string")]
    MissingMember(&'static str),
    #[error("the member \"{0}\" is invalid: {1}")]
    InvalidMember(&'static str, &'static str),
    #[error("the RSA modulus has {0} bits; at least {MIN_RSA_BITS} are required")]
    RsaTooSmall(usize),
    #[error("the RSA modulus has {0} bits; at most {MAX_RSA_BITS} are supported")]
    RsaTooLarge(usize),
    #[error("a kid is required when the set has more than one key")]
    MissingKid,
}

impl KeyProblem {
    /// Problems that make a fetched document unusable as a whole: it publishes a secret, which
    /// the partner must learn about rather than have quietly skipped.
    fn publishes_a_secret(&self) -> bool {
        matches!(self, KeyProblem::PrivateKey(_) | KeyProblem::Symmetric)
    }
}

fn kid_suffix(kid: &Option<String>) -> String {
    kid.as_ref()
        .map(|kid| format!(" (kid {kid})"))
        .unwrap_or_default()
}

/// A string from the document, quoted, escaped and shortened so that it is safe to log.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    let mut short: String = text.chars().take(MAX).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// Parses a client's registered JWKS document, strictly: any key that is not a usable public
/// signature key refuses the whole document, with a message for the administrator.
///
/// Accepted keys: EC P-256 (ES256), OKP Ed25519 (EdDSA) and RSA of at least 2048 bits. An RSA
/// key's `alg` decides between RS256 and PS256; without `alg` it verifies both, because partner
/// tooling often leaves `alg` out and both are sound with the same key. A `kid` may be left out
/// only by the single key of a one-key set.
pub fn parse_jwks(text: &str) -> Result<Vec<ClientKey>, JwksError> {
    parse(text.as_bytes(), Mode::Registered)
}

/// Parses a JWKS fetched from a client's `jwks_uri`. Published sets often hold keys for other
/// purposes (encryption keys, other curves), so keys that are simply not for us are skipped;
/// a published private or symmetric key still refuses the whole document.
pub(crate) fn parse_published_jwks(body: &[u8]) -> Result<Vec<ClientKey>, JwksError> {
    parse(body, Mode::Published)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Registered,
    Published,
}

fn parse(body: &[u8], mode: Mode) -> Result<Vec<ClientKey>, JwksError> {
    if body.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    let mut document: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| JwksError::NotAJwks)?;
    let Some(Value::Array(entries)) = document.remove("keys") else {
        return Err(JwksError::NotAJwks);
    };
    if entries.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys(entries.len()));
    }
    let mut keys = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str).map(shown);
        match parse_key(entry) {
            Ok(key) => keys.push(key),
            Err(problem) if mode == Mode::Published && !problem.publishes_a_secret() => {
                tracing::debug!(index, %problem, "skipping a key of a fetched JWKS");
            }
            Err(problem) => {
                return Err(JwksError::Key {
                    index,
                    kid,
                    problem,
                });
            }
        }
    }
    if keys.is_empty() {
        return Err(JwksError::Empty);
    }
    if keys.len() > 1
        && let Some(index) = keys.iter().position(|key| key.kid.is_none())
    {
        return Err(JwksError::Key {
            index,
            kid: None,
            problem: KeyProblem::MissingKid,
        });
    }
    for (i, key) in keys.iter().enumerate() {
        if let Some(kid) = key.kid()
            && keys[..i].iter().any(|other| other.kid() == Some(kid))
        {
            return Err(JwksError::DuplicateKid(shown(kid)));
        }
    }
    Ok(keys)
}

fn parse_key(entry: &Value) -> Result<ClientKey, KeyProblem> {
    let Value::Object(jwk) = entry else {
        return Err(KeyProblem::NotAnObject);
    };
    // Private members first: whatever else is wrong, a pasted private key is what to report.
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(KeyProblem::PrivateKey(member));
    }
    let kty = string_member(jwk, "kty")?;
    if kty == "oct" {
        return Err(KeyProblem::Symmetric);
    }
    check_use(jwk)?;
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.chars().count() <= MAX_KID_CHARS => {
            Some(kid.clone())
        }
        Some(_) => {
            return Err(KeyProblem::InvalidMember(
                "kid",
                "must be a non-empty string of at most 256 characters",
            ));
        }
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(alg)) => Some(alg.as_str()),
        Some(_) => return Err(KeyProblem::InvalidMember("alg", "must be a string")),
    };
    if let Some(alg) = alg
        && (alg == "none" || alg.starts_with("HS"))
    {
        return Err(KeyProblem::ForbiddenAlg(shown(alg)));
    }
    let (params, kind, algorithms, key) = match kty {
        "EC" => {
            let crv = string_member(jwk, "crv")?;
            if crv != "P-256" {
                return Err(KeyProblem::UnsupportedCurve(shown(crv)));
            }
            let algorithms = algorithms_for(alg, "EC", &[Algorithm::ES256])?;
            let x = coordinate(jwk, "x")?;
            let y = coordinate(jwk, "y")?;
            let key = DecodingKey::from_ec_components(x, y)
                .map_err(|_| KeyProblem::InvalidMember("x", "not a P-256 coordinate"))?;
            let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: x.to_owned(),
                y: y.to_owned(),
            });
            (params, KeyKind::P256, algorithms, key)
        }
        "OKP" => {
            let crv = string_member(jwk, "crv")?;
            if crv != "Ed25519" {
                return Err(KeyProblem::UnsupportedCurve(shown(crv)));
            }
            let algorithms = algorithms_for(alg, "OKP", &[Algorithm::EdDSA])?;
            let x = coordinate(jwk, "x")?;
            let key = DecodingKey::from_ed_components(x)
                .map_err(|_| KeyProblem::InvalidMember("x", "not an Ed25519 public key"))?;
            let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: x.to_owned(),
            });
            (params, KeyKind::Ed25519, algorithms, key)
        }
        "RSA" => {
            let algorithms = algorithms_for(alg, "RSA", &[Algorithm::RS256, Algorithm::PS256])?;
            let n = string_member(jwk, "n")?;
            let e = string_member(jwk, "e")?;
            let bits = check_rsa(n, e)?;
            let key = DecodingKey::from_rsa_components(n, e)
                .map_err(|_| KeyProblem::InvalidMember("n", "not base64url"))?;
            let params = AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: n.to_owned(),
                e: e.to_owned(),
            });
            (params, KeyKind::Rsa(bits), algorithms, key)
        }
        other => return Err(KeyProblem::UnsupportedKeyType(shown(other))),
    };
    let thumbprint = keys::thumbprint(&Jwk {
        common: CommonParameters::default(),
        algorithm: params,
    })
    .map_err(|_| KeyProblem::InvalidMember("kty", "no RFC 7638 thumbprint"))?;
    Ok(ClientKey {
        kid,
        algorithms,
        kind,
        thumbprint,
        key,
    })
}

/// `use` must be `sig` when present, and `key_ops`, when present, must allow `verify`.
fn check_use(jwk: &Map<String, Value>) -> Result<(), KeyProblem> {
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) => {
            return Err(KeyProblem::NotForSignatures(format!("use {}", shown(u))));
        }
        Some(_) => return Err(KeyProblem::InvalidMember("use", "must be a string")),
    }
    match jwk.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) if ops.iter().any(|op| op == "verify") => Ok(()),
        Some(Value::Array(_)) => Err(KeyProblem::NotForSignatures(
            "key_ops does not include \"verify\"".to_owned(),
        )),
        Some(_) => Err(KeyProblem::InvalidMember("key_ops", "must be an array")),
    }
}

/// The algorithms a key of type `kty` verifies: `allowed` when it declares no `alg`, else the one
/// it declares, which must be among them.
fn algorithms_for(
    alg: Option<&str>,
    kty: &'static str,
    allowed: &'static [Algorithm],
) -> Result<&'static [Algorithm], KeyProblem> {
    let Some(alg) = alg else {
        return Ok(allowed);
    };
    let declared: &'static [Algorithm] = match alg {
        "ES256" => &[Algorithm::ES256],
        "EdDSA" => &[Algorithm::EdDSA],
        "RS256" => &[Algorithm::RS256],
        "PS256" => &[Algorithm::PS256],
        other => return Err(KeyProblem::UnsupportedAlg(shown(other))),
    };
    if allowed.contains(&declared[0]) {
        Ok(declared)
    } else {
        Err(KeyProblem::AlgMismatch {
            alg: shown(alg),
            kty,
        })
    }
}

fn string_member<'a>(
    jwk: &'a Map<String, Value>,
    member: &'static str,
) -> Result<&'a str, KeyProblem> {
    jwk.get(member)
        .and_then(Value::as_str)
        .ok_or(KeyProblem::MissingMember(member))
}

/// A 32-byte base64url member (a P-256 coordinate or an Ed25519 public key).
fn coordinate<'a>(
    jwk: &'a Map<String, Value>,
    member: &'static str,
) -> Result<&'a str, KeyProblem> {
    let text = string_member(jwk, member)?;
    match URL_SAFE_NO_PAD.decode(text) {
        Ok(bytes) if bytes.len() == 32 => Ok(text),
        Ok(_) => Err(KeyProblem::InvalidMember(member, "must be 32 bytes")),
        Err(_) => Err(KeyProblem::InvalidMember(
            member,
            "not base64url without padding",
        )),
    }
}

/// Checks an RSA public key's components as ring will use them, so that a key that could never
/// verify anything is refused when registered rather than failing every assertion. Returns the
/// modulus size in bits.
fn check_rsa(n: &str, e: &str) -> Result<usize, KeyProblem> {
    let n = URL_SAFE_NO_PAD
        .decode(n)
        .map_err(|_| KeyProblem::InvalidMember("n", "not base64url without padding"))?;
    let e = URL_SAFE_NO_PAD
        .decode(e)
        .map_err(|_| KeyProblem::InvalidMember("e", "not base64url without padding"))?;
    // RFC 7518 §6.3.1: minimal big-endian encodings; ring refuses leading zeros too.
    let Some(&first) = n.first().filter(|&&b| b != 0) else {
        return Err(KeyProblem::InvalidMember(
            "n",
            "must not be empty or start with a zero octet",
        ));
    };
    let bits = n.len() * 8 - first.leading_zeros() as usize;
    if bits < MIN_RSA_BITS {
        return Err(KeyProblem::RsaTooSmall(bits));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyProblem::RsaTooLarge(bits));
    }
    if e.first().is_none_or(|&b| b == 0) || e.len() > 4 {
        return Err(KeyProblem::InvalidMember(
            "e",
            "must be a minimal encoding of at most 32 bits",
        ));
    }
    let exponent = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if exponent < 3 || exponent % 2 == 0 {
        return Err(KeyProblem::InvalidMember("e", "must be odd and at least 3"));
    }
    Ok(bits)
}

/// The keys of one document, shared by every lookup.
#[derive(Debug)]
pub(crate) struct KeySet {
    keys: Vec<Arc<ClientKey>>,
}

impl KeySet {
    pub(crate) fn new(keys: Vec<ClientKey>) -> KeySet {
        KeySet {
            keys: keys.into_iter().map(Arc::new).collect(),
        }
    }

    /// The key an assertion's header `kid` names. A set of one key without a `kid` answers any
    /// `kid` (it can name no other key; the signature decides), and an assertion without a
    /// `kid` is only answered by a set of one key.
    pub(crate) fn select(&self, kid: Option<&str>) -> Option<Arc<ClientKey>> {
        if let [only] = self.keys.as_slice()
            && (kid.is_none() || only.kid.is_none())
        {
            return Some(Arc::clone(only));
        }
        let kid = kid?;
        self.keys.iter().find(|key| key.kid() == Some(kid)).cloned()
    }
}

#[cfg(test)]
mod tests;
