//! The one way the services build an outgoing HTTP client (the partner API's JWKS and
//! introspection calls).

use std::time::Duration;

/// A client builder with ring as the TLS crypto provider (reqwest is built without a default
/// one), the platform's trust store (which honours `SSL_CERT_FILE`, so operators can trust a
/// private CA), bounded connect and total time, and no redirects: a token service that redirects
/// is misconfigured, and following it could send credentials elsewhere.
pub fn http_client(connect_timeout: Duration, timeout: Duration) -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
}
