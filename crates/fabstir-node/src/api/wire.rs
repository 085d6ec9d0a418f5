//! JSON bodies for the errors the HTTP server answers itself, below the
//! router.
//!
//! hyper (under axum) answers a request whose head it cannot parse on its
//! own, before any route or middleware sees it, and then closes the
//! connection: 400 for a malformed request line or header (also a bad
//! version, `Content-Length` or `Transfer-Encoding`), 414 for a request
//! target longer than 65,534 bytes, 431 for more than 100 header fields or
//! a head larger than its read buffer. It writes a bare head (`content-length:
//! 0`, no `content-type`) and offers no hook to change it. (It never answers
//! 408 or 505: a slow head is not timed out by `axum::serve`, and an unknown
//! version is a 400.)
//!
//! [`JsonErrorListener`] wraps each accepted connection in a
//! [`JsonErrorStream`], which recognises that head where it can only be, at
//! the very end of what hyper hands it to write (hyper buffers the head
//! whole, after any earlier pipelined responses, and writes nothing after
//! it), and writes instead the node's JSON error response with the same
//! status: `{"error": {"code", "message"}}`, `content-type:
//! application/json`, `connection: close`. The node's own responses never
//! look like it: every error the router answers carries a JSON content type
//! (see [`super::guard::json_errors`]). A normal write costs one comparison
//! of its last four bytes.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::error::ErrorCode;

/// The longest request target hyper reads (`u16::MAX - 1`); longer is 414.
pub const MAX_TARGET_BYTES: usize = 65_534;
/// The most header fields hyper reads (its default `max_headers`); more is 431.
pub const MAX_HEADER_FIELDS: usize = 100;
/// The largest request head hyper buffers (its default `max_buf_size`,
/// 8 KiB + 100 × 4 KiB); larger is 431.
pub const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;

/// The longest error head hyper writes, with room to spare: status line
/// (at most 46 bytes), `connection`, `content-length` and `date` (75),
/// blank line.
const MAX_ERROR_HEAD: usize = 256;

/// A TCP listener for `axum::serve` whose connections answer the HTTP
/// server's own errors with the node's JSON error body ([`JsonErrorStream`]).
/// Accept errors are handled as `axum::serve` handles them for a plain
/// `TcpListener`.
#[derive(Debug)]
pub struct JsonErrorListener {
    inner: TcpListener,
}

impl JsonErrorListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> Self {
        Self { inner }
    }
}

impl axum::serve::Listener for JsonErrorListener {
    type Io = JsonErrorStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.inner).await;
        (JsonErrorStream::new(stream), address)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that replaces the HTTP server's bare error response (see
