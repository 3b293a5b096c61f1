//! [`ClientKeys`] against real HTTP servers on loopback: an axum app serving a JWKS that a test
//! can swap (and counting requests), and raw TCP servers for what axum would not send.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::test_keys::{PartnerKey, jwks};
use super::*;

/// What the JWKS server answers.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    body: String,
    cache_control: Option<&'static str>,
    delay: Duration,
}

impl Reply {
    fn keys(kids: &[&str]) -> Reply {
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| PartnerKey::es256().jwk(Some(kid), json!({})))
            .collect();
        Reply {
            status: StatusCode::OK,
            body: jwks(&keys),
            cache_control: None,
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: "unavailable".into(),
            cache_control: None,
            delay: Duration::ZERO,
        }
    }

    fn garbage() -> Reply {
        Reply {
            body: "<html>maintenance</html>".into(),
            ..Reply::status(200)
        }
    }
}

struct JwksServer {
    reply: Mutex<Reply>,
    hits: AtomicUsize,
    addr: std::net::SocketAddr,
}

impl JwksServer {
    /// Serves `reply` at `/jwks` (any query) and a redirect to it at `/moved`.
    async fn start(reply: Reply) -> Arc<JwksServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Arc::new(JwksServer {
            reply: Mutex::new(reply),
            hits: AtomicUsize::new(0),
            addr: listener.local_addr().unwrap(),
        });
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/moved", get(redirect))
            .with_state(Arc::clone(&server));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    fn uri(&self) -> KeySource {
        KeySource::Uri(format!("http://{}/jwks", self.addr))
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(server): State<Arc<JwksServer>>) -> Response {
    server.hits.fetch_add(1, Ordering::SeqCst);
    let reply = server.reply.lock().unwrap().clone();
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(value) = reply.cache_control {
        response = response.header(header::CACHE_CONTROL, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

async fn redirect() -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, "/jwks")
        .body(Body::empty())
        .unwrap()
}

fn http() -> reqwest::Client {
    edge::http_client(Duration::from_secs(2), Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

/// A policy for tests: a cooldown long enough that "within the cooldown" holds on any machine.
fn policy() -> KeyFetchPolicy {
    KeyFetchPolicy {
        timeout: Duration::from_secs(5),
        min_ttl: Duration::ZERO,
        cooldown: Duration::from_secs(600),
        ..KeyFetchPolicy::default()
    }
}

/// A policy under which every set is expired as soon as fetched and nothing waits for a
/// cooldown, so each lookup fetches.
fn always_refetch() -> KeyFetchPolicy {
    KeyFetchPolicy {
        default_ttl: Duration::ZERO,
        cooldown: Duration::ZERO,
        ..policy()
    }
}

async fn lookup(
    keys: &ClientKeys,
    source: &KeySource,
    kid: Option<&str>,
) -> Result<Option<String>, KeyLookupError> {
    keys.keys_for("cl_partner", source, kid)
        .await
        .map(|key| key.kid().map(str::to_owned))
}

fn found(kid: &str) -> Result<Option<String>, KeyLookupError> {
    Ok(Some(kid.to_owned()))
}

#[tokio::test]
async fn a_fetched_key_set_is_cached() {
    let server = JwksServer::start(Reply::keys(&["a"])).await;
    let keys = ClientKeys::new(http(), policy());
    for _ in 0..3 {
        assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));
    }
    assert_eq!(
        lookup(&keys, &server.uri(), None).await,
        found("a"),
        "one key needs no kid"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_unknown_kid_after_a_rotation_costs_one_refetch_then_none_during_the_cooldown() {
    let server = JwksServer::start(Reply::keys(&["old"])).await;
    let keys = ClientKeys::new(http(), policy());
    assert_eq!(
        lookup(&keys, &server.uri(), Some("old")).await,
        found("old")
    );
    assert_eq!(server.hits(), 1);

    server.set(Reply::keys(&["new"]));
    assert_eq!(
        lookup(&keys, &server.uri(), Some("new")).await,
        found("new")
    );
    assert_eq!(server.hits(), 2, "exactly one refetch");

    for kid in ["made-up-1", "made-up-2", "old"] {
        assert_eq!(
            lookup(&keys, &server.uri(), Some(kid)).await,
            Err(KeyLookupError::UnknownKey),
            "{kid}"
        );
    }
    assert_eq!(server.hits(), 2, "no fetch within the cooldown");
    assert_eq!(
        lookup(&keys, &server.uri(), Some("new")).await,
        found("new")
    );
}

#[tokio::test]
async fn after_the_cooldown_an_unknown_kid_may_cause_another_refetch() {
    let server = JwksServer::start(Reply::keys(&["a"])).await;
    let cooldown = Duration::from_millis(200);
    let keys = ClientKeys::new(
        http(),
        KeyFetchPolicy {
            cooldown,
            ..policy()
        },
    );
    assert!(lookup(&keys, &server.uri(), Some("a")).await.is_ok());
    assert!(lookup(&keys, &server.uri(), Some("b")).await.is_err());
    assert_eq!(server.hits(), 2);
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
    server.set(Reply::keys(&["b"]));
    assert_eq!(lookup(&keys, &server.uri(), Some("b")).await, found("b"));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn while_the_uri_is_down_or_answers_garbage_the_last_good_keys_are_used() {
    let server = JwksServer::start(Reply::keys(&["a"])).await;
    let keys = ClientKeys::new(http(), always_refetch());
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));

    server.set(Reply::status(503));
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));
    server.set(Reply::garbage());
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));
    server.set(Reply {
        body: r#"{"keys": []}"#.into(),
        ..Reply::garbage()
    });
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));
    assert_eq!(server.hits(), 4, "each lookup tried a fetch");

    // A good answer replaces the set.
    server.set(Reply::keys(&["b"]));
    assert_eq!(
        lookup(&keys, &server.uri(), Some("a")).await,
        Err(KeyLookupError::UnknownKey)
    );
    assert_eq!(lookup(&keys, &server.uri(), Some("b")).await, found("b"));
}

