//! The prologue every client-authenticated endpoint shares (token, revocation, introspection),
//! as one extractor: read the form (content type, size), parse the endpoint's request-level
//! parameter, take the credentials from exactly one method, and authenticate the client.

use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

use super::client_auth;
use super::error::OAuthError;
use super::form::{FormParams, read_form};
use crate::state::{AppState, ClientAddr};
use crate::store::Client;

/// A parameter an endpoint parses from the form before the client is authenticated, so that a
/// malformed request is refused as such whoever sends it (the token endpoint's `grant_type`).
pub trait FromForm: Sized {
    fn from_form(params: &FormParams) -> Result<Self, OAuthError>;
}

impl FromForm for () {
    fn from_form(_: &FormParams) -> Result<(), OAuthError> {
        Ok(())
    }
}

/// A form request from an authenticated client.
pub struct ClientRequest<P = ()> {
    /// The authenticated client.
    pub client: Client,
    /// The `x5t#S256` of the certificate the client authenticated with: its access tokens are
    /// bound to it (RFC 8705 §3).
    pub bound_to: Option<String>,
    /// The form, without the client secret (taken out into a zeroizing wrapper and dropped).
    pub params: FormParams,
    /// The client address, as seen through trusted proxies.
    pub source: Option<IpAddr>,
    /// The endpoint's request-level parameter.
    pub parsed: P,
}

impl<P: FromForm + Send> FromRequest<AppState> for ClientRequest<P> {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OAuthError> {
        let form = ClientForm::from_request(request, state).await?;
        let parsed = P::from_form(&form.params)?;
        form.authenticate(state, parsed).await
    }
}

/// The first half of [`ClientRequest`]: the form read, nobody authenticated yet. For an endpoint
/// that wants to see its parameter whatever becomes of the request (the token endpoint counts
/// requests by grant type).
pub struct ClientForm {
    parts: Parts,
    params: FormParams,
    source: Option<IpAddr>,
}

impl ClientForm {
    pub fn params(&self) -> &FormParams {
        &self.params
    }

    /// The second half: takes the credentials from exactly one method and authenticates the
    /// client. `parsed` is the endpoint's parameter, parsed from [`ClientForm::params`].
    pub async fn authenticate<P>(
        self,
        state: &AppState,
        parsed: P,
    ) -> Result<ClientRequest<P>, OAuthError> {
        let ClientForm {
            parts,
            mut params,
            source,
        } = self;
        let certificate = parts.extensions.get::<edge::ClientCertificate>();
        let presented = client_auth::extract(&parts.headers, &mut params, certificate.is_some())?;
        let authenticated =
            client_auth::authenticate(state, &presented, certificate, source).await?;
        Ok(ClientRequest {
            client: authenticated.client,
            bound_to: authenticated.bound_to,
            params,
            source,
            parsed,
        })
    }
}

impl FromRequest<AppState> for ClientForm {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OAuthError> {
        let (mut parts, body) = request.into_parts();
        let Ok(ClientAddr(source)) = ClientAddr::from_request_parts(&mut parts, state).await;
        let params = read_form(&parts.headers, body).await?;
        Ok(ClientForm {
            parts,
            params,
            source,
        })
    }
}
