//! The partner API's calls: a GET with the cached token, the one retry on `invalid_token`, and
//! the answer decoded into its type or into an [`Error`].

use std::sync::Arc;

use reqwest::header::ACCEPT;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::api::{Invoice, Me, Order, Page, PageRequest, Product, StockLevel};
use crate::error::{BearerChallenge, Problem, retry_after};
use crate::tokens::{AccessToken, Tokens};
use crate::{Config, Error, Result};

/// A partner API client. Cloning is cheap and clones share the token cache, so one client (or
/// its clones) per process is the intended use.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    api_url: Url,
    tokens: Arc<Tokens>,
}

impl Client {
    /// A client with its own HTTP client: rustls on ring, the platform's trust store, the
    /// configured timeouts and no redirects (a token endpoint that redirects is misconfigured,
    /// and following it could take the credentials elsewhere).
    pub fn new(config: Config) -> Result<Client> {
        // reqwest is built without a default TLS provider; ring is this workspace's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Client::with_http(config, http)
    }

    /// A client over an HTTP client of the caller's (shared connection pool, proxy, own CAs).
    pub fn with_http(config: Config, http: reqwest::Client) -> Result<Client> {
        Ok(Client {
            api_url: crate::config::parse_url("API URL", &config.api_url)?,
            tokens: Arc::new(Tokens::new(&config, http.clone())?),
            http,
        })
    }

    /// The current access token (renewed first if it is due), for a call this crate does not
    /// wrap.
    pub async fn access_token(&self) -> Result<AccessToken> {
        self.tokens.get().await
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
    /// A 401 `invalid_token` gets one more try with a new token: the token may have been
    /// refused for a reason the client could not see coming (its signing key was revoked).
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
        let token = self.tokens.get().await?;
        match self.send(&url, &token).await {
            Err(Error::Api {
                status: StatusCode::UNAUTHORIZED,
                challenge: Some(challenge),
                ..
            }) if challenge.error.as_deref() == Some("invalid_token") => {
                self.tokens.forget(&token).await;
                let token = self.tokens.get().await?;
                self.send(&url, &token).await
            }
            other => other,
        }
    }

    async fn send<T: DeserializeOwned>(&self, url: &Url, token: &AccessToken) -> Result<T> {
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(token.secret())
            .header(ACCEPT, "application/json")
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::RateLimited {
                retry_after: retry_after(&headers),
            });
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
