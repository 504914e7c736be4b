//! One connection: its phase (reading a head, idle, answering), the socket that notes
//! a request's first byte, and the task that serves it and closes it on time.

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::ConnectionLimits;

/// Why the server closed a connection (the `reason` label of
/// `flash_sale_http_connections_closed_total`).
#[derive(Debug, Clone, Copy)]
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Reclaimed,
}

impl Closed {
    fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Reclaimed => "reclaimed",
        }
    }
}

const READING: u8 = 0;
const IDLE: u8 = 1;

/// What one connection is doing, shared by its reader, its service and the accept loop.
pub(super) struct Conn {
    /// Requests being answered on it right now.
    pub(super) busy: AtomicU32,
    /// `READING` a request head or `IDLE` between requests (meaningful when not busy).
    phase: AtomicU8,
    /// When the phase began, in milliseconds since the server's epoch.
    pub(super) since: AtomicU64,
    /// Asks the connection to close if it is not answering a request.
    pub(super) reclaim: Notify,
}

impl Conn {
    pub(super) fn new(now: u64) -> Self {
        Self {
            busy: AtomicU32::new(0),
            phase: AtomicU8::new(READING),
            since: AtomicU64::new(now),
            reclaim: Notify::new(),
        }
    }

    pub(super) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// When it must be closed unless it gets busy first, and why.
    fn deadline(&self, clock: &Clock, limits: &ConnectionLimits) -> Option<(Instant, Closed)> {
        if self.busy() {
            return None;
        }
        let since = clock.at(self.since.load(Ordering::Acquire));
        Some(match self.phase.load(Ordering::Acquire) {
            READING => (since + limits.header_read_timeout, Closed::HeaderTimeout),
            _ => (since + limits.idle_timeout, Closed::IdleTimeout),
        })
    }
}

/// Milliseconds since the server started, cheap to store in an atomic.
#[derive(Clone, Copy)]
pub(super) struct Clock(pub(super) Instant);

impl Clock {
    pub(super) fn now(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(self, millis: u64) -> Instant {
        self.0 + Duration::from_millis(millis)
    }
}

/// The socket, noting the first byte of each request that arrives on an idle
/// connection (the start of its header read).
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
    clock: Clock,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let conn = &self.conn;
            if !conn.busy() && conn.phase.load(Ordering::Acquire) == IDLE {
                conn.since.store(self.clock.now(), Ordering::Release);
                conn.phase.store(READING, Ordering::Release);
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Marks a connection busy while one of its requests is being answered; when the last
/// one ends, the connection is idle from then on.
struct Answering {
    conn: Arc<Conn>,
    clock: Clock,
}

impl Answering {
    fn begin(conn: Arc<Conn>, clock: Clock) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self { conn, clock }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        // Phase first, so that a reader who sees the connection not busy sees it idle.
        self.conn.since.store(self.clock.now(), Ordering::Release);
        self.conn.phase.store(IDLE, Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body; an event stream's holds its connection busy until it ends.
struct Answered {
    body: Body,
    _answering: Option<Answering>,
}

impl hyper::body::Body for Answered {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// HTTP/1.1 with the service's timeouts doing the timing, and a head buffer above
/// the adapter's own limits (8 KiB target, 16 KiB or 64 header lines, answered 414 /
/// 431 in the envelope) but bounded, so a slow socket holds at most 64 KiB.
fn http1() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .header_read_timeout(None)
        .max_buf_size(64 * 1024)
        .max_headers(128);
    builder
}

/// One accepted connection and what it needs to serve itself.
pub(super) struct Connection {
    pub(super) conn: Arc<Conn>,
    pub(super) clock: Clock,
    pub(super) limits: ConnectionLimits,
    pub(super) remote: SocketAddr,
    pub(super) router: Router,
    pub(super) stop: watch::Receiver<bool>,
}

impl Connection {
    pub(super) async fn run(self, stream: TcpStream) {
        let Self {
            conn,
            clock,
            limits,
            remote,
            router,
            mut stop,
        } = self;
        metrics::gauge!("flash_sale_http_connections_open").increment(1);
        let io = TokioIo::new(Watched {
            stream,
            conn: conn.clone(),
            clock,
        });
        let answering = conn.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let answering = Answering::begin(answering.clone(), clock);
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                // An event stream is an answer being sent for as long as it lasts, not an
                // idle connection: busy until its body ends. Any other answer's body is
                // in the socket's buffer at once, or waits on a client that does not
                // read — idle, so the idle timeout closes it as before.
                response.map(|response| {
                    let streaming = response
                        .headers()
                        .get(axum::http::header::CONTENT_TYPE)
                        .is_some_and(|kind| kind.as_bytes().starts_with(b"text/event-stream"));
                    response.map(|body| Answered {
                        body,
                        _answering: streaming.then_some(answering),
                    })
                })
            }
        });
        let mut served = pin!(http1().serve_connection(io, service));
        let mut draining = false;
        let closed = loop {
            let deadline = conn.deadline(&clock, &limits);
            // Busy: its request has its own budget; look again later.
            let wake =
                deadline.map_or_else(|| Instant::now() + limits.header_read_timeout, |(at, _)| at);
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                    break None;
                }
                () = tokio::time::sleep_until(wake) => {
                    if let Some((at, why)) = conn.deadline(&clock, &limits)
                        && at <= Instant::now()
                    {
                        break Some(why);
                    }
                }
                () = conn.reclaim.notified() => {
                    if !conn.busy() {
                        break Some(Closed::Reclaimed);
                    }
                }
                _ = stop.wait_for(|stop| *stop), if !draining => {
                    if !conn.busy() {
                        break None;
                    }
                    served.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        };
        if let Some(why) = closed {
            metrics::counter!("flash_sale_http_connections_closed_total", "reason" => why.label())
                .increment(1);
        }
        metrics::gauge!("flash_sale_http_connections_open").decrement(1);
    }
}
