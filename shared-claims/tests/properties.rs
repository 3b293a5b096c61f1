//! Property tests: scope strings and claims survive a round trip, and parsing never panics.

use proptest::prelude::*;
use shared_claims::{AccessTokenClaims, Audience, ClientId, PartnerId, ScopeSet};

/// One RFC 6749 §3.3 scope token.
fn scope_token() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[!#-\\[\\]-~]{1,24}").expect("valid regex")
}

proptest! {
    #[test]
    fn any_string_parses_or_is_refused_without_panicking(text in ".{0,200}") {
        let _ = ScopeSet::parse(&text);
    }

    #[test]
    fn valid_scope_lists_round_trip_in_canonical_form(tokens in proptest::collection::vec(scope_token(), 1..20)) {
        let text = tokens.join(" ");
        let set = ScopeSet::parse(&text).expect("valid scope tokens parse");
        let printed = set.to_string();
        prop_assert_eq!(ScopeSet::parse(&printed).expect("canonical form parses"), set.clone());
        for token in &tokens {
            prop_assert!(set.contains(token));
        }
        // Canonical: sorted, no duplicates.
        let mut sorted: Vec<&str> = printed.split(' ').collect();
        let original = sorted.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted, original);
    }

    #[test]
    fn a_subset_is_a_subset(tokens in proptest::collection::vec(scope_token(), 2..10), cut in 1usize..9) {
        let all = ScopeSet::parse(&tokens.join(" ")).unwrap();
        let some = ScopeSet::parse(&tokens[..cut.min(tokens.len())].join(" ")).unwrap();
        prop_assert!(some.is_subset(&all));
    }

    #[test]
    fn claims_round_trip_through_json(
        client in "[a-z0-9_]{1,30}",
        partner in "[a-z0-9][a-z0-9_-]{0,20}",
        tokens in proptest::collection::vec(scope_token(), 1..6),
        audiences in proptest::collection::vec("[a-z:/.-]{1,20}", 1..4),
        iat in 0i64..4_000_000_000,
        ttl in 1i64..86_400,
    ) {
        let claims = AccessTokenClaims {
            iss: "https://auth.example".into(),
            sub: client.clone(),
            aud: Audience::from_list(audiences),
            exp: iat + ttl,
            iat,
            nbf: iat,
            jti: "j".into(),
            client_id: ClientId::parse(&client).unwrap(),
            scope: ScopeSet::parse(&tokens.join(" ")).unwrap(),
            partner_id: PartnerId::parse(&partner).unwrap(),
            cnf: None,
        };
        let json = serde_json::to_string(&claims).unwrap();
        let back: AccessTokenClaims = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &claims);
        prop_assert!(back.validate(iat, 0, "https://auth.example", None).is_ok());
        prop_assert!(back.validate(iat + ttl, 0, "https://auth.example", None).is_err());
    }
}
