//! Oversized, slow and flooding requests get 413, 408, 431 or 503 — never a hang — and the
//! servers keep answering normal clients during a flood from other addresses.

use crate::common;
use crate::common::system;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Backend, ClientAuth, TestAuth, http, spawn_auth_with, test_db};
use futures::FutureExt;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn limited_auth(max_concurrent: usize, request_timeout: Duration) -> TestAuth {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.request_timeout = request_timeout;
    settings.max_concurrent_requests = max_concurrent;
    spawn_auth_with(db, settings).await
}

/// A token request that announces 100 bytes of body and sends 11.
const SLOW_TOKEN_REQUEST: &str = "POST /oauth2/token HTTP/1.1\r\nhost: auth.test\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\ngrant_type=";

/// Opens a connection and sends a token request whose body never finishes arriving.
async fn slow_request(auth: &TestAuth) -> TcpStream {
    slow_request_from("127.0.0.1", &auth.base_url).await
}

/// [`slow_request`] from the loopback address `from`.
async fn slow_request_from(from: &str, server: &str) -> TcpStream {
    let mut stream = connect_from(from, server).await;
    stream
        .write_all(SLOW_TOKEN_REQUEST.as_bytes())
        .await
        .unwrap();
    stream
}

/// Sends `probe` until the server sheds it with 503 while the `slow` requests hold their slots,
/// and returns that answer. The server takes requests in whatever order they reach it: a probe
/// can arrive before a slow request and take its slot, and then the slow request is the one
/// shed. So a slow request the server has already answered (shed, or timed out) is replaced by
/// a new one from `from` before the next probe, and how soon the server takes them in does not
/// matter.
async fn probe_until_shed<P, F>(
    slow: &mut [TcpStream],
    from: &str,
    server: &str,
    mut probe: P,
) -> reqwest::Response
where
    P: FnMut() -> F,
    F: std::future::Future<Output = reqwest::Response>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = probe().await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            return response;
        }
        for stream in slow.iter_mut() {
            let mut byte = [0u8; 1];
            let answered = !matches!(
                stream.try_read(&mut byte),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            );
            if answered {
                *stream = slow_request_from(from, server).await;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 503 while full: not within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status line of the answer on `stream`. The 30 s deadline only tells a hang from an answer;
/// every timeout the servers are given in these tests is far shorter.
async fn status_line(stream: &mut TcpStream) -> String {
    let mut buffer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer))
        .await
        .expect("an answer, not a hang")
        .unwrap_or(0);
    String::from_utf8_lossy(&buffer[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// A TCP connection to `server` from the loopback address `from` (all of 127/8 is loopback on
/// Linux, so each test address is a distinct client).
async fn connect_from(from: &str, server: &str) -> TcpStream {
    let from: IpAddr = from.parse().unwrap();
    let server: SocketAddr = server.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// Whether the server has closed `stream` (end of file or reset) within `wait`; `false` if the
/// connection is still open and silent when `wait` runs out.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0u8; 64];
    match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!(
            "unexpected bytes: {}",
            String::from_utf8_lossy(&buffer[..n])
        ),
        Err(_) => false,
    }
}

/// The header timeout of the flood tests: long enough that everything the tests do while a flood
/// holds its connections fits inside it on any machine, which the tests also assert.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn flood_limits() -> edge::PeerLimits {
    edge::PeerLimits {
        connections_per_peer: 40,
        requests_per_client: 8,
        header_timeout: HEADER_TIMEOUT,
    }
}

/// Opens 60 silent connections from one address to a server whose cap is 40 per address, and
/// hands them back with the moment each connected.
async fn silent_connection_flood(base_url: &str, from: &str) -> Vec<(TcpStream, Instant)> {
    let mut flood = Vec::new();
    for _ in 0..60 {
        // Taken before connecting: the server may accept (and start its header timer) before
        // this task runs again, so an instant taken after `connect` could be late.
        let connecting = Instant::now();
        let stream = connect_from(from, base_url).await;
        flood.push((stream, connecting));
    }
    flood
}

/// Watches a silent flood until every connection is closed, and checks who closed when: the 20
/// over the cap at once, on accept; the 40 accepted by the header timeout, which starts at
/// accept, so never sooner than `HEADER_TIMEOUT` after the connection was made. Telling them
/// apart by that time, rather than by a short watch, does not depend on the machine's speed.
async fn silent_flood_is_capped_then_timed_out(flood: Vec<(TcpStream, Instant)>) {
    let lifetimes =
        futures::future::join_all(flood.into_iter().map(|(mut stream, connected)| async move {
            assert!(
                closed_within(&mut stream, HEADER_TIMEOUT + Duration::from_secs(20)).await,
                "a connection that never sends headers is closed"
            );
            connected.elapsed()
        }))
        .await;
    let at_once = lifetimes.iter().filter(|t| **t < HEADER_TIMEOUT).count();
    assert_eq!(
        at_once, 20,
        "connections over the per-address cap are closed on accept, the others by the header timeout: {lifetimes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_finishes_its_body_gets_408() {
    let auth = limited_auth(64, Duration::from_secs(1)).await;
    let began = Instant::now();
    let mut stream = slow_request(&auth).await;
    let status = status_line(&mut stream).await;
    assert!(status.contains("408"), "{status}");
    // Answered by the request timeout (1 s), not before it; status_line's deadline rules out a
    // hang.
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_headers_get_413_and_431() {
    let auth = limited_auth(64, Duration::from_secs(1)).await;
    // A chunked body with no Content-Length, far over the limit.
    let addr = auth.base_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "POST /oauth2/token HTTP/1.1\r\nhost: auth.test\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
    for _ in 0..64 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let status = status_line(&mut stream).await;
    assert!(status.contains("413"), "{status}");
    // A declared length over the limit is refused before the body is read.
    let response = http()
        .post(auth.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = http()
        .get(auth.url("/healthz"))
        .header("x-padding", "a".repeat(1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(
        common::get_status(auth.url("/healthz")).await,
        StatusCode::OK
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_on_after_a_431_is_drained_not_reset() {
    // The race behind a client's "broken pipe": hyper has read every byte that had arrived of an
    // over-long head when it answers 431 and drops the connection, and the client, a moment
    // behind, sends more of it. Made certain here: the head is exactly hyper's buffer limit, so
    // nothing is left waiting when it is refused, and the rest is sent only after the whole
    // answer has been read. A connection dropped with nothing waiting used to close outright,
    // and those later bytes drew a reset.
    let db = test_db(Backend::Sqlite).await.unwrap();
    let settings = TestAuth::settings(&db);
    let limit = settings.transport.headers.head_buffer_bytes();
    let auth = spawn_auth_with(db, settings).await;
    let mut stream = connect_from("127.0.0.1", &auth.base_url).await;
    let line = "GET /healthz HTTP/1.1\r\nhost: auth.test\r\nx-padding: ";
    let head = format!("{line}{}", "a".repeat(limit - line.len()));
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("an answer, not a hang")
        .expect("the answer, then the end of the server's side");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // The server has shut its side; the client, not yet aware of it, goes on sending. A reset
    // drawn by the first bytes is seen by the next write (a read after the server's end of
    // file only ever sees that end). Whatever the server does with those bytes it does at once:
    // a reset would be here long before this wait ends, and draining goes on for seconds.
    for round in 0..2 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Err(error) = stream.write_all(&[b'a'; 64 * 1024]).await {
            panic!("the connection was reset, not drained: {error:?}");
        }
    }
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_an_oversized_request_reads_the_answer_not_a_reset() {
    // The server answers before it has read what the client is still sending: a head over
    // hyper's buffer (431) or a declared body over the limit (413). Closing with unread bytes
    // makes the kernel reset the connection, and a client still writing then sees "connection
    // reset" or "broken pipe" instead of the answer; the server drains them for a moment
    // instead. Repeated, since a reset depends on timing.
    let auth = limited_auth(64, Duration::from_secs(5)).await;
    for round in 0..20 {
        let head = http()
            .get(auth.url("/healthz"))
            .header("x-padding", "a".repeat(1024 * 1024));
        let body = http()
            .post(auth.url("/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 4 * 1024 * 1024]);
        for (what, request, expected) in [
            (
                "1 MB header",
                head,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            ("4 MB body", body, StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            match request.send().await {
                Ok(response) => assert_eq!(response.status(), expected, "round {round}, {what}"),
                Err(error) => panic!("round {round}, {what}: no answer: {error:?}"),
            }
        }
    }
    assert_eq!(
        common::get_status(auth.url("/healthz")).await,
        StatusCode::OK
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_requests_is_shed_with_503_and_the_server_recovers() {
    let request_timeout = Duration::from_secs(5);
    let auth = limited_auth(4, request_timeout).await;
    let began = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(slow_request(&auth).await);
    }
    // Once the four slow requests hold every slot, a normal client is answered at once with
    // 503, not left waiting for a slot. Polled until then rather than slept for, since how soon
    // the server takes the slow requests in depends on the machine.
    let response = probe_until_shed(&mut slow, "127.0.0.1", &auth.base_url, || {
        http().get(auth.url("/healthz")).send().map(Result::unwrap)
    })
    .await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(
        began.elapsed() < request_timeout,
        "shed while the slow requests held their slots, not after they timed out: {:?}",
        began.elapsed()
    );
    // The slow requests time out (408) and free their slots.
    for stream in &mut slow {
        assert!(status_line(stream).await.contains("408"));
    }
    assert_eq!(
        common::get_status(auth.url("/healthz")).await,
        StatusCode::OK
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_requests_from_one_address_leaves_others_served() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    let request_timeout = Duration::from_secs(10);
    settings.request_timeout = request_timeout;
    settings.max_concurrent_requests = 64;
    settings.transport.limits = flood_limits();
    let auth = spawn_auth_with(db, settings).await;
    let (client, secret) = auth.client("acme", "orders:read").await;

    // 100 token requests whose bodies never finish, from one address.
    let began = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..100 {
        let mut stream = connect_from("127.0.0.1", &auth.base_url).await;
        let _ = stream.write_all(SLOW_TOKEN_REQUEST.as_bytes()).await;
        flood.push(stream);
    }

    // While the flood holds its slots, a partner on another address gets tokens: all five are
    // answered before the flood's requests time out, so none waited for a flooded slot.
    let partner = common::http_from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(
            common::token_response_via(
                &partner,
                &auth,
                ClientAuth::Basic,
                client.client_id.as_str(),
                secret.expose(),
                common::CLIENT_CREDENTIALS
            )
            .await
            .status(),
            StatusCode::OK
        );
    }
    assert!(
        began.elapsed() < request_timeout,
        "the partner was served during the flood, before its requests timed out: {:?}",
        began.elapsed()
    );

    // Each flooding request is answered 408 (one of the 8 let in), 503 (over the address's
    // in-flight bound) or has its connection closed (over the connection bound; how many depends
    // on how soon the shed connections close); none hangs.
    let (mut timed_out, mut shed, mut closed) = (0, 0, 0);
    for stream in &mut flood {
        let status = status_line(stream).await;
        if status.contains("408") {
            timed_out += 1;
        } else if status.contains("503") {
            shed += 1;
        } else {
            assert_eq!(
                status, "",
                "an answer other than 408, 503 or a closed connection"
            );
            closed += 1;
        }
    }
    println!(
        "100 slow requests from one address: {timed_out} × 408, {shed} × 503, {closed} closed"
    );
    assert!(
        timed_out <= 8,
        "at most 8 requests of one address in flight: {timed_out}"
    );
    assert!(
        timed_out >= 1 && shed >= 1,
        "408: {timed_out}, 503: {shed}, closed: {closed}"
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_connections_is_capped_and_timed_out_on_both_servers() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.transport.limits = flood_limits();
    let auth = spawn_auth_with(db, settings).await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let api = system::spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        settings.transport.limits = flood_limits();
    })
    .await
    .unwrap();
    api.wait_ready().await;
    let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;

    let began = Instant::now();
    let auth_flood = silent_connection_flood(&auth.base_url, "127.0.0.3").await;
    let api_flood = silent_connection_flood(&api.base_url, "127.0.0.3").await;
    // Both servers answer a partner on another address while the flood holds its connections.
    let partner = common::http_from("127.0.0.2");
    assert_eq!(
        common::token_response_via(
            &partner,
            &auth,
            ClientAuth::Basic,
            client.client_id.as_str(),
            secret.expose(),
            common::CLIENT_CREDENTIALS
        )
        .await
        .status(),
        StatusCode::OK
    );
    let response = partner
        .get(api.url("/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        began.elapsed() < HEADER_TIMEOUT,
        "the partner was served while the flood held its connections: {:?}",
        began.elapsed()
    );

    futures::future::join(
        silent_flood_is_capped_then_timed_out(auth_flood),
        silent_flood_is_capped_then_timed_out(api_flood),
    )
    .await;
    // The flooding address may connect again once its connections are gone.
    assert_eq!(
        common::http_from("127.0.0.3")
            .get(auth.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

/// A GET of `url` carrying `count` headers `x-pad-0`, `x-pad-1`, … of `size` bytes of value each.
async fn get_padded(
    http: &reqwest::Client,
    url: &str,
    count: usize,
    size: usize,
) -> reqwest::Response {
    let mut request = http.get(url);
    for i in 0..count {
        request = request.header(format!("x-pad-{i}"), "a".repeat(size));
    }
    request.send().await.unwrap()
}

/// Asserts a 431 answered by `edge::HeaderLimitLayer`: problem+json, as the edge's other
/// refusals.
async fn assert_problem_431(response: reqwest::Response, what: &str) {
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{what}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], 431, "{what}: {body}");
}

/// Both services, each on its own SQLite database, with `limits` (the defaults when `None`).
async fn both_services(limits: Option<edge::HeaderLimits>) -> (TestAuth, system::TestApi) {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    if let Some(limits) = limits {
        settings.transport.headers = limits;
    }
    let auth = spawn_auth_with(db, settings).await;
    let api = system::spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        if let Some(limits) = limits {
            settings.transport.headers = limits;
        }
    })
    .await
    .unwrap();
    (auth, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_header_over_16_kib_gets_431_on_both_services() {
    let (auth, api) = both_services(None).await;
    for url in [auth.url("/healthz"), api.url("/healthz")] {
        // Name and value: 7 + 17,408 bytes.
        let response = get_padded(&http(), &url, 1, 17 * 1024).await;
        assert_problem_431(response, &format!("a 17 KiB header at {url}")).await;
        // 7 + 16,320 bytes, just under 16 KiB.
        let response = get_padded(&http(), &url, 1, 16 * 1024 - 64).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_32_kib_together_get_431_on_both_services() {
    let (auth, api) = both_services(None).await;
    for url in [auth.url("/healthz"), api.url("/healthz")] {
        // Three headers of 8 KiB are within both limits.
        let response = get_padded(&http(), &url, 3, 8 * 1024).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        // Four are 32,812 bytes on the wire before any other header: just over the limit, so
        // the edge layer answers, in problem+json.
        let response = get_padded(&http(), &url, 4, 8 * 1024).await;
        assert_problem_431(response, &format!("4 × 8 KiB headers at {url}")).await;
        // Sixteen (128 KiB) are far beyond what hyper buffers of a head (40 KiB, or about
        // twice that as its buffer grows): hyper refuses the head itself, before parsing it,
        // with a 431 of its own.
        let response = get_padded(&http(), &url, 16, 8 * 1024).await;
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "16 × 8 KiB headers at {url}"
        );
        // And the server goes on answering.
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smaller_configured_header_limits_are_honoured_on_both_services() {
    let limits = edge::HeaderLimits {
        max_header_bytes: 4 * 1024,
        max_header_list_bytes: 8 * 1024,
    };
    let (auth, api) = both_services(Some(limits)).await;
    for url in [auth.url("/healthz"), api.url("/healthz")] {
        let response = get_padded(&http(), &url, 1, 5 * 1024).await;
        assert_problem_431(response, &format!("a 5 KiB header at {url}")).await;
        let response = get_padded(&http(), &url, 1, 3 * 1024).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        // Two headers of 3 KiB fit in 8 KiB; three do not.
        let response = get_padded(&http(), &url, 2, 3 * 1024).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let response = get_padded(&http(), &url, 3, 3 * 1024).await;
        assert_problem_431(response, &format!("3 × 3 KiB headers at {url}")).await;
    }
    api.stop().await;
    auth.stop().await;
}

/// HTTP/2 (which TLS clients negotiate) meets the same limits: hyper's own HTTP/2 default of
/// 16 KiB for the header list would refuse what the configured 32 KiB allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_meet_the_same_header_limits() {
    let (auth, api) = both_services(None).await;
    // A client of its own: the shared one speaks HTTP/1.1 to plaintext servers.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for url in [auth.url("/healthz"), api.url("/healthz")] {
        let response = get_padded(&h2, &url, 3, 8 * 1024).await;
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "24 KiB of headers at {url}"
        );
        let response = get_padded(&h2, &url, 1, 17 * 1024).await;
        assert_problem_431(response, &format!("a 17 KiB header over HTTP/2 at {url}")).await;
        let response = get_padded(&h2, &url, 4, 8 * 1024).await;
        assert_problem_431(response, &format!("4 × 8 KiB headers over HTTP/2 at {url}")).await;
    }
    api.stop().await;
    auth.stop().await;
}

/// An answer as it came off the wire: status, headers and body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    /// Sends `request` (raw bytes) on a fresh connection to `base_url` and reads the answer: its
    /// head, then as many bytes as its `Content-Length` says, or until the server closes. The
    /// 30 s deadline only tells a hang from an answer.
    async fn raw(base_url: &str, request: &[u8]) -> Answer {
        let addr = base_url.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(request).await;
        Answer::read(&mut stream).await
    }

    async fn read(stream: &mut TcpStream) -> Answer {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let answer = Answer::parse(&bytes[..end], bytes[end + 4..].to_vec());
                let length: Option<usize> =
                    answer.header("content-length").and_then(|v| v.parse().ok());
                if length.is_some_and(|length| answer.body.len() >= length) {
                    return answer;
                }
            }
            let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer))
                .await
                .expect("an answer, not a hang");
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            }
        }
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&bytes)));
        Answer::parse(&bytes[..end], bytes[end + 4..].to_vec())
    }

    fn parse(head: &[u8], body: Vec<u8>) -> Answer {
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let mut headers = reqwest::header::HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').expect("a header line");
            headers.append(
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                value.trim().parse().unwrap(),
            );
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// An RFC 6749 §5.2 error of `status` and `error`, with `no-store`.
    fn assert_oauth_error(&self, status: u16, error: &str, what: &str) {
        assert_eq!(self.status, status, "{what}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{what}");
        let body = self.json();
        assert_eq!(body["error"], error, "{what}: {body}");
        assert!(body["error_description"].is_string(), "{what}: {body}");
    }

    /// An RFC 9457 problem of `status`.
    fn assert_problem(&self, status: u16, what: &str) {
        assert_eq!(self.status, status, "{what}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{what}: {body}");
        assert_eq!(body["type"], "about:blank", "{what}: {body}");
        assert!(body["title"].is_string(), "{what}: {body}");
    }
}

/// The token service's endpoints whose every answer is RFC 6749 JSON.
const OAUTH_ENDPOINTS: [&str; 3] = ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"];

/// A request head for `method path` announcing `length` bytes of form body (none of which is
/// sent), with `extra` header lines.
fn head(method: &str, path: &str, length: usize, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {length}\r\n{extra}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelopes_refusals_at_the_oauth_endpoints_are_rfc_6749_errors_with_no_store() {
    let auth = limited_auth(64, Duration::from_secs(1)).await;
    for path in OAUTH_ENDPOINTS {
        // A declared length over the envelope's 1 MiB bound: refused before the body is read.
        let answer = Answer::raw(&auth.base_url, head("POST", path, 2 << 20, "").as_bytes()).await;
        answer.assert_oauth_error(413, "invalid_request", &format!("2 MiB at {path}"));
        let answer = Answer::of(http().get(auth.url(path)).send().await.unwrap()).await;
        answer.assert_oauth_error(405, "invalid_request", &format!("GET {path}"));
        assert_eq!(answer.header("allow"), Some("POST"), "GET {path}");
        let answer = Answer::of(get_padded(&http(), &auth.url(path), 1, 17 * 1024).await).await;
        answer.assert_oauth_error(431, "invalid_request", &format!("17 KiB header at {path}"));
        // A body that never finishes arriving, past the 1 s request timeout.
        let slow = format!("{}grant_type=", head("POST", path, 100, ""));
        let answer = Answer::raw(&auth.base_url, slow.as_bytes()).await;
        answer.assert_oauth_error(408, "invalid_request", &format!("a slow body at {path}"));
    }
    // The token service's other paths, known and unknown, answer RFC 9457 problems.
    let answer = Answer::raw(
        &auth.base_url,
        head("POST", "/healthz", 2 << 20, "").as_bytes(),
    )
    .await;
    answer.assert_problem(413, "2 MiB at /healthz");
    let answer = Answer::of(http().post(auth.url("/healthz")).send().await.unwrap()).await;
    answer.assert_problem(405, "POST /healthz");
    assert_eq!(answer.header("allow"), Some("GET,HEAD"));
    let answer = Answer::of(
        http()
            .get(auth.url("/oauth2/nothing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_problem(404, "/oauth2/nothing");
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_token_service_answers_temporarily_unavailable_at_its_oauth_endpoints() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.request_timeout = Duration::from_secs(10);
    settings.max_concurrent_requests = 64;
    settings.transport.limits.requests_per_client = 2;
    let auth = spawn_auth_with(db, settings).await;
    // Two slow requests from one address take its two slots: that address is shed.
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(slow_request_from("127.0.0.7", &auth.base_url).await);
    }
    let client = common::http_from("127.0.0.7");
    let response = probe_until_shed(&mut slow, "127.0.0.7", &auth.base_url, || {
        client
            .post(auth.url("/oauth2/token"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .map(Result::unwrap)
    })
    .await;
    let answer = Answer::of(response).await;
    answer.assert_oauth_error(503, "temporarily_unavailable", "per address, /oauth2/token");
    assert_eq!(answer.header("retry-after"), Some("1"));
    let answer = Answer::of(client.get(auth.url("/healthz")).send().await.unwrap()).await;
    answer.assert_problem(503, "per address, /healthz");
    assert_eq!(answer.header("retry-after"), Some("1"));
    for stream in &mut slow {
        Answer::read(stream).await.assert_oauth_error(
            408,
            "invalid_request",
            "a slow token request",
        );
    }
    auth.stop().await;

    // The whole server full: the same answers.
    let auth = limited_auth(2, Duration::from_secs(10)).await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(slow_request(&auth).await);
    }
    let response = probe_until_shed(&mut slow, "127.0.0.1", &auth.base_url, || {
        http()
            .post(auth.url("/oauth2/revoke"))
            .form(&[("token", "x")])
            .send()
            .map(Result::unwrap)
    })
    .await;
    let answer = Answer::of(response).await;
    answer.assert_oauth_error(
        503,
        "temporarily_unavailable",
        "server full, /oauth2/revoke",
    );
    assert_eq!(answer.header("retry-after"), Some("1"));
    let answer = Answer::of(http().get(auth.url("/healthz")).send().await.unwrap()).await;
    answer.assert_problem(503, "server full, /healthz");
    for stream in &mut slow {
        Answer::read(stream).await;
    }
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_apis_refusals_are_problems() {
    let (auth, api) = both_services(None).await;
    let answer = Answer::raw(&api.base_url, head("GET", "/v1/me", 2 << 20, "").as_bytes()).await;
    answer.assert_problem(413, "2 MiB at /v1/me");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let answer = Answer::of(http().post(api.url("/healthz")).send().await.unwrap()).await;
    answer.assert_problem(405, "POST /healthz");
    assert_eq!(answer.header("allow"), Some("GET,HEAD"));
    let answer = Answer::of(http().get(api.url("/v2/nothing")).send().await.unwrap()).await;
    answer.assert_problem(404, "/v2/nothing");
    let answer = Answer::of(get_padded(&http(), &api.url("/v1/me"), 1, 17 * 1024).await).await;
    answer.assert_problem(431, "a 17 KiB header at /v1/me");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_400_invalid_request_not_413() {
    let auth = limited_auth(64, Duration::from_secs(5)).await;
    for path in OAUTH_ENDPOINTS {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\nzz\r\ngrant_type=client_credentials\r\n0\r\n\r\n"
        );
        let answer = Answer::raw(&auth.base_url, request.as_bytes()).await;
        answer.assert_oauth_error(400, "invalid_request", &format!("zz chunk at {path}"));
    }
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_authorization_headers_are_400_invalid_request_at_both_services() {
    let (auth, api) = both_services(None).await;
    api.wait_ready().await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{id}:{}", secret.expose())
        )
    );
    let token = common::token(&auth, id, secret.expose()).await;
    let bearer = format!("Bearer {token}");
    for (path, form) in [
        ("/oauth2/token", ("grant_type", "client_credentials")),
        ("/oauth2/revoke", ("token", token.as_str())),
        ("/oauth2/introspect", ("token", token.as_str())),
    ] {
        for (first, second) in [(&basic, &basic), (&basic, &bearer)] {
            let response = http()
                .post(auth.url(path))
                .header("authorization", first)
                .header("authorization", second)
                .form(&[form])
                .send()
                .await
                .unwrap();
            Answer::of(response).await.assert_oauth_error(
                400,
                "invalid_request",
                &format!("two at {path}"),
            );
        }
    }
    let response = http()
        .get(api.url("/v1/me"))
        .header("authorization", &bearer)
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    let answer = Answer::of(response).await;
    answer.assert_problem(400, "two Authorization headers at /v1/me");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"partner-api\", error=\"invalid_request\""),
        "{challenge}"
    );
    // One is still fine.
    assert_eq!(
        common::get(&api, "/v1/me", &token).await.status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_client_cert_fields_from_a_trusted_proxy_are_400_at_both_services() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.transport.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let auth = spawn_auth_with(db, settings).await;
    let api = system::spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        settings.transport.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await
    .unwrap();
    let one = test_support::pki::self_signed(&test_support::pki::Subject::cn("one"), false);
    let two = test_support::pki::self_signed(&test_support::pki::Subject::cn("two"), false);
    let field = |der: &[u8]| {
        format!(
            ":{}:",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der)
        )
    };
    let response = http()
        .post(auth.url("/oauth2/token"))
        .header("client-cert", field(&one.der))
        .header("client-cert", field(&two.der))
        .form(&[("grant_type", "client_credentials"), ("client_id", "x")])
        .send()
        .await
        .unwrap();
    Answer::of(response).await.assert_oauth_error(
        400,
        "invalid_request",
        "two Client-Cert at /oauth2/token",
    );
    let response = http()
        .get(api.url("/v1/me"))
        .header("client-cert", field(&one.der))
        .header("client-cert", field(&one.der))
        .send()
        .await
        .unwrap();
    Answer::of(response)
        .await
        .assert_problem(400, "two Client-Cert at /v1/me");
    api.stop().await;
    auth.stop().await;
}