#[tokio::test]
async fn a_failed_fetch_is_not_retried_during_the_cooldown() {
    let server = JwksServer::start(Reply::keys(&["a"])).await;
    let keys = ClientKeys::new(
        http(),
        KeyFetchPolicy {
            default_ttl: Duration::ZERO,
            ..policy()
        },
    );
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));
    server.set(Reply::status(500));
    for _ in 0..3 {
        assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));
    }
    assert_eq!(server.hits(), 2, "one failed refresh, then stale keys");
}

#[tokio::test]
async fn stale_keys_are_not_used_beyond_max_stale() {
    let server = JwksServer::start(Reply::keys(&["a"])).await;
    let keys = ClientKeys::new(
        http(),
        KeyFetchPolicy {
            max_stale: Duration::ZERO,
            ..always_refetch()
        },
    );
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, found("a"));
    server.set(Reply::status(503));
    assert_eq!(
        lookup(&keys, &server.uri(), Some("a")).await,
        Err(KeyLookupError::Unavailable(Some(FetchError::Status(503))))
    );
}

#[tokio::test]
async fn with_nothing_cached_a_failing_uri_is_unavailable() {
    let server = JwksServer::start(Reply::status(503)).await;
    let keys = ClientKeys::new(http(), policy());
    let unavailable = Err(KeyLookupError::Unavailable(Some(FetchError::Status(503))));
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, unavailable);
    assert_eq!(lookup(&keys, &server.uri(), Some("a")).await, unavailable);
    assert_eq!(
        server.hits(),
        1,
        "the failure is remembered for the cooldown"
    );

    let server = JwksServer::start(Reply::garbage()).await;
    let err = lookup(&keys, &server.uri(), Some("a")).await.unwrap_err();
    assert_eq!(
        err,
        KeyLookupError::Unavailable(Some(FetchError::Invalid(JwksError::NotAJwks)))
    );
    assert_eq!(err.as_str(), "keys_unavailable");
    assert!(!err.to_string().contains("maintenance"), "{err}");

    // Nothing listens on a port that was just freed.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = KeySource::Uri(format!("http://{}/jwks", closed.local_addr().unwrap()));
    drop(closed);
    assert!(matches!(
        lookup(&keys, &uri, Some("a")).await,
        Err(KeyLookupError::Unavailable(Some(FetchError::Request(_))))
    ));
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = JwksServer::start(Reply::keys(&["a"])).await;
    let keys = ClientKeys::new(http(), policy());
    let moved = KeySource::Uri(format!("http://{}/moved", server.addr));
    assert_eq!(
        lookup(&keys, &moved, Some("a")).await,
        Err(KeyLookupError::Unavailable(Some(FetchError::Status(302))))
    );
    assert_eq!(server.hits(), 0);

    // Even with a client that follows redirects, keys from elsewhere are not taken.
    let following = edge::http_client(Duration::from_secs(2), Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(3))
        .no_proxy()
        .build()
        .unwrap();
    let keys = ClientKeys::new(following, policy());
    assert_eq!(
        lookup(&keys, &moved, Some("a")).await,
        Err(KeyLookupError::Unavailable(Some(FetchError::Redirected)))
    );
}

