//! `medrec serve`: the API's router (`medrec_api::router`, the same code the `api` function
//! runs) behind a plain HTTP/1.1 server (hyper, one task per connection), for benchmarks and for
//! running the API without `cargo lambda`. Requests reach the router as API Gateway's would:
//! method, path, query and headers. No graceful shutdown: the process stops on its signal, as it
//! always has.
//!
//! The connection limits, none of which the router can see:
//! - [`HEADER_READ_TIMEOUT`]: a connection that has not sent a whole request head within it is
//!   closed, without an answer. hyper starts the timer whenever it waits for a head, so it is also
//!   the idle (keep-alive) timeout between requests.
//! - [`MAX_CONNECTIONS`] (`--max-connections`, and never more than the open-file limit allows):
//!   past it, new connections wait in the listen backlog, unaccepted, until one closes; the open
//!   ones keep being served.
//! - A request body is never read: the router answers 413 to a declared length over
//!   `medrec_api::MAX_REQUEST_BODY` before reading it, and hyper closes a connection whose body
//!   was left unread instead of draining it. Memory does not grow with the body's size.
//! - hyper answers a request head it cannot take (a URI over 64 KiB: 414; a head over its buffer,
//!   ~400 KiB: 431; a malformed one: 400) by itself, before the router, with an empty body;
//!   [`ProblemHeads`] rewrites those answers into problem documents, as the router's are.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use medrec_api::problem::{Problem, PROBLEM_JSON};
use medrec_store::DbConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;

/// How long a connection may take to send a request head, counted from when the server waits
/// for one: on a new connection and between the requests of a kept-alive one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default of `--max-connections`: connections served at once.
pub const MAX_CONNECTIONS: usize = 512;

/// File descriptors kept out of the connection limit: the database pool's, the listener,
/// standard streams and the like.
const RESERVED_FDS: usize = 32;

/// How long to pause after a failed accept (out of file descriptors and the like) before
/// accepting again; the open connections keep being served.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

pub async fn run(
    listen: SocketAddr,
    db: &DbConfig,
    pool_size: usize,
    keys: medrec_api::ApiKeys,
    max_connections: usize,
) -> anyhow::Result<()> {
    let pool = medrec_store::pool(db, pool_size)?;
    let router = medrec_api::router_with_keys(pool, keys)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let max_connections = connection_limit(max_connections, pool_size);
    eprintln!(
        "serving the API on http://{} (at most {max_connections} connections)",
        listener.local_addr()?
    );
    let slots = Arc::new(Semaphore::new(max_connections));
    let service = TowerToHyperService::new(router);
    loop {
        // A slot first: at the limit, connections wait unaccepted.
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(ProblemHeads::new(stream)), service);
            // Timeouts, resets and unparsable heads end the connection; nothing to report.
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended");
            }
            drop(slot);
        });
    }
}

/// `wanted`, lowered so that the connections fit under the open-file limit.
fn connection_limit(wanted: usize, pool_size: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    wanted
        .min(files.saturating_sub(RESERVED_FDS + pool_size))
        .max(1)
}

/// A connection whose writes of hyper's own error answers (a status line of 400, 414 or 431
/// and `content-length: 0`, written whole when hyper gives up on a request head) are replaced by
/// a problem document. The router never answers an error with an empty body, so nothing else
/// matches. hyper closes the connection after such an answer; the document says so.
pub struct ProblemHeads<T> {
    inner: T,
    /// The replacement being written: its bytes, how many are written, and the length of the
    /// write it stands for.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<T> ProblemHeads<T> {
    pub fn new(inner: T) -> Self {
        ProblemHeads {
            inner,
            replacing: None,
        }
    }
}

/// The problem answer standing for `head`, if it is one of hyper's own error answers.
fn problem_for(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() > 512 || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let status = match head.get(..13)? {
        b"HTTP/1.1 400 " => StatusCode::BAD_REQUEST,
        b"HTTP/1.1 414 " => StatusCode::URI_TOO_LONG,
        b"HTTP/1.1 431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n").skip(1).filter(|l| !l.is_empty());
    let mut date = None;
    let mut empty = false;
    for line in lines.by_ref() {
        let (name, value) = line.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => empty = value.trim() == "0",
            "date" => date = Some(value.trim()),
            "connection" => {}
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let body = Problem::for_bare_status(status).to_json();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    );
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

impl<T: AsyncWrite + Unpin> ProblemHeads<T> {
    /// Writes the replacement on; ready with the length of the write it stands for.
    fn poll_replacing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, stands_for)) = &mut self.replacing {
            if *written == bytes.len() {
                let n = *stands_for;
                self.replacing = None;
                return Poll::Ready(Ok(n));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        unreachable!("called while replacing")
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemHeads<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemHeads<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match problem_for(buf) {
                Some(answer) => this.replacing = Some((answer, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        this.poll_replacing(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            let mut filled = bufs.iter().filter(|b| !b.is_empty());
            match (filled.next(), filled.next()) {
                (Some(only), None) if problem_for(only).is_some() => {}
                _ => return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            }
            let only = bufs.iter().find(|b| !b.is_empty()).expect("found above");
            this.replacing = problem_for(only).map(|answer| (answer, 0, only.len()));
        }
        this.poll_replacing(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_become_problem_documents() {
        let answer = problem_for(
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2035 00:00:00 GMT\r\n\r\n",
        )
        .unwrap();
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(text.contains("content-type: application/problem+json\r\n"));
        assert!(text.contains("date: Mon, 01 Jan 2035 00:00:00 GMT\r\n"));
        assert!(text.ends_with(r#""status":414,"title":"URI Too Long","type":"about:blank"}"#));
        for other in [
            &b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 12\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert!(problem_for(other).is_none());
        }
    }
}
