//! Accepting connections for the HTTP and gRPC servers without letting clients hold resources
//! forever: a cap on open connections, and timeouts for clients that connect and then do not
//! finish (or never start) a request.
//!
//! | what a client does | what bounds it |
//! |---|---|
//! | opens many connections | [`ConnLimits::max_connections`] per listener: past it, new connections wait in the kernel's backlog until one closes |
//! | sends half a request head (HTTP/1) | hyper's header-read timeout, [`ConnLimits::header_timeout`] |
//! | stays connected with no request (keep-alive, HTTP/2, or bytes that never make a request) | [`ConnLimits::idle_timeout`]: HTTP closes a connection with no request in flight for that long; gRPC closes one that sent nothing for that long, and its HTTP/2 pings make every live client send something |
//! | sends a body slowly, or a large one | the API's body gate (`api::limits`): a deadline for the whole body and a shared memory budget |
//!
//! | connects and never finishes the TLS handshake | [`ConnLimits::header_timeout`], in the connection's own task (the accept loop never waits on a handshake) |
//!
//! A connection's slot is released when its task ends, whatever ended it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::control::tls::TlsRx;

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections at once.
    pub max_connections: usize,
    /// Time to send a whole HTTP/1 request head, and to finish a TLS handshake.
    pub header_timeout: Duration,
    /// Time a connection may stay open with nothing to do.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 16_384,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// How long a graceful stop waits for in-flight HTTP requests before it closes their connections.
const DRAIN: Duration = Duration::from_secs(10);
/// After a failed accept (out of descriptors, for example), wait this long before the next one,
/// instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Listen backlog: connections the kernel completes before lbd accepts them. tokio's default
/// (128) overflows under a burst of connects, and every overflow costs a client a 1 s SYN
/// retransmit; the kernel caps this at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// Binds a listening socket with lbd's backlog.
pub fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As tokio's own bind does: a restarted lbd can listen while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises the soft limit on open files to the hard limit (up to `want`), so that the connection
/// caps can be reached before descriptors run out. Returns the limit now in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    let target = want.min(lim.rlim_max);
    if target > lim.rlim_cur {
        let new = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            return target;
        }
    }
    lim.rlim_cur
}

/// An accepted connection: plain TCP, or TLS over it.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }
}

/// Which port's TLS acceptor a connection takes.
#[derive(Debug, Clone, Copy)]
enum Port {
    Http,
    Grpc,
}

/// The connection as the server reads it: `stream` itself, or `stream` after a TLS handshake
/// with the acceptor in force now (bounded by `timeout`). A failed handshake is the client's
/// problem: it is logged at debug level and the connection closed (`Err`: why).
async fn handshake(
    stream: TcpStream,
    tls: Option<&TlsRx>,
    port: Port,
    timeout: Duration,
) -> Result<Conn, String> {
    let Some(rx) = tls else {
        return Ok(Conn::Plain(stream));
    };
    let acceptor = {
        let cur = rx.borrow();
        match port {
            Port::Http => cur.http.clone(),
            Port::Grpc => cur.grpc.clone(),
        }
    };
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
        Ok(Err(e)) => {
            tracing::debug!(?peer, ?port, error = %e, "TLS handshake failed");
            Err(format!("TLS handshake failed: {e}"))
        }
        Err(_) => {
            tracing::debug!(?peer, ?port, "TLS handshake timed out");
            Err("TLS handshake timed out".into())
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// When a connection last started or finished a request, and how many it has in flight.
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

/// Held while a request (and its response body) is in flight.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = self.epoch.elapsed().saturating_sub(last);
            let busy = self.in_flight.load(Ordering::Relaxed) > 0;
            if !busy && quiet >= idle {
                return;
            }
            let wait = if busy { idle } else { idle - quiet };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` over HTTP/1.1 and HTTP/2 (cleartext, or TLS with `tls`) on `listener` until
/// `shutdown`, then stops accepting and lets in-flight requests finish (for up to 10 s).
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: Option<TlsRx>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let act = activity.clone();
        let app = app.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = act.begin();
            let app = app.clone();
            async move {
                let resp = match app.oneshot(req.map(Body::new)).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                // The request counts as in flight until its response body is done or dropped.
                Ok::<_, Infallible>(resp.map(move |b| {
                    Body::new(b.map_frame(move |f| {
                        let _ = &guard;
                        f
                    }))
                }))
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let idle = limits.idle_timeout;
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slot: OwnedSemaphorePermit = permit;
            // The handshake runs here, not in the accept loop: a client that never finishes
            // one holds only its own slot, for at most the header timeout.
            let Ok(stream) = handshake(stream, tls.as_ref(), Port::Http, handshake_timeout).await
            else {
                return;
            };
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .into_owned();
            let conn = watcher.watch(conn);
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                }
                _ = activity.idle_for(idle) => {
                    tracing::debug!("HTTP connection closed: idle");
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still running after the drain time; closing them");
    }
    Ok(())
}

/// A gRPC connection: holds its slot, and fails a read once the client has sent nothing for the
/// idle timeout. The server pings every HTTP/2 connection (tonic's keep-alive), so a live
/// client, even one that waits on a long stream, always has something to send: the acks.
pub struct GovernedStream {
    inner: Conn,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncRead for GovernedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = tokio::time::Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent nothing for the idle timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GovernedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for GovernedStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.tcp().connect_info()
    }
}

/// The accepted connections of `listener` (after their TLS handshake, with `tls`), at most
/// `limits.max_connections` open at once, for tonic's `serve_with_incoming`. Connections are
/// accepted by a task of their own and each handshakes in its own task, so a slow handshake
/// delays no other client; the task ends (and the listener closes) when the stream is dropped.
pub fn governed_incoming(
    listener: TcpListener,
    limits: ConnLimits,
    tls: Option<TlsRx>,
) -> impl futures::Stream<Item = io::Result<GovernedStream>> {
    governed_incoming_reporting(listener, limits, tls, None)
}

/// A failed TLS handshake: the client's address and why.
pub type Refusal = (Option<std::net::SocketAddr>, String);

/// Like [`governed_incoming`], telling `refused` about every failed TLS handshake (the peer
/// link's status says why a peer was refused).
pub fn governed_incoming_reporting(
    listener: TcpListener,
    limits: ConnLimits,
    tls: Option<TlsRx>,
    refused: Option<mpsc::Sender<Refusal>>,
) -> impl futures::Stream<Item = io::Result<GovernedStream>> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (tx, rx) = mpsc::channel::<io::Result<GovernedStream>>(64);
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            };
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = tx.closed() => return,
            };
            match accepted {
                Ok((inner, _)) => {
                    let _ = inner.set_nodelay(true);
                    let tx = tx.clone();
                    let tls = tls.clone();
                    let refused = refused.clone();
                    tokio::spawn(async move {
                        let peer = inner.peer_addr().ok();
                        let inner =
                            match handshake(inner, tls.as_ref(), Port::Grpc, limits.header_timeout)
                                .await
                            {
                                Ok(c) => c,
                                Err(why) => {
                                    if let Some(r) = refused {
                                        // A full queue drops the report, never the accept loop.
                                        let _ = r.try_send((peer, why));
                                    }
                                    return;
                                }
                            };
                        let s = GovernedStream {
                            inner,
                            _slot: slot,
                            idle: limits.idle_timeout,
                            deadline: Box::pin(tokio::time::sleep(limits.idle_timeout)),
                        };
                        let _ = tx.send(Ok(s)).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "gRPC accept failed");
                    drop(slot);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
