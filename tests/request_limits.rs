//! Oversized, slow and flooding requests get 413, 408, 431 or 503 — never a hang — and the
//! servers answer normal clients afterwards.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestAuth, http, spawn_auth_with, test_db};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn limited_auth(max_concurrent: usize) -> TestAuth {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.request_timeout = Duration::from_secs(1);
    settings.max_concurrent_requests = max_concurrent;
    spawn_auth_with(db, settings).await
}

/// Opens a connection and sends a token request whose body never finishes arriving.
async fn slow_request(auth: &TestAuth) -> TcpStream {
    let addr = auth.base_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "POST /oauth2/token HTTP/1.1\r\nhost: auth.test\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\ngrant_type=";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

async fn status_line(stream: &mut TcpStream) -> String {
    let mut buffer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    String::from_utf8_lossy(&buffer[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_finishes_its_body_gets_408() {
    let auth = limited_auth(64).await;
    let began = Instant::now();
    let mut stream = slow_request(&auth).await;
    let status = status_line(&mut stream).await;
    assert!(status.contains("408"), "{status}");
    assert!(began.elapsed() < Duration::from_secs(3));
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_headers_get_413_and_431() {
    let auth = limited_auth(64).await;
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
        http()
            .get(auth.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_requests_is_shed_with_503_and_the_server_recovers() {
    let auth = limited_auth(4).await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(slow_request(&auth).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every slot is taken: a normal client is answered at once with 503, not left waiting.
    let began = Instant::now();
    let response = http().get(auth.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(
        began.elapsed() < Duration::from_millis(500),
        "shed at once: {:?}",
        began.elapsed()
    );
    // The slow requests time out (408) and free their slots.
    for stream in &mut slow {
        assert!(status_line(stream).await.contains("408"));
    }
    assert_eq!(
        http()
            .get(auth.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    auth.stop().await;
}
