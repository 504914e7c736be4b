//! Connections: a client that connects and then stalls, trickles or idles is
//! disconnected within the configured timeouts, and slow sockets past
//! `server.max_connections` cannot lock anyone out, while `/healthz` stays fast.
//! The HTTP layer does not depend on the stack: these run on SQLite.

use std::time::Duration;

use flash_sale::config::HumanDuration;
use flash_sale_app::Role;
use flash_sale_client::EventListQry;
use flash_sale_tests::{Backend, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Reads until the peer closes (or resets) the connection, at most until `by`:
/// what was read, or `None` if it was still open then.
async fn read_until_closed(socket: &mut TcpStream, by: Instant) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(by, socket.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(read),
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the peer has closed the connection, looking for `wait`.
async fn closed_within(socket: &mut TcpStream, wait: Duration) -> bool {
    read_until_closed(socket, Instant::now() + wait)
        .await
        .is_some()
}

/// One whole answer on a kept-alive connection: its head and `Content-Length` body.
async fn read_answer(socket: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&read).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if read.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        assert!(n > 0, "closed before answering; read {text:?}");
        read.extend_from_slice(&buf[..n]);
    }
}

async fn connect(t: &TestApp) -> TcpStream {
    TcpStream::connect(t.app.as_ref().expect("running").local_addr())
        .await
        .expect("connect")
}

/// `/healthz` answered over a new connection, how long it took, and the connection
/// (kept alive).
async fn healthz_over_a_new_connection(t: &TestApp) -> (Duration, TcpStream) {
    let started = Instant::now();
    let mut socket = connect(t).await;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let answer = read_answer(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    (started.elapsed(), socket)
}

/// 200 sockets that never finish a request — silent, a partial request line, headers
/// trickled a byte at a time, a body shorter than its `Content-Length` — are all
/// closed within the timeouts (they stayed open past 60 s before), while `/healthz`
/// keeps answering at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected_within_the_timeouts_while_healthz_stays_fast() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.header_read_timeout = HumanDuration(Duration::from_secs(1));
        s.server.request_timeout = HumanDuration(Duration::from_secs(1));
    })
    .await;
    let admin = t.token("admin-1", Role::Admin);
    let short_body = format!(
        "POST /api/v1/admin/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":"
    );
    let opened = Instant::now();
    let mut silent = Vec::new();
    let mut partial = Vec::new();
    let mut short = Vec::new();
    let mut trickling = Vec::new();
    for _ in 0..50 {
        silent.push(connect(&t).await);
        let mut socket = connect(&t).await;
        socket.write_all(b"GET /hea").await.expect("write");
        partial.push(socket);
        let mut socket = connect(&t).await;
        socket
            .write_all(short_body.as_bytes())
            .await
            .expect("write");
        short.push(socket);
        let mut socket = connect(&t).await;
        trickling.push(tokio::spawn(async move {
            let head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ".iter();
            for byte in head.chain(std::iter::repeat(&b'a')) {
                if socket.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            socket
        }));
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        slowest = slowest.max(healthz_over_a_new_connection(&t).await.0);
    }
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz took {slowest:?} among 200 slow sockets"
    );

    // 1 s to send a head or a body; a few seconds of slack for a busy machine.
    let by = opened + Duration::from_secs(6);
    for (kind, sockets) in [("silent", &mut silent), ("partial", &mut partial)] {
        for socket in sockets.iter_mut() {
            let read = read_until_closed(socket, by).await;
            assert_eq!(read, Some(Vec::new()), "a {kind} socket was not closed");
        }
    }
    for socket in &mut short {
        let read = read_until_closed(socket, by)
            .await
            .expect("a socket whose body never came was not closed");
        let answer = String::from_utf8_lossy(&read);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("\"BAD_REQUEST\""), "{answer}");
    }
    for writer in trickling {
        let mut socket = tokio::time::timeout_at(by, writer)
            .await
            .expect("a trickling socket was not closed in time")
            .expect("writer");
        assert!(closed_within(&mut socket, Duration::from_secs(1)).await);
    }
    let events = t
        .admin
        .admin_events(&EventListQry::default())
        .await
        .expect("events");
    assert_eq!(events.total, 0, "a body that never came created nothing");
    t.stop().await;
}

/// A kept-alive connection may idle past the header timeout (the idle timeout is
/// longer), and is closed once it has idled past the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.header_read_timeout = HumanDuration(Duration::from_secs(1));
        s.server.idle_timeout = HumanDuration(Duration::from_secs(3));
    })
    .await;
    let mut socket = connect(&t).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    socket.write_all(request).await.expect("write");
    assert!(read_answer(&mut socket).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    socket.write_all(request).await.expect("write");
    let answer = read_answer(&mut socket).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "idle past the header timeout: {answer}"
    );
    let answered = Instant::now();
    assert!(
        closed_within(&mut socket, Duration::from_secs(8)).await,
        "still open 8 s after its last answer"
    );
    assert!(
        answered.elapsed() >= Duration::from_secs(2),
        "closed after {:?}, before the idle timeout",
        answered.elapsed()
    );
    t.stop().await;
}

/// At `server.max_connections`, a newcomer makes the socket that has waited longest
/// without a request close, so silent sockets cannot lock `/healthz` out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_the_longest_waiting_socket_makes_room() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.header_read_timeout = HumanDuration(Duration::from_mins(1));
        s.server.max_connections = 20;
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(connect(&t).await);
        // Apart in time, so which is the oldest is clear.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each answered connection stays open (idle, but since more recently).
    let mut answered = Vec::new();
    for _ in 0..3 {
        let (took, socket) = healthz_over_a_new_connection(&t).await;
        assert!(took < Duration::from_secs(2), "/healthz took {took:?}");
        answered.push(socket);
    }
    let mut closed = Vec::new();
    for (i, socket) in silent.iter_mut().enumerate() {
        if closed_within(socket, Duration::from_millis(200)).await {
            closed.push(i);
        }
    }
    // Each newcomer took the oldest silent socket's place.
    assert_eq!(closed, [0, 1, 2], "closed to make room");
    t.stop().await;
}
