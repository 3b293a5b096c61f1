//! An API key as the client holds it: a secret that is checked once, when the client is built,
//! and sent in `X-API-Key` on every call.

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::Error;

/// The header the partner API reads an API key from.
pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// A key that a header can carry. `Debug` does not show it (`SecretString` redacts itself and is
/// zeroized when dropped).
#[derive(Debug, Clone)]
pub(crate) struct ApiKey(SecretString);

impl ApiKey {
    /// Refuses an empty key and one with anything but visible ASCII (a space or line break from a
    /// copy and paste, a control character: keys never have them, and some would not fit in a
    /// header), so the mistake shows when the client is built rather than as a refusal on every
    /// call. The error never repeats the key.
    pub(crate) fn parse(key: SecretString) -> Result<ApiKey, Error> {
        let text = key.expose_secret();
        if text.is_empty() {
            return Err(Error::Config("the API key is empty".into()));
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(Error::Config(
                "the API key has a character no key has (a space, a line break, a control or \
                 non-ASCII character): copy it again"
                    .into(),
            ));
        }
        Ok(ApiKey(key))
    }

    /// The `X-API-Key` value, marked sensitive so that HTTP libraries leave it out of their
    /// debug output.
    pub(crate) fn header_value(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(self.0.expose_secret())
            .expect("a parsed key is a valid header value");
        value.set_sensitive(true);
        value
    }
}
