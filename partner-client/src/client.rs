//! The partner API's calls: a GET with the client's credentials (a cached token or an API key),
//! the one retry on `invalid_token` for a token, and the answer decoded into its type or into an
//! [`Error`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::api::{Invoice, Me, Order, Page, PageRequest, Product, StockLevel};
use crate::api_key::{ApiKey, X_API_KEY};
use crate::error::{BearerChallenge, Problem, retry_after};
use crate::tokens::{AccessToken, Tokens};
use crate::{ApiKeyConfig, Config, Error, Result};

/// A partner API client. Cloning is cheap and clones share the token cache, so one client (or
/// its clones) per process is the intended use. `Debug` shows neither the secret, nor a token,
/// nor the API key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    api_url: Url,
    credentials: Credentials,
}

/// How the client proves who it is: both modes share every other step of a call.
#[derive(Debug, Clone)]
enum Credentials {
    /// Access tokens from the token service (client credentials, refresh), cached and renewed.
    Tokens(Arc<Tokens>),
    /// One API key, sent in `X-API-Key` on every call; no token is ever requested.
    ApiKey(ApiKey),
}

/// What one request presents.
enum Presented<'a> {
    Token(&'a AccessToken),
    ApiKey(&'a ApiKey),
}

impl Client {
    /// A client with its own HTTP client: rustls on ring, the platform's trust store, the
    /// configured timeouts and no redirects (a token endpoint that redirects is misconfigured,
    /// and following it could take the credentials elsewhere).
    pub fn new(config: Config) -> Result<Client> {
        let http = http_client(config.connect_timeout, config.timeout)?;
        Client::with_http(config, http)
    }

    /// A client over an HTTP client of the caller's (shared connection pool, proxy, own CAs).
    pub fn with_http(config: Config, http: reqwest::Client) -> Result<Client> {
        Ok(Client {
            api_url: crate::config::parse_url("API URL", &config.api_url)?,
            credentials: Credentials::Tokens(Arc::new(Tokens::new(&config, http.clone())?)),
            http,
        })
    }

    /// A client that calls the API with an API key (`X-API-Key`), with its own HTTP client as
    /// [`Client::new`] builds it (no redirects: the key would follow them). It never asks the
    /// token service for anything; an empty key, or one with a character no key has, is an
    /// [`Error::Config`] (which does not show it).
    pub fn with_api_key(config: ApiKeyConfig) -> Result<Client> {
        let http = http_client(config.connect_timeout, config.timeout)?;
        Client::with_api_key_and_http(config, http)
    }

    /// [`Client::with_api_key`] over an HTTP client of the caller's (its timeouts apply, not the
    /// configuration's).
    pub fn with_api_key_and_http(config: ApiKeyConfig, http: reqwest::Client) -> Result<Client> {
        Ok(Client {
            api_url: crate::config::parse_url("API URL", &config.api_url)?,
            credentials: Credentials::ApiKey(ApiKey::parse(config.api_key)?),
            http,
        })
    }

    /// The current access token (renewed first if it is due), for a call this crate does not
    /// wrap. A client with an API key has none: [`Error::Config`].
    pub async fn access_token(&self) -> Result<AccessToken> {
        match &self.credentials {
            Credentials::Tokens(tokens) => tokens.get().await,
            Credentials::ApiKey(_) => Err(Error::Config(
                "this client calls the API with an API key and has no access token".into(),
            )),
        }
    }

    /// `GET /v1/me`: who the token says the caller is (any valid token).
    pub async fn me(&self) -> Result<Me> {
        self.get(&["v1", "me"], None).await
    }

    /// `GET /v1/products` (`catalog:read`).
    pub async fn products(&self, page: &PageRequest) -> Result<Page<Product>> {
        self.get(&["v1", "products"], Some(page)).await
    }

    /// `GET /v1/products/{id}` (`catalog:read`).
    pub async fn product(&self, id: &str) -> Result<Product> {
        self.get(&["v1", "products", id], None).await
    }

    /// `GET /v1/inventory` (`inventory:read`).
    pub async fn inventory(&self, page: &PageRequest) -> Result<Page<StockLevel>> {
        self.get(&["v1", "inventory"], Some(page)).await
    }

    /// `GET /v1/orders` (`orders:read`): the calling partner's own orders.
    pub async fn orders(&self, page: &PageRequest) -> Result<Page<Order>> {
        self.get(&["v1", "orders"], Some(page)).await
    }

    /// `GET /v1/orders/{id}` (`orders:read`); another partner's order is a 404.
    pub async fn order(&self, id: &str) -> Result<Order> {
        self.get(&["v1", "orders", id], None).await
    }

    /// `GET /v1/invoices` (`invoices:read`): the calling partner's own invoices.
    pub async fn invoices(&self, page: &PageRequest) -> Result<Page<Invoice>> {
        self.get(&["v1", "invoices"], Some(page)).await
    }

    /// `GET /v1/invoices/{id}` (`invoices:read`); another partner's invoice is a 404.
    pub async fn invoice(&self, id: &str) -> Result<Invoice> {
        self.get(&["v1", "invoices", id], None).await
    }

    /// A GET of `segments` under the API URL (each one percent-encoded as a path segment).
    /// With tokens, a 401 `invalid_token` gets one more try with a new token: the token may have
    /// been refused for a reason the client could not see coming (its signing key was revoked).
    /// An API key that is refused stays refused, so it gets no second try.
    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        page: Option<&PageRequest>,
    ) -> Result<T> {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the API URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        if let Some(query) = page.map(PageRequest::query).filter(|q| !q.is_empty()) {
            url.query_pairs_mut().extend_pairs(query);
        }
        let tokens = match &self.credentials {
            Credentials::ApiKey(key) => return self.send(&url, Presented::ApiKey(key)).await,
            Credentials::Tokens(tokens) => tokens,
        };
        let token = tokens.get().await?;
        match self.send(&url, Presented::Token(&token)).await {
            Err(Error::Api {
                status: StatusCode::UNAUTHORIZED,
                challenge: Some(challenge),
                ..
            }) if challenge.error.as_deref() == Some("invalid_token") => {
                tokens.forget(&token).await;
                let token = tokens.get().await?;
                self.send(&url, Presented::Token(&token)).await
            }
            other => other,
        }
    }

    /// One GET and its answer, the same for both kinds of credentials: the API refuses a token
    /// and a key with the same statuses and challenges.
    async fn send<T: DeserializeOwned>(&self, url: &Url, presented: Presented<'_>) -> Result<T> {
        let request = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json");
        let request = match presented {
            Presented::Token(token) => request.bearer_auth(token.secret()),
            Presented::ApiKey(key) => request.header(X_API_KEY, key.header_value()),
        };
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                return Err(Error::RateLimited {
                    retry_after: retry_after(&headers),
                });
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                return Err(Error::Unavailable {
                    retry_after: retry_after(&headers),
                });
            }
            _ => {}
        }
        let body = response.bytes().await?;
        if !status.is_success() {
            return Err(Error::Api {
                status,
                challenge: BearerChallenge::from_headers(&headers).map(Box::new),
                problem: serde_json::from_slice::<Problem>(&body).ok().map(Box::new),
            });
        }
        serde_json::from_slice(&body)
            .map_err(|err| Error::decode(format!("the answer to GET {}", url.path()), err))
    }
}

/// The HTTP client both modes build for themselves.
fn http_client(connect_timeout: Duration, timeout: Duration) -> Result<reqwest::Client> {
    // reqwest is built without a default TLS provider; ring is this workspace's one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}
