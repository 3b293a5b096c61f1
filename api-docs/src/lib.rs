//! The parts both services' OpenAPI descriptions share, and their serving: `GET /openapi.json`
//! and Swagger UI at `GET /docs`, its files from the binary (no CDN).
//!
//! Each service generates its description from its handlers (utoipa) and adds here what every
//! request of every service may meet: the envelope's refusals (408, 413, 431, 503), all RFC 9457
//! problems, which [`Problem`] describes.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::Value;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the description is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where Swagger UI is served (`/docs` redirects to `/docs/`, which serves the page).
pub const DOCS_PATH: &str = "/docs";

/// The content-security policy of the Swagger UI pages, and only of them: their scripts and
/// style sheets come from this server (`'self'`), Swagger UI sets inline styles and draws
/// `data:` images, and it fetches the description from this server. Everything else stays as
/// the envelope's policy has it: nothing, and no framing.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem, as `edge::problem` writes every one.
#[derive(ToSchema)]
#[allow(dead_code)] // a description, never built
pub struct Problem {
    /// Always `about:blank`: the status says what happened.
    #[schema(rename = "type", example = "about:blank")]
    kind: String,
    /// The status's reason phrase.
    #[schema(example = "Not Found")]
    title: String,
    #[schema(minimum = 400, maximum = 599, example = 404)]
    status: u16,
    /// What went wrong, in words; never the request echoed back.
    detail: Option<String>,
}

/// `GET /openapi.json` (the description, serialized once) and Swagger UI under `/docs`, which
/// gets its own content-security policy (see [`DOCS_CONTENT_SECURITY_POLICY`]).
pub fn routes<S: Clone + Send + Sync + 'static>(openapi: &OpenApi) -> Router<S> {
    let json = Bytes::from(serde_json::to_vec(openapi).expect("a description serializes"));
    let description = get(move || {
        let json = json.clone();
        async move {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response()
        }
    });
    let config = Config::new([OPENAPI_PATH])
        // No call to validator.swagger.io: partners' networks and our tests are offline.
        .validator_url("none")
        .try_it_out_enabled(false);
    let docs: Router<S> = SwaggerUi::new(DOCS_PATH).config(config).into();
    let docs = docs.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CONTENT_SECURITY_POLICY),
    ));
    Router::new().route(OPENAPI_PATH, description).merge(docs)
}

/// A response header that every such response carries: `required: true`, which utoipa's
/// `Header` has no field for, goes in beside its extensions.
pub fn required_header(schema: impl Into<RefOr<Schema>>, description: &str) -> Header {
    let mut header = Header::new(schema);
    header.description = Some(description.to_owned());
    require(&mut header);
    header
}

/// Marks `header` as always sent (`required: true`).
pub fn require(header: &mut Header) {
    header
        .extensions
        .get_or_insert_with(Default::default)
        .insert("required".to_owned(), Value::Bool(true));
}

/// An optional response header.
pub fn optional_header(schema: impl Into<RefOr<Schema>>, description: &str) -> Header {
    let mut header = Header::new(schema);
    header.description = Some(description.to_owned());
    header
}

/// `Retry-After` in whole seconds (RFC 9110 §10.2.3; never 0).
pub fn retry_after() -> Header {
    required_header(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .build(),
        "Seconds to wait before retrying.",
    )
}

pub fn string_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .build()
        .into()
}

/// A problem+json response of `description`.
pub fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(Ref::from_schema_name("Problem"))),
    )
}

/// Adds the [`Problem`] schema and, to every operation, the refusals of the envelope
/// (`edge::Envelope`) that it does not document already, all problem+json: 408 (not completed in
/// time), 413 (a body over the envelope's bound), 431 (headers over their bounds) and 503 (too
/// many requests in flight, with `Retry-After`).
pub fn add_envelope_responses(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert("Problem".to_owned(), Problem::schema());
    // Every refusal of the envelope is a problem, whichever layer made it (`edge::refusal`),
    // unless the service writes its own format there and documented it already.
    let refusals: [(&str, Response); 4] = [
        (
            "408",
            problem_response("The request was not completed within the server's time limit.")
                .build(),
        ),
        (
            "413",
            problem_response("The request body is larger than the server accepts.").build(),
        ),
        (
            "431",
            problem_response("A request header, or all of them together, are too large.")
                .build(),
        ),
        (
            "503",
            problem_response(
                "The server is busy (too many requests in flight) or cannot reach what it needs; retry later.",
            )
            .header("Retry-After", retry_after())
            .build(),
        ),
    ];
    for operation in operations(openapi) {
        for (status, response) in &refusals {
            operation
                .responses
                .responses
                .entry((*status).to_owned())
                .or_insert_with(|| RefOr::T(response.clone()));
        }
    }
}

/// Every operation of the description.
pub fn operations(openapi: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.options.as_mut(),
            item.head.as_mut(),
            item.patch.as_mut(),
            item.trace.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}
