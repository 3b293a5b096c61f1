//! Arbitrary scope strings: parsing never panics, and what parses prints back to a canonical form
//! that parses to the same set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_claims::ScopeSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(set) = ScopeSet::parse(text) {
        let printed = set.to_string();
        let again = ScopeSet::parse(&printed).expect("the canonical form parses");
        assert_eq!(again, set);
        assert_eq!(again.to_string(), printed);
    }
});
