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

mod connection;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use self::connection::{Clock, Conn, Connection};

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
