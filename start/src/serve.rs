//! The HTTP server: hyper's HTTP/1.1 connections under the service's own limits, so a
//! client that connects and then trickles, stalls or idles cannot keep a socket:
//!
//! - **header read timeout**: from the connection's first byte (or from the accept,
//!   for a socket that sends nothing) to a complete request head;
//! - **idle timeout**: between the end of one answer and the first byte of the next
//!   request on a kept-alive connection;
//! - **connection cap**: past `max_connections`, the connection that has waited
//!   longest without a request being answered on it (idle, or still sending its head)
//!   is closed to make room; only when every connection is answering a request does a
//!   newcomer wait in the backlog. So slow sockets can never lock `/healthz` out.
//!
//! A request's body is bounded by the request's time budget, in the body extractor.
//! Graceful shutdown stops accepting, closes connections that are not answering and
//! lets the others finish their request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// The limits of the connections (`[server]` settings).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From a connection's first byte of a request (or its accept) to the end of the
    /// request head.
    pub header_read_timeout: Duration,
    /// Between requests on a kept-alive connection.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

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
struct Conn {
    /// Requests being answered on it right now.
    busy: AtomicU32,
    /// `READING` a request head or `IDLE` between requests (meaningful when not busy).
    phase: AtomicU8,
    /// When the phase began, in milliseconds since the server's epoch.
    since: AtomicU64,
    /// Asks the connection to close if it is not answering a request.
    reclaim: Notify,
}

impl Conn {
    fn new(now: u64) -> Self {
        Self {
            busy: AtomicU32::new(0),
            phase: AtomicU8::new(READING),
            since: AtomicU64::new(now),
            reclaim: Notify::new(),
        }
    }

    fn busy(&self) -> bool {
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
struct Clock(Instant);

impl Clock {
    fn now(self) -> u64 {
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

/// The open connections, for reclaiming one when the cap is reached.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn add(&self, conn: Arc<Conn>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, conn);
        id
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the connection that has waited longest without being answered to close.
    fn reclaim_one(&self) {
        let open = self.lock();
        let oldest = open
            .values()
            .filter(|conn| !conn.busy())
            .min_by_key(|conn| conn.since.load(Ordering::Acquire));
        if let Some(conn) = oldest {
            conn.reclaim.notify_one();
        }
    }
}

/// Serves `router` on `listener` under `limits` until `stop` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let clock = Clock(Instant::now());
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let registry = Arc::new(Registry::default());
    let connections = TaskTracker::new();
    metrics::describe_counter!(
        "flash_sale_http_connections_closed_total",
        "Connections the server closed, by reason: header_timeout, idle_timeout, reclaimed \
         (to make room past server.max_connections)"
    );
    metrics::describe_gauge!("flash_sale_http_connections_open", "Open HTTP connections");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(&e).await;
                continue;
            }
        };
        let Some(slot) = make_room(&slots, &registry, &mut stop).await else {
            break;
        };
        let conn = Arc::new(Conn::new(clock.now()));
        let id = registry.add(conn.clone());
        let connection = Connection {
            conn,
            clock,
            limits,
            remote,
            router: router.clone(),
            stop: stop.clone(),
        };
        let registry = registry.clone();
        connections.spawn(async move {
            connection.run(stream).await;
            registry.remove(id);
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// A slot for the connection just accepted: free ones first; at the cap, the
/// connection that has waited longest without a request is asked to close, and the
/// newcomer waits for its slot (or any other). `None` when the server stops meanwhile.
async fn make_room(
    slots: &Arc<Semaphore>,
    registry: &Registry,
    stop: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return Some(slot);
        }
        registry.reclaim_one();
        tokio::select! {
            slot = slots.clone().acquire_owned() => return slot.ok(),
            // The one asked may have got a request meanwhile: ask again.
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.wait_for(|stop| *stop) => return None,
        }
    }
}

/// Connection errors (the peer reset before the accept) are the peer's business; any
/// other (out of file descriptors) is logged and waited out, as hyper and axum do.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
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
struct Connection {
    conn: Arc<Conn>,
    clock: Clock,
    limits: ConnectionLimits,
    remote: SocketAddr,
    router: Router,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
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
                drop(answering);
                response
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