/// A raw HTTP server that answers one request with `head` and then streams chunks of a chunked
/// body until the client goes away or `limit` bytes are sent; returns how many body bytes it
/// managed to send.
async fn streaming_server(
    head: &'static str,
    limit: usize,
) -> (KeySource, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = KeySource::Uri(format!("http://{}/jwks", listener.local_addr().unwrap()));
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = socket.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the client closed before sending its request");
            request.extend_from_slice(&buffer[..read]);
        }
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
        let mut sent = 0;
        while sent < limit {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 0x4000;
        }
        sent
    });
    (uri, task)
}

#[tokio::test]
async fn an_oversized_body_is_refused_without_reading_it_all() {
    const LIMIT: usize = 256 * 1024 * 1024;
    let (uri, server) = streaming_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        LIMIT,
    )
    .await;
    let keys = ClientKeys::new(http(), policy());
    assert_eq!(
        lookup(&keys, &uri, Some("a")).await,
        Err(KeyLookupError::Unavailable(Some(FetchError::TooLarge)))
    );
    drop(keys);
    let sent = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops once the client hangs up")
        .unwrap();
    assert!(sent < LIMIT, "the client stopped reading after the bound");
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_reading_it() {
    let (uri, _server) = streaming_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n",
        0,
    )
    .await;
    let keys = ClientKeys::new(http(), policy());
    assert_eq!(
        lookup(&keys, &uri, Some("a")).await,
        Err(KeyLookupError::Unavailable(Some(FetchError::TooLarge)))
    );
}

#[tokio::test]
async fn a_slow_uri_is_unavailable_once_the_timeout_passes() {
    let server = JwksServer::start(Reply {
        delay: Duration::from_secs(60),
        ..Reply::keys(&["a"])
    })
    .await;
    let timeout = Duration::from_millis(300);
    let keys = ClientKeys::new(
        http(),
        KeyFetchPolicy {
            timeout,
            ..policy()
        },
    );
    assert_eq!(
        lookup(&keys, &server.uri(), Some("a")).await,
        Err(KeyLookupError::Unavailable(Some(FetchError::Timeout(
            timeout
        ))))
    );
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_host_is_refused_without_network_access() {
    // Every request this client makes goes to the local server as a proxy: none may arrive.
    let proxy = JwksServer::start(Reply::keys(&["a"])).await;
    let http = edge::http_client(Duration::from_secs(2), Duration::from_secs(5))
        .proxy(reqwest::Proxy::all(format!("http://{}", proxy.addr)).unwrap())
        .build()
        .unwrap();
    let keys = ClientKeys::new(http, policy());
    for uri in [
        "http://example.com/jwks",
        "http://10.1.2.3/jwks",
        "jwks.json",
    ] {
        let err = lookup(&keys, &KeySource::Uri(uri.into()), Some("a"))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyLookupError::InvalidUri(_)), "{uri}: {err}");
        assert_eq!(err.as_str(), "keys_unavailable");
    }
    assert_eq!(proxy.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_fetch() {
    let server = JwksServer::start(Reply {
        delay: Duration::from_millis(300),
        ..Reply::keys(&["a"])
    })
    .await;
    let keys = ClientKeys::new(http(), policy());
    let together = |kid: &'static str| {
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        (0..8)
            .map(|_| {
                let (keys, source, barrier) = (keys.clone(), server.uri(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    lookup(&keys, &source, Some(kid)).await
                })
            })
            .collect::<Vec<_>>()
    };
    for task in together("a") {
        assert_eq!(task.await.unwrap(), found("a"));
    }
    assert_eq!(server.hits(), 1);

    server.set(Reply {
        delay: Duration::from_millis(300),
        ..Reply::keys(&["b"])
    });
    for task in together("b") {
        assert_eq!(task.await.unwrap(), found("b"));
    }
    assert_eq!(
        server.hits(),
        2,
        "one refetch for all the unknown-kid lookups"
    );
}

