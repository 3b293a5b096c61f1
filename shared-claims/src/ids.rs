//! Identifiers that appear in tokens. Both are parsed once at the edge and carried as types.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be 1 to {max} characters")]
    Length { kind: &'static str, max: usize },
    #[error("{kind} may contain only {allowed}")]
    Charset {
        kind: &'static str,
        allowed: &'static str,
    },
}

/// The partner (business) a client belongs to, such as `acme`: lowercase letters, digits, `-`, `_`,
/// starting with a letter or digit. It scopes every owned resource, so it must be unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PartnerId(String);

impl PartnerId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<PartnerId, IdError> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(IdError::Length {
                kind: "partner id",
                max: Self::MAX_LEN,
            });
        }
        let bytes = text.as_bytes();
        let ok_first = bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit();
        let ok_rest = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
        if !ok_first || !ok_rest {
            return Err(IdError::Charset {
                kind: "partner id",
                allowed: "lowercase letters, digits, '-' and '_', starting with a letter or digit",
            });
        }
        Ok(PartnerId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PartnerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PartnerId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An OAuth client identifier. Restricted to unreserved URI characters (RFC 3986 §2.3), so it needs
/// no escaping in a Basic header, a form body, a URL or a log line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(text: &str) -> Result<ClientId, IdError> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(IdError::Length {
                kind: "client id",
                max: Self::MAX_LEN,
            });
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(IdError::Charset {
                kind: "client id",
                allowed: "ASCII letters, digits, '-', '.', '_' and '~'",
            });
        }
        Ok(ClientId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ClientId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_ids_are_lowercase_slugs() {
        assert!(PartnerId::parse("acme").is_ok());
        assert!(PartnerId::parse("acme-2_eu").is_ok());
        assert!(PartnerId::parse("").is_err());
        assert!(PartnerId::parse("-acme").is_err());
        assert!(PartnerId::parse("Acme").is_err());
        assert!(PartnerId::parse("acme'; drop table x;--").is_err());
        assert!(PartnerId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn client_ids_are_unreserved_characters() {
        assert!(ClientId::parse("cl_0123abc").is_ok());
        assert!(ClientId::parse("a.b~c-d").is_ok());
        assert!(ClientId::parse("a:b").is_err());
        assert!(ClientId::parse("a b").is_err());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn deserializing_applies_the_same_rules() {
        assert!(serde_json::from_str::<PartnerId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<PartnerId>("\"ACME\"").is_err());
        assert!(serde_json::from_str::<ClientId>("\"a:b\"").is_err());
    }
}
