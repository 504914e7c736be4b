//! A TCP proxy that a test puts between the service and one of its servers
//! (PostgreSQL, MariaDB, Redis, …) to inject network faults without touching the
//! shared server: delay every chunk, cut (reset every connection and refuse new
//! ones), or partition (the service's side of every connection is dropped while the
//! server's side stays open, as when a network splits; new connections hang), and
//! restore.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward.
    Pass,
    /// Forward, each chunk after a delay.
    Delay(Duration),
    /// Reset every connection; refuse new ones.
    Cut,
    /// Drop the client side of every connection, keep the server side open; new
    /// connections are accepted and never answered.
    Partition,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    open: Arc<AtomicUsize>,
    /// Server-side halves kept open by a partition (as the real server would).
    orphans: Arc<Mutex<Vec<TcpStream>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.mode.send_replace(Mode::Cut);
    }
}

/// Resets `stream` (an RST, as a crashed peer or a dropped route would).
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Whether the server has closed (or reset) a half the proxy keeps open.
fn closed_by_server(stream: &TcpStream) -> bool {
    let mut buf = [0_u8; 1024];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = tokio::net::lookup_host(upstream)
            .await
            .expect("upstream address")
            .next()
            .expect("an address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("port");
        let addr = listener.local_addr().expect("address");
        let (mode, _) = watch::channel(Mode::Pass);
        let open = Arc::new(AtomicUsize::new(0));
        let orphans = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(
            listener,
            upstream,
            mode.clone(),
            open.clone(),
            orphans.clone(),
        ));
        Self {
            addr,
            mode,
            open,
            orphans,
            task,
        }
    }

    /// `127.0.0.1:port` of the proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Forwards again, without delay.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Pass);
    }

    /// Delays every chunk by `delay`, both ways.
    pub fn delay(&self, delay: Duration) {
        self.mode.send_replace(Mode::Delay(delay));
    }

    /// Resets every connection and refuses new ones until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Drops the client side of every connection while the server side stays open
    /// (the server keeps those sessions, and their locks, until its own timeouts end
    /// them); new connections hang until [`FaultProxy::restore`].
    pub fn partition(&self) {
        self.mode.send_replace(Mode::Partition);
    }

    /// Connections open through the proxy now (client sides).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Server-side halves a partition left open that the server has not closed yet.
    pub fn orphans(&self) -> usize {
        let mut orphans = self.orphans.lock().unwrap_or_else(PoisonError::into_inner);
        orphans.retain(|s| !closed_by_server(s));
        orphans.len()
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    open: Arc<AtomicUsize>,
    orphans: Arc<Mutex<Vec<TcpStream>>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let current = *mode.borrow();
        match current {
            Mode::Cut => {
                reset(client);
                continue;
            }
            Mode::Partition => {
                // Accepted, never answered: the client's connect or handshake hangs.
                let mut changes = mode.subscribe();
                tokio::spawn(async move {
                    let _ = changes.wait_for(|m| *m != Mode::Partition).await;
                    reset(client);
                });
                continue;
            }
            Mode::Pass | Mode::Delay(_) => {}
        }
        let Ok(server) = TcpStream::connect(upstream).await else {
            reset(client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(relay(
            client,
            server,
            mode.subscribe(),
            open.clone(),
            orphans.clone(),
        ));
    }
}

/// What ended a connection.
enum End {
    Closed,
    Cut,
    Partition,
}

/// Copies `from` to `to`; under [`Mode::Delay`] each chunk arrives that much later
/// (latency, not a throughput cap: chunks are in flight together). Ends when either
/// side closes.
async fn copy(
    from: &mut tokio::net::tcp::ReadHalf<'_>,
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    mode: &watch::Receiver<Mode>,
) {
    let (chunks, mut arriving) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0_u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let delay = match *mode.borrow() {
                Mode::Delay(d) => d,
                _ => Duration::ZERO,
            };
            if chunks
                .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                return;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = arriving.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(read, write);
}

async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    mut mode: watch::Receiver<Mode>,
    open: Arc<AtomicUsize>,
    orphans: Arc<Mutex<Vec<TcpStream>>>,
) {
    let end = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let delays = mode.clone();
        let fault = async {
            loop {
                if mode.changed().await.is_err() {
                    return End::Cut;
                }
                match *mode.borrow() {
                    Mode::Cut => return End::Cut,
                    Mode::Partition => return End::Partition,
                    _ => {}
                }
            }
        };
        tokio::select! {
            () = copy(&mut client_read, &mut server_write, &delays) => End::Closed,
            () = copy(&mut server_read, &mut client_write, &delays) => End::Closed,
            end = fault => end,
        }
    };
    open.fetch_sub(1, Ordering::SeqCst);
    match end {
        End::Closed => {}
        End::Cut => {
            reset(client);
            reset(server);
        }
        End::Partition => {
            reset(client);
            orphans
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(server);
        }
    }
}

/// `url` (`scheme://user@host:port/…`) with its host and port replaced by the
/// proxy's.
pub fn through(url: &str, proxy: &FaultProxy) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let user = authority.rsplit_once('@').map(|(user, _)| user);
    let host = format!("127.0.0.1:{}", proxy.port());
    let authority = user.map_or(host.clone(), |user| format!("{user}@{host}"));
    if path.is_empty() && !rest.contains('/') {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{path}")
    }
}

/// The `host:port` a URL points at.
pub fn target(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}
