//! The local server's own limits, driven over raw TCP the way a slow or hostile client would:
//! oversized heads, trickling heads and bodies, idle connections, too many uploads at once and
//! multipart bodies built to exhaust the parser. Every one ends in a clear answer or a closed
//! connection, and the server goes on serving.

use std::time::{Duration, Instant};

use registry_server::HttpLimits;
use registry_tests::{BackendKind, Package, TestApp};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Limits short enough for tests to watch them act.
fn quick_limits() -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs(1),
        body_window: Duration::from_secs(1),
        min_body_rate: 1024,
        max_concurrent_uploads: 2,
        ..HttpLimits::default()
    }
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(BackendKind::Embedded, |config| config.http = quick_limits()).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base_url.trim_start_matches("http://")).await.expect("connect")
}

/// Reads until the server closes the connection (or 10 s pass): what it sent, and how long it took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the server kept the connection open for 10 s"),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

/// Sends `bytes` one at a time, `every` apart, until the server stops taking them.
async fn trickle(writer: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8], every: Duration) {
    for byte in bytes {
        if writer.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

async fn still_serves(app: &TestApp) {
    assert_eq!(app.read("nothing-1.0.0").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let app = spawn().await;
    let mut stream = connect(&app).await;
    let padding = "a".repeat(HttpLimits::default().max_header_bytes + 1);
    let request = format!("GET /v2/connectors/read/x-1.0.0 HTTP/1.1\r\nhost: x\r\nx-padding: {padding}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    still_serves(&app).await;
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_cut_off_at_the_header_timeout() {
    let app = spawn().await;
    let mut stream = connect(&app).await;
    let head =
        b"GET /v2/connectors/read/x-1.0.0 HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let (mut reader, mut writer) = stream.split();
    let started = Instant::now();
    let sending = trickle(&mut writer, head, Duration::from_millis(100));
    let reading = async {
        let mut buffer = [0u8; 1024];
        let mut received = Vec::new();
        while let Ok(Ok(n @ 1..)) = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buffer)).await {
            received.extend_from_slice(&buffer[..n]);
        }
        received
    };
    let ((), received) = tokio::join!(sending, reading);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "closed after {elapsed:?}");
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains("200 OK") && !text.contains("404"), "the request was served: {text}");
    still_serves(&app).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let app = spawn().await;
    let mut stream = connect(&app).await;
    let (answer, elapsed) = read_until_closed(&mut stream).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(elapsed < Duration::from_secs(5), "closed after {elapsed:?}");
}

#[tokio::test]
async fn a_body_sent_a_byte_a_second_gets_408() {
    let app = spawn().await;
    for (path, content_type) in
        [("/v2/connectors/list", "application/json"), ("/v2/connector/register", "multipart/form-data; boundary=B")]
    {
        let (mut reader, mut writer) = connect(&app).await.into_split();
        let head =
            format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: 1000\r\n\r\n");
        writer.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let trickling =
            tokio::spawn(async move { trickle(&mut writer, &[b' '; 1000], Duration::from_millis(250)).await });
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains("}}") {
            match tokio::time::timeout(Duration::from_secs(8), reader.read(&mut buffer)).await {
                Ok(Ok(n @ 1..)) => received.extend_from_slice(&buffer[..n]),
                Ok(_) => break,
                Err(_) => panic!("{path}: the trickle was never cut off"),
            }
        }
        trickling.abort();
        let answer = String::from_utf8_lossy(&received);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: cut off after {:?}", started.elapsed());
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn uploads_beyond_the_limit_get_503_and_a_retry_succeeds() {
    let app = spawn().await;
    // Two uploads in progress, sending just fast enough to stay alive.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&app).await;
        let head = "POST /v2/connector/register HTTP/1.1\r\nhost: x\r\n\
                    content-type: multipart/form-data; boundary=B\r\ncontent-length: 100000000\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[b'-'; 4096]).await.unwrap();
        open.push(stream);
    }
    let keep_alive = tokio::spawn(async move {
        for _ in 0..100 {
            for stream in &mut open {
                let _ = stream.write_all(&[b'-'; 2048]).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let package = Package::single_tenant("kafka-connector", "1.0.0").tar_gz();
    let refused = app.register("k.tar.gz", package.clone()).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "FAILED_TO_REGISTER_CONNECTOR");
    assert_eq!(refused.body["error"]["message"], "Too many uploads in progress, please retry shortly");
    // Reads are not uploads.
    still_serves(&app).await;

    keep_alive.abort();
    let _ = keep_alive.await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let retried = app.register("k.tar.gz", package.clone()).await;
        if retried.status == StatusCode::OK {
            break;
        }
        assert_eq!(retried.status, StatusCode::SERVICE_UNAVAILABLE, "{}", retried.text);
        assert!(Instant::now() < deadline, "the upload slots were never released");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.all_rows().await, [("kafka-connector-1.0.0".to_owned(), "Live".to_owned())]);
}

#[tokio::test]
async fn hostile_multipart_bodies_get_400() {
    let app = spawn().await;
    let register = |content_type: &str, body: Vec<u8>| {
        app.client.post(app.url("/v2/connector/register")).header("content-type", content_type).body(body).send()
    };
    let huge_header = format!(
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}.tar.gz\"\r\n\r\ndata\r\n--B--\r\n",
        "a".repeat(1024 * 1024)
    );
    let many_headers = format!("--B\r\n{}\r\ndata\r\n--B--\r\n", "x-h: v\r\n".repeat(100));
    let cases: [(&str, Vec<u8>); 5] = [
        ("multipart/form-data", b"--B\r\n\r\n--B--".to_vec()),
        ("multipart/form-data; boundary=B", huge_header.into_bytes()),
        ("multipart/form-data; boundary=B", many_headers.into_bytes()),
        (
            "multipart/form-data; boundary=B",
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"k.tgz\"\r\n\r\ntruncated".to_vec(),
        ),
        ("multipart/form-data; boundary=B", b"garbage before any boundary".to_vec()),
    ];
    for (content_type, body) in cases {
        let answer = TestApp::answer(register(content_type, body).await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert_eq!(answer.body["error"]["code"], "FAILED_TO_UPLOAD", "{}", answer.text);
    }
    assert!(app.all_rows().await.is_empty());
    assert!(app.stored_archives().await.is_empty());
}

/// A refusal that may come before the body was read says `Connection: close`; an answer to a
/// request without a body keeps the connection.
#[tokio::test]
async fn refusals_of_requests_with_a_body_close_the_connection() {
    let app = spawn().await;
    let client = reqwest::Client::new();
    let refused =
        client.post(format!("{}/v2/no/such/route", app.base_url)).body("x".repeat(1000)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(refused.headers().get("connection").map(|v| v.as_bytes()), Some(&b"close"[..]));
    let missing = client.get(format!("{}/v2/connectors/read/nothing-1.0.0", app.base_url)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers().get("connection"), None);
    still_serves(&app).await;
}
