//! `medrec serve`: the API's router behind a plain HTTP server, over the wire.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use medrec_testkit::{curl, free_port, TestDb};
use serde_json::Value as Json;

use crate::medrec;

/// Kills the server on drop.
pub struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `medrec serve` on a free port over `db`, once it answers; and its base URL.
fn serve(db: &TestDb, extra: &[&str]) -> (Server, String) {
    serve_with(db, |command| {
        command.args(extra);
    })
}

/// [`serve`] with its command changed by `configure` (arguments, environment) before it starts.
pub fn serve_with(db: &TestDb, configure: impl FnOnce(&mut Command)) -> (Server, String) {
    let port = free_port();
    let mut command = medrec().on(db).command();
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("MEDREC_API_KEY", "serve-test-key")
        .stdin(Stdio::null());
    configure(&mut command);
    let server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while curl(&[&format!("{base}/health")]).0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, base)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_like_the_api_function() {
    let db = TestDb::with_sample().await.unwrap();
    let (_server, base) = serve(&db, &[]);

    let key = "x-api-key: serve-test-key";
    let (status, body) = curl(&["-H", key, &format!("{base}/persons/3591/features")]);
    assert_eq!(status, 200, "{body}");
    let json: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(json["data"]["taking_alpha_blockers"], true);
    let (status, body) = curl(&["-H", key, &format!("{base}/persons/3597?types=labs")]);
    assert_eq!(status, 200);
    let json: Json = serde_json::from_str(&body).unwrap();
    assert!(!json["data"]["labs"].as_array().unwrap().is_empty());
    assert!(json["data"].get("rx").is_none());
    assert_eq!(curl(&[&format!("{base}/persons/3591")]).0, 401);
    assert_eq!(curl(&["-H", key, &format!("{base}/persons/abc")]).0, 400);
    assert_eq!(
        curl(&["-H", key, "-X", "POST", &format!("{base}/persons/3591")]).0,
        405
    );
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Reads one answer (its head, then `content-length` bytes of body) off `stream`.
fn read_answer(stream: &mut TcpStream) -> std::io::Result<Answer> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap().to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(Answer {
        status: head[9..12].parse().unwrap(),
        head,
        body: String::from_utf8(body).unwrap(),
    })
}

/// Connects to `base` (`http://host:port`).
fn connect(base: &str) -> TcpStream {
    let stream = TcpStream::connect(base.strip_prefix("http://").unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Sends `request` whole on a new connection and reads the answer.
fn exchange(base: &str, request: &[u8]) -> Answer {
    let mut stream = connect(base);
    stream.write_all(request).unwrap();
    read_answer(&mut stream).unwrap()
}

fn assert_problem(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(
        answer
            .head
            .contains("content-type: application/problem+json\r\n"),
        "{answer:?}"
    );
    let body: Json = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["status"], status, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_http_server_refuses_itself_is_a_problem_document_too() {
    let db = TestDb::with_sample().await.unwrap();
    let (_server, base) = serve(&db, &[]);
    // A 100 KB path: past the 64 KiB a URI may have, hyper refuses it before the router.
    let path = format!("/persons/{}", "1".repeat(100_000));
    let long = exchange(
        &base,
        format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
    );
    assert_problem(&long, 414);
    assert!(long.head.contains("connection: close\r\n"));
    // A head hyper cannot parse.
    let malformed = exchange(&base, b"GET /health HTTP/1.1\r\nbad header\r\n\r\n");
    assert_problem(&malformed, 400);
    // Under 64 KiB, the router answers: a bad person id.
    let path = format!("/persons/{}", "1".repeat(30_000));
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nx-api-key: serve-test-key\r\n\r\n");
    assert_problem(&exchange(&base, request.as_bytes()), 400);

    // A body declared past the limit is refused at once, unread (none is sent here).
    let started = Instant::now();
    let post = exchange(
        &base,
        b"POST /persons/3591 HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n",
    );
    assert_problem(&post, 413);
    assert!(started.elapsed() < Duration::from_secs(2));
    // A chunked one is never read either: answered, and the connection closed, while the
    // client still has the body to send.
    let mut stream = connect(&base);
    stream
        .write_all(b"POST /health HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
        .unwrap();
    assert_problem(&read_answer(&mut stream).unwrap(), 405);
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap_or(0), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_time_out_and_the_connection_limit_makes_new_ones_wait() {
    let db = TestDb::with_sample().await.unwrap();
    let (_server, base) = serve(&db, &["--max-connections", "2"]);
    let health = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n";

    // Two connections take both slots: one idle, one served (and kept alive).
    let opened = Instant::now();
    let mut idle = connect(&base);
    std::thread::sleep(Duration::from_millis(200));
    let mut served = connect(&base);
    served.write_all(health).unwrap();
    assert_eq!(read_answer(&mut served).unwrap().status, 200);
    served.write_all(health).unwrap();
    assert_eq!(read_answer(&mut served).unwrap().status, 200);

    // A third waits, unanswered, while they are open...
    let mut waiting = connect(&base);
    waiting.write_all(health).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let error = read_answer(&mut waiting).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
    // ...and is served once one closes.
    drop(served);
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(read_answer(&mut waiting).unwrap().status, 200);

    // The idle one is closed, unanswered, after the header timeout (10 s).
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    let after = opened.elapsed();
    assert!(
        after > Duration::from_secs(9) && after < Duration::from_secs(15),
        "{after:?}"
    );
    // And so is the kept-alive one, idle since its answer.
    assert_eq!(waiting.read_to_end(&mut rest).unwrap(), 0);
    assert!(opened.elapsed() > Duration::from_secs(10));
}
