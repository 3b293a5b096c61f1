//! Scopes per RFC 6749 §3.3: `scope = scope-token *( SP scope-token )`,
//! `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope is empty")]
    Empty,
    #[error("scope tokens must be separated by single spaces")]
    BadSeparator,
    #[error("scope token contains a character outside RFC 6749 §3.3")]
    BadCharacter,
    #[error("scope token is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("too many scope tokens (at most {max})")]
    TooMany { max: usize },
}

/// One scope token, such as `orders:read`. The only way to build one is [`Scope::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    /// Longest scope token accepted; real scopes are short, and a bound keeps hostile input cheap.
    pub const MAX_LEN: usize = 128;

    pub fn parse(token: &str) -> Result<Scope, ScopeError> {
        if token.is_empty() {
            return Err(ScopeError::Empty);
        }
        if token.len() > Self::MAX_LEN {
            return Err(ScopeError::TooLong { max: Self::MAX_LEN });
        }
        if !token.bytes().all(is_scope_char) {
            return Err(ScopeError::BadCharacter);
        }
        Ok(Scope(token.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// A set of scopes, kept sorted and free of duplicates, so that its string form is canonical.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// No client needs more; the bound keeps a hostile `scope` parameter cheap to refuse.
    pub const MAX_SCOPES: usize = 64;

    /// Parses the space-delimited form used by the `scope` request parameter and claim.
    /// Repeated tokens collapse into one, as the set semantics of RFC 6749 §3.3 imply.
    pub fn parse(text: &str) -> Result<ScopeSet, ScopeError> {
        if text.is_empty() {
            return Err(ScopeError::Empty);
        }
        let mut set = BTreeSet::new();
        for (count, token) in text.split(' ').enumerate() {
            if count >= Self::MAX_SCOPES {
                return Err(ScopeError::TooMany {
                    max: Self::MAX_SCOPES,
                });
            }
            if token.is_empty() {
                return Err(ScopeError::BadSeparator);
            }
            set.insert(Scope::parse(token)?);
        }
        Ok(ScopeSet(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes of `self` that `other` lacks, for error messages.
    pub fn difference<'a>(&'a self, other: &'a ScopeSet) -> impl Iterator<Item = &'a Scope> + 'a {
        self.0.difference(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ScopeSet::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts_space_separated_tokens() {
        let set = ScopeSet::parse("orders:read catalog:read").unwrap();
        assert_eq!(set.to_string(), "catalog:read orders:read");
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn duplicate_tokens_collapse() {
        assert_eq!(ScopeSet::parse("a a b").unwrap().to_string(), "a b");
    }

    #[test]
    fn refuses_malformed_scope_strings() {
        assert_eq!(ScopeSet::parse(""), Err(ScopeError::Empty));
        assert_eq!(ScopeSet::parse("a  b"), Err(ScopeError::BadSeparator));
        assert_eq!(ScopeSet::parse(" a"), Err(ScopeError::BadSeparator));
        assert_eq!(ScopeSet::parse("a "), Err(ScopeError::BadSeparator));
        assert_eq!(ScopeSet::parse("a\"b"), Err(ScopeError::BadCharacter));
        assert_eq!(ScopeSet::parse("a\\b"), Err(ScopeError::BadCharacter));
        assert_eq!(ScopeSet::parse("a\tb"), Err(ScopeError::BadCharacter));
        assert_eq!(ScopeSet::parse("é"), Err(ScopeError::BadCharacter));
        assert!(matches!(
            ScopeSet::parse(&"x".repeat(129)),
            Err(ScopeError::TooLong { .. })
        ));
        let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        assert!(matches!(
            ScopeSet::parse(&many.join(" ")),
            Err(ScopeError::TooMany { .. })
        ));
    }

    #[test]
    fn subset_and_difference() {
        let allowed = ScopeSet::parse("a b c").unwrap();
        let asked = ScopeSet::parse("a d").unwrap();
        assert!(!asked.is_subset(&allowed));
        assert_eq!(
            asked
                .difference(&allowed)
                .map(Scope::as_str)
                .collect::<Vec<_>>(),
            ["d"]
        );
        assert!(ScopeSet::parse("c a").unwrap().is_subset(&allowed));
    }

    #[test]
    fn serde_round_trip_uses_the_string_form() {
        let set = ScopeSet::parse("b a").unwrap();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, "\"a b\"");
        assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), set);
        assert!(serde_json::from_str::<ScopeSet>("\"a  b\"").is_err());
        assert!(serde_json::from_str::<ScopeSet>("42").is_err());
    }
}