#[tokio::test]
async fn max_age_decides_when_a_set_is_fetched_again() {
    let server = JwksServer::start(Reply {
        cache_control: Some("public, max-age=0"),
        ..Reply::keys(&["a"])
    })
    .await;
    let keys = ClientKeys::new(http(), policy());
    assert!(lookup(&keys, &server.uri(), Some("a")).await.is_ok());
    server.set(Reply::keys(&["a"]));
    assert!(lookup(&keys, &server.uri(), Some("a")).await.is_ok());
    assert_eq!(
        server.hits(),
        2,
        "max-age=0 (with no minimum) expired the set"
    );
    assert!(lookup(&keys, &server.uri(), Some("a")).await.is_ok());
    assert_eq!(server.hits(), 2, "the default TTL holds the next set");
}

#[tokio::test]
async fn the_uri_cache_forgets_the_least_recently_used_uri() {
    let server = JwksServer::start(Reply::keys(&["a"])).await;
    let keys = ClientKeys::new(
        http(),
        KeyFetchPolicy {
            max_uris: 2,
            ..policy()
        },
    );
    let uri = |n: u32| KeySource::Uri(format!("http://{}/jwks?n={n}", server.addr));
    for n in [1, 2, 1, 3] {
        assert!(lookup(&keys, &uri(n), Some("a")).await.is_ok());
    }
    assert_eq!(server.hits(), 3, "1, 2, 3 fetched; 1 served from the cache");
    assert!(lookup(&keys, &uri(1), Some("a")).await.is_ok());
    assert_eq!(server.hits(), 3, "1 was used more recently than 2");
    assert!(lookup(&keys, &uri(2), Some("a")).await.is_ok());
    assert_eq!(server.hits(), 4, "2 had been forgotten");
}

#[tokio::test]
async fn a_registered_document_is_used_as_it_is_now() {
    let keys = ClientKeys::new(http(), policy());
    let first = KeySource::Document(Reply::keys(&["a"]).body.into());
    assert_eq!(lookup(&keys, &first, Some("a")).await, found("a"));
    assert_eq!(
        lookup(&keys, &first, Some("b")).await,
        Err(KeyLookupError::UnknownKey)
    );
    let updated = KeySource::Document(Reply::keys(&["a", "b"]).body.into());
    assert_eq!(lookup(&keys, &updated, Some("b")).await, found("b"));
    assert_eq!(
        lookup(&keys, &updated, None).await,
        Err(KeyLookupError::UnknownKey),
        "two keys need a kid"
    );
    let broken = KeySource::Document(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.into());
    let err = lookup(&keys, &broken, Some("a")).await.unwrap_err();
    assert!(matches!(err, KeyLookupError::InvalidDocument(_)), "{err}");
    assert_eq!(err.as_str(), "keys_unavailable");
}

#[tokio::test]
async fn the_document_cache_is_bounded() {
    let keys = ClientKeys::new(
        http(),
        KeyFetchPolicy {
            max_documents: 2,
            ..policy()
        },
    );
    for n in 0..5 {
        let document = KeySource::Document(Reply::keys(&[&format!("k{n}")]).body.into());
        assert_eq!(
            lookup(&keys, &document, None).await,
            found(&format!("k{n}"))
        );
    }
    assert_eq!(keys.cached_documents(), 2);
}