/// the module documentation) with the JSON error response of the same
/// status; everything else passes through unchanged.
#[derive(Debug)]
pub struct JsonErrorStream<T> {
    inner: T,
    /// The JSON response that replaced hyper's head, and how much of it is
    /// written; written before anything else, on write, flush or shutdown.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> JsonErrorStream<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> JsonErrorStream<T> {
    /// Writes what is left of the replacement response.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Self { inner, replacement } = self;
        if let Some((bytes, written)) = replacement {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut *inner).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            *replacement = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrorStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrorStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        let from = buf.len().saturating_sub(MAX_ERROR_HEAD);
        match find_error_head(&buf[from..]) {
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
            // Earlier responses first: hyper passes the rest again.
            Some((start, _)) if from + start > 0 => {
                Pin::new(&mut this.inner).poll_write(cx, &buf[..from + start])
            }
            Some((_, head)) => {
                this.replacement = Some((replacement(&head), 0));
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        // The common case, a write that does not end a bodiless head, is
        // decided on its last bytes.
        let ends_head = match bufs.iter().rev().find(|b| !b.is_empty()) {
            None => false,
            Some(last) if last.len() >= 4 => last.ends_with(b"\r\n\r\n"),
            Some(last) => last.ends_with(b"\n"),
        };
        if !ends_head {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        // The last bytes, gathered across the slices.
        let mut tail = [0u8; MAX_ERROR_HEAD];
        let mut len = 0;
        for buf in bufs.iter().rev() {
            let take = (MAX_ERROR_HEAD - len).min(buf.len());
            let end = MAX_ERROR_HEAD - len;
            tail[end - take..end].copy_from_slice(&buf[buf.len() - take..]);
            len += take;
            if len == MAX_ERROR_HEAD {
                break;
            }
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        match find_error_head(&tail[MAX_ERROR_HEAD - len..]) {
            None => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            Some((start, _)) if total - len + start > 0 => {
                let prefix = truncated(bufs, total - len + start);
                Pin::new(&mut this.inner).poll_write_vectored(cx, &prefix)
            }
            Some((_, head)) => {
                this.replacement = Some((replacement(&head), 0));
                Poll::Ready(Ok(total))
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The first `len` bytes of `bufs`, as slices.
fn truncated<'a>(bufs: &'a [IoSlice<'a>], mut len: usize) -> Vec<IoSlice<'a>> {
    let mut prefix = Vec::with_capacity(bufs.len());
    for buf in bufs {
        if len == 0 {
            break;
        }
        let take = len.min(buf.len());
        prefix.push(IoSlice::new(&buf[..take]));
        len -= take;
    }
    prefix
}

/// The parts of hyper's error head the replacement keeps.
#[derive(Debug, PartialEq, Eq)]
struct ErrorHead<'a> {
    /// `HTTP/1.0` or `HTTP/1.1`.
    version: &'a [u8],
    status: StatusCode,
    /// The `date` value, when hyper wrote one.
    date: Option<&'a [u8]>,
}

/// Where the error head that `tail` ends with starts, and its parts; `None`
/// unless `tail` ends with exactly what hyper writes for its own errors: a
/// 4xx or 5xx status line and only `connection`, `content-length: 0` and
/// `date` fields (no `content-type`, so never one of the node's responses).
fn find_error_head(tail: &[u8]) -> Option<(usize, ErrorHead<'_>)> {
    if !tail.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = tail.windows(7).rposition(|w| w == b"HTTP/1.")?;
    let head = &tail[start..tail.len() - 4];
    // Every byte of every line is checked below: a bare CR or LF fails.
    let mut lines = crlf_lines(head);
    let status_line = lines.next()?;
    let version = status_line.get(..8)?;
    if version != b"HTTP/1.0" && version != b"HTTP/1.1" || status_line.get(8) != Some(&b' ') {
        return None;
    }
    let status = StatusCode::from_bytes(status_line.get(9..12)?).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    match &status_line[12..] {
        [] => {}
        [b' ', reason @ ..] if reason.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) => {}
        _ => return None,
    }
    let mut empty_body = false;
    let mut date = None;
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if !value.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) {
            return None;
        }
        if name.eq_ignore_ascii_case(b"content-length") && value == b"0" && !empty_body {
            empty_body = true;
        } else if name.eq_ignore_ascii_case(b"date") && date.is_none() {
            date = Some(value);
        } else if !name.eq_ignore_ascii_case(b"connection") {
            return None;
        }
    }
    empty_body.then_some((
        start,
        ErrorHead {
            version,
            status,
            date,
        },
    ))
}

/// The lines of `text`, split at CR LF.
fn crlf_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.windows(2).position(|w| w == b"\r\n") {
            Some(at) => {
                rest = Some(&text[at + 2..]);
                Some(&text[..at])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// What the client should do about the HTTP server's own error `status`.
fn message(status: StatusCode) -> String {
    match status {
        StatusCode::URI_TOO_LONG => format!(
            "the request target (path and query) is longer than {MAX_TARGET_BYTES} bytes, \
             the most this node reads; send large data in a POST body"
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => format!(
            "the request has more than {MAX_HEADER_FIELDS} header fields, or its request line \
             and headers exceed {MAX_HEAD_BYTES} bytes; send fewer or smaller headers"
        ),
        StatusCode::BAD_REQUEST => {
            "the request is not valid HTTP/1.0 or HTTP/1.1: its request line \
             (method, target, version) or a header is malformed, or Content-Length or \
             Transfer-Encoding is invalid; nothing was done"
                .to_string()
        }
        other => format!(
            "the HTTP server refused the request ({})",
            other.canonical_reason().unwrap_or("no reason given")
        ),
    }
}

/// The JSON error response that replaces `head`: same version and date, the
/// status of the code for hyper's status (the same status for 400, 414 and
/// 431), and the connection closes as hyper closes it.
fn replacement(head: &ErrorHead<'_>) -> Vec<u8> {
    let code = ErrorCode::for_status(head.status);
    let status = code.status();
    let body = code.body(&message(head.status)).to_string();
    let mut out = Vec::with_capacity(MAX_ERROR_HEAD + body.len());
    out.extend_from_slice(head.version);
    out.extend_from_slice(
        format!(
            " {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .as_bytes(),
    );
    if let Some(date) = head.date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Value;
    use tokio::io::AsyncWriteExt;

    const DATE: &str = "date: Sun, 06 Dec 2026 00:55:30 GMT\r\n";

    /// hyper 1's heads for its own errors, as it writes them (HTTP/1.0
    /// closes by default, so hyper names no connection option there).
    fn hyper_head(status: &str, version: &str) -> String {
        let connection = if version == "HTTP/1.1" {
            "connection: close\r\n"
        } else {
            ""
        };
        format!("{version} {status}\r\n{connection}content-length: 0\r\n{DATE}\r\n")
    }

    /// A response of the node's own: JSON, with a content type.
    fn node_response(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{DATE}\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn hyper_error_heads_are_recognised_at_the_end_only() {
        for (status, code) in [
            ("400 Bad Request", 400),
            ("414 URI Too Long", 414),
            ("431 Request Header Fields Too Large", 431),
        ] {
            for version in ["HTTP/1.1", "HTTP/1.0"] {
                let head = hyper_head(status, version);
                let (start, found) = find_error_head(head.as_bytes()).expect(&head);
                assert_eq!(start, 0);
                assert_eq!(found.status.as_u16(), code);
                assert_eq!(found.version, version.as_bytes());
                assert_eq!(
                    found.date,
                    Some(&b"Sun, 06 Dec 2026 00:55:30 GMT"[..]),
                    "{head}"
                );
                // After an earlier response in the same buffer.
                let earlier = node_response("200 OK", "{\"ok\":true}");
                let both = format!("{earlier}{head}");
                let (start, _) = find_error_head(both.as_bytes()).unwrap();
                assert_eq!(start, earlier.len());
                // Not when anything follows it.
                assert!(find_error_head(format!("{head}x").as_bytes()).is_none());
            }
        }
    }

    #[test]
    fn the_nodes_own_responses_are_not_hyper_errors() {
        let not_errors = [
            // An error of the router: JSON, with a body.
            node_response("404 Not Found", "{\"error\":{}}"),
            // The same to HEAD: the head ends the write, no body follows.
            node_response("404 Not Found", ""),
            // Bodiless successes: a CORS preflight, an empty 200.
            format!("HTTP/1.1 204 No Content\r\naccess-control-max-age: 600\r\n{DATE}\r\n"),
            format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{DATE}\r\n"),
            // An error with another field, or a body length, or a content type.
            "HTTP/1.1 405 Method Not Allowed\r\nallow: GET\r\ncontent-length: 0\r\n\r\n".into(),
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\n".into(),
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n".into(),
            // No content-length at all.
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n".into(),
            // Two lengths, a bare LF, a malformed status line.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n".into(),
            "HTTP/1.1 400 Bad Request\ncontent-length: 0\r\n\r\n".into(),
            "HTTP/1.1 40 Bad Request\r\ncontent-length: 0\r\n\r\n".into(),
            "HTTP/2.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n".into(),
            // The end of a chunked body.
            "HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
                .into(),
            String::new(),
            "\r\n\r\n".into(),
        ];
        for response in &not_errors {
            assert!(
                find_error_head(response.as_bytes()).is_none(),
                "{response:?}"
            );
        }
    }

    #[test]
    fn replacements_are_json_errors_with_the_same_status() {
        for (status, code) in [
            (StatusCode::BAD_REQUEST, "bad_request"),
            (StatusCode::URI_TOO_LONG, "uri_too_long"),
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
        ] {
            let head = ErrorHead {
                version: b"HTTP/1.0",
                status,
                date: Some(b"Sun, 06 Dec 2026 00:55:30 GMT"),
            };
            let (head, body) = split_response(&replacement(&head));
            assert!(
                head.starts_with(&format!("HTTP/1.0 {status}\r\n")),
                "{head}"
            );
            assert!(head.contains("\r\ncontent-type: application/json\r\n"));
            assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
            assert!(head.contains("\r\nconnection: close\r\n"));
            assert!(head.contains(&format!("\r\n{DATE}")), "{head}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"]["code"], code);
            assert!(body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 20));
        }
        // A status without a code of its own takes the generic code, and
        // that code's status (every code keeps one status).
        let head = ErrorHead {
            version: b"HTTP/1.1",
            status: StatusCode::REQUEST_TIMEOUT,
            date: None,
        };
        let (head, body) = split_response(&replacement(&head));
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(!head.contains("date:"));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
    }

    fn split_response(bytes: &[u8]) -> (String, String) {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (format!("{head}\r\n"), body.to_string())
    }

    /// A connection that takes at most `chunk` bytes per write, answers
    /// every other call `Pending` (waking at once) when `stalls`, and
    /// records what reached it.
    struct Wire {
        sent: Vec<u8>,
        chunk: usize,
        vectored: bool,
        stalls: bool,
        stalled: bool,
        shut: bool,
    }

    impl Wire {
        fn new(chunk: usize, vectored: bool, stalls: bool) -> Self {
            Self {
                sent: Vec::new(),
                chunk,
                vectored,
                stalls,
                stalled: false,
                shut: false,
            }
        }

        fn stall(&mut self, cx: &mut Context<'_>) -> bool {
            self.stalled = self.stalls && !self.stalled;
            if self.stalled {
                cx.waker().wake_by_ref();
            }
            self.stalled
        }
    }

    impl AsyncWrite for Wire {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            assert!(!this.shut, "write after shutdown");
            if this.stall(cx) {
                return Poll::Pending;
            }
            let n = buf.len().min(this.chunk);
            this.sent.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            assert!(this.vectored, "vectored write on a plain connection");
            if this.stall(cx) {
                return Poll::Pending;
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(this.chunk - n);
                this.sent.extend_from_slice(&buf[..take]);
                n += take;
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shut = true;
            Poll::Ready(Ok(()))
        }
    }

    /// Writes `parts` the way hyper does: the whole rest of its buffer on
    /// every call (as slices when the connection is vectored), then flushes
    /// (when `flush`) and shuts down.
    async fn send(stream: &mut JsonErrorStream<Wire>, parts: &[&[u8]], flush: bool) {
        let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        while !parts.is_empty() {
            let mut n = if stream.is_write_vectored() {
                let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                stream.write_vectored(&slices).await.unwrap()
            } else {
                let flat = parts.concat();
                stream.write(&flat).await.unwrap()
            };
            assert!(n > 0);
            while n > 0 {
                let take = n.min(parts[0].len());
                parts[0] = &parts[0][take..];
                n -= take;
                if parts[0].is_empty() {
                    parts.remove(0);
                }
            }
        }
        if flush {
            stream.flush().await.unwrap();
        }
        stream.shutdown().await.unwrap();
    }

    /// Every way of writing `parts`: chunk sizes, vectored or not, stalls,
    /// with or without a flush before shutdown; what reached the wire.
    async fn every_way(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut outputs = Vec::new();
        for chunk in [1, 2, 3, 7, 64, 100, 4096] {
            for vectored in [false, true] {
                for stalls in [false, true] {
                    for flush in [false, true] {
                        let mut stream = JsonErrorStream::new(Wire::new(chunk, vectored, stalls));
                        send(&mut stream, parts, flush).await;
                        assert!(stream.replacement.is_none());
                        assert!(stream.inner.shut);
                        outputs.push(stream.inner.sent);
                    }
                }
            }
        }
        outputs
    }

    #[tokio::test]
    async fn normal_responses_pass_unchanged() {
        let json = node_response("200 OK", "{\"state\":\"proved\"}");
        let head_only = node_response("404 Not Found", "");
        let preflight = format!("HTTP/1.1 204 No Content\r\nvary: Origin\r\n{DATE}\r\n");
        let metrics = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: 14\r\n{DATE}\r\nfabstir_up 1\r\n"
        );
        let splits: [&[&[u8]]; 4] = [
            &[json.as_bytes(), head_only.as_bytes()],
            &[head_only.as_bytes(), preflight.as_bytes()],
            &[preflight.as_bytes()],
            &[metrics.as_bytes(), json.as_bytes()],
        ];
        for parts in splits {
            let expected = parts.concat();
            for sent in every_way(parts).await {
                assert_eq!(
                    String::from_utf8_lossy(&sent),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
    }

    /// `sent` is `earlier` followed by the JSON error with `status` and `code`.
    fn assert_rewritten(sent: &[u8], earlier: &str, status: &str, code: &str) {
        let text = String::from_utf8_lossy(sent);
        let rest = text
            .strip_prefix(earlier)
            .unwrap_or_else(|| panic!("earlier responses changed: {text:?}"));
        let (head, body) = rest.split_once("\r\n\r\n").expect("a head");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{head}"
        );
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        let body: Value = serde_json::from_str(body).expect(body);
        assert_eq!(body["error"]["code"], code, "{body}");
    }

    #[tokio::test]
    async fn hyper_errors_become_json_however_they_are_written() {
        let earlier = format!(
            "{}{}",
            node_response("200 OK", "{\"state\":\"proved\"}"),
            node_response("404 Not Found", "")
        );
        for (status, code) in [
            ("400 Bad Request", "bad_request"),
            ("414 URI Too Long", "uri_too_long"),
            ("431 Request Header Fields Too Large", "headers_too_large"),
        ] {
            let head = hyper_head(status, "HTTP/1.1");
            let (a, b) = head.split_at(head.len() / 2);
            let (e1, e2) = earlier.split_at(earlier.len() / 3);
            let flat = format!("{earlier}{head}");
            let e2a = format!("{e2}{a}");
            let splits: [(&str, &[&[u8]]); 5] = [
                // Alone on the connection.
                ("", &[head.as_bytes()]),
                // After pipelined responses, in one buffer (hyper's flat
                // buffer) or as separate slices.
                (&earlier, &[flat.as_bytes()]),
                (&earlier, &[e1.as_bytes(), e2.as_bytes(), head.as_bytes()]),
                // Split across slices.
                (&earlier, &[earlier.as_bytes(), a.as_bytes(), b.as_bytes()]),
                (&earlier, &[e1.as_bytes(), e2a.as_bytes(), b.as_bytes()]),
            ];
            for (expected_earlier, parts) in splits {
                for sent in every_way(parts).await {
                    assert_rewritten(&sent, expected_earlier, status, code);
                }
            }
        }
    }
}
