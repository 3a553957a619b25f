//! One client connection: startup negotiation, login upstream, relay, cancel forwarding.

use crate::protocol::{self, sqlstate, Startup};
use crate::relay::{self, End};
use crate::stream::ClientStream;
use crate::upstream;
use crate::{Shared, TargetState};
use bytes::BytesMut;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counts a connection as open for its lifetime.
pub(crate) struct OpenGuard<'a>(&'a Shared);

impl<'a> OpenGuard<'a> {
    pub(crate) fn new(s: &'a Shared) -> Self {
        s.metrics.connections_open.fetch_add(1, Relaxed);
        s.metrics.connections_total.fetch_add(1, Relaxed);
        OpenGuard(s)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.metrics.connections_open.fetch_sub(1, AcqRel);
    }
}

/// Holds one of --max-connections' slots.
struct Slot<'a>(&'a Shared);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, AcqRel);
    }
}

enum Negotiated {
    Login { version: u32, params: Vec<(String, String)> },
    Done,
}

async fn write_error(stream: &mut ClientStream, code: &str, message: &str) {
    let b = protocol::error_response(code, message, None);
    let _ = stream.write_all(&b).await;
    let _ = stream.flush().await;
}

/// Read startup packets until a StartupMessage (or a cancel); answer SSL/GSS requests.
async fn negotiate(shared: &Shared, mut stream: ClientStream, peer_loopback: bool) -> Option<(ClientStream, Negotiated)> {
    let mut ssl_done = false;
    let mut gss_done = false;
    loop {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.ok()?;
        let body_len = match protocol::check_startup_len(u32::from_be_bytes(len)) {
            Ok(n) => n,
            Err(e) => {
                shared.metrics.startup_errors.fetch_add(1, Relaxed);
                write_error(&mut stream, sqlstate::PROTOCOL_VIOLATION, &e.to_string()).await;
                return None;
            }
        };
        let mut body = vec![0u8; body_len];
        stream.read_exact(&mut body).await.ok()?;
        let packet = match protocol::parse_startup(&body) {
            Ok(p) => p,
            Err(e) => {
                shared.metrics.startup_errors.fetch_add(1, Relaxed);
                let code = match e {
                    protocol::StartupError::UnsupportedVersion(_) => sqlstate::FEATURE_NOT_SUPPORTED,
                    _ => sqlstate::PROTOCOL_VIOLATION,
                };
                write_error(&mut stream, code, &e.to_string()).await;
                return None;
            }
        };
        match packet {
            Startup::Ssl if !ssl_done => {
                ssl_done = true;
                match (&shared.client_tls, stream) {
                    (Some(acceptor), ClientStream::Tcp(tcp)) => {
                        let mut tcp = tcp;
                        tcp.write_all(b"S").await.ok()?;
                        match acceptor.accept(tcp).await {
                            Ok(tls) => stream = ClientStream::Tls(Box::new(tls)),
                            Err(e) => {
                                shared.metrics.startup_errors.fetch_add(1, Relaxed);
                                crate::log::debug("client TLS handshake failed", &[("error", &e)]);
                                return None;
                            }
                        }
                    }
                    (_, mut s) => {
                        s.write_all(b"N").await.ok()?;
                        stream = s;
                    }
                }
            }
            Startup::GssEnc if !gss_done => {
                gss_done = true;
                stream.write_all(b"N").await.ok()?;
            }
            Startup::Ssl | Startup::GssEnc => {
                shared.metrics.startup_errors.fetch_add(1, Relaxed);
                write_error(&mut stream, sqlstate::PROTOCOL_VIOLATION, "encryption requested twice").await;
                return None;
            }
            Startup::Cancel { pid, key } => {
                cancel(shared, pid, &key).await;
                return Some((stream, Negotiated::Done));
            }
            Startup::Startup { version, params } => {
                if shared.client_tls.is_some() && !peer_loopback && !matches!(stream, ClientStream::Tls(_)) {
                    write_error(
                        &mut stream,
                        sqlstate::INVALID_AUTHORIZATION,
                        "lakebase proxy: clients off loopback must use TLS (sslmode=require)",
                    )
                    .await;
                    return None;
                }
                return Some((stream, Negotiated::Login { version, params }));
            }
        }
    }
}

async fn cancel(shared: &Shared, pid: u32, key: &[u8]) {
    let Some((up, upid, ukey)) = shared.cancels.lookup(pid, key) else {
        crate::log::debug("cancel request with an unknown key ignored", &[]);
        return;
    };
    shared.metrics.cancels_forwarded.fetch_add(1, Relaxed);
    if let Err(e) = upstream::send_cancel(&up, upid, &ukey).await {
        crate::log::warn("forwarding a cancel request failed", &[("upstream", &up.display()), ("error", &e)]);
    }
}

/// Serve one client connection to the end.
pub(crate) async fn serve(shared: Arc<Shared>, target: Arc<TargetState>, stream: ClientStream, peer_loopback: bool) {
    let _open = OpenGuard::new(&shared);
    let Ok(Some((mut stream, neg))) = tokio::time::timeout(shared.startup_timeout, negotiate(&shared, stream, peer_loopback)).await else {
        shared.metrics.startup_errors.fetch_add(1, Relaxed);
        return;
    };
    let Negotiated::Login { version, mut params } = neg else {
        return;
    };
    if shared.draining.load(Relaxed) {
        write_error(&mut stream, sqlstate::ADMIN_SHUTDOWN, "lakebase proxy is shutting down").await;
        return;
    }
    let prev = shared.active.fetch_add(1, AcqRel);
    let _slot = Slot(&shared);
    if shared.max_connections > 0 && prev >= shared.max_connections {
        shared.metrics.connections_refused_max.fetch_add(1, Relaxed);
        let m = format!("lakebase proxy: too many connections (--max-connections {})", shared.max_connections);
        write_error(&mut stream, sqlstate::TOO_MANY_CONNECTIONS, &m).await;
        return;
    }
    // An empty or missing user becomes the workspace identity. Client passwords are never asked for.
    match params.iter_mut().find(|(k, _)| k == "user") {
        Some((_, v)) if !v.is_empty() => {}
        found => {
            let user = match target.default_user().await {
                Ok(u) => u,
                Err(e) => {
                    shared.metrics.login_failures.fetch_add(1, Relaxed);
                    let m = format!("lakebase proxy: no user given and the workspace identity is unknown: {e}");
                    crate::log::warn("login failed", &[("target", &target.label), ("error", &m)]);
                    write_error(&mut stream, sqlstate::UNABLE_TO_CONNECT, &m).await;
                    return;
                }
            };
            match found {
                Some((_, v)) => *v = user,
                None => params.insert(0, ("user".into(), user)),
            }
        }
    }
    let up = match target.upstream().await {
        Ok(u) => u,
        Err(m) => {
            shared.metrics.login_failures.fetch_add(1, Relaxed);
            crate::log::warn("login failed", &[("target", &target.label), ("error", &m)]);
            write_error(&mut stream, sqlstate::UNABLE_TO_CONNECT, &m).await;
            return;
        }
    };
    let session = match upstream::login(&*target.source, &up, version, &params, shared.connect_timeout, &shared.metrics).await {
        Ok(s) => s,
        Err(e) => {
            shared.metrics.login_failures.fetch_add(1, Relaxed);
            let user = params.iter().find(|(k, _)| k == "user").map(|(_, v)| v.as_str()).unwrap_or("");
            crate::log::warn("login failed", &[("target", &target.label), ("user", &user), ("error", &e)]);
            let _ = stream.write_all(&e.to_message()).await;
            let _ = stream.flush().await;
            return;
        }
    };
    let mut s = session;
    let guard = s.key.take().map(|(pid, key)| shared.cancels.register(up.clone(), pid, key));
    let mut hello = BytesMut::with_capacity(s.negotiate.len() + s.greeting.len() + 32);
    hello.extend_from_slice(&s.negotiate);
    protocol::auth_ok(&mut hello);
    hello.extend_from_slice(&s.greeting[..s.key_at]);
    if let Some(g) = &guard {
        protocol::backend_key_data(g.pid, &g.secret, &mut hello);
    }
    hello.extend_from_slice(&s.greeting[s.key_at..]);
    drop(std::mem::take(&mut s.greeting));
    if stream.write_all(&hello).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    drop(hello);
    crate::log::debug("relaying", &[("target", &target.label)]);
    let end = relay::relay(&mut stream, &mut s.stream, &shared.metrics.bytes_from_clients, &shared.metrics.bytes_to_clients).await;
    crate::log::debug("connection ended", &[("target", &target.label), ("end", &format!("{end:?}"))]);
    match end {
        End::ClientClosed { terminated: true } => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), s.stream.shutdown()).await;
        }
        End::ClientClosed { terminated: false } | End::ClientError(_) => {
            // The client vanished: stop whatever it left running on the server.
            drop(s.stream);
            if let Some(g) = &guard {
                if let Some((up, pid, key)) = shared.cancels.lookup(g.pid, &g.secret) {
                    shared.metrics.cancels_forwarded.fetch_add(1, Relaxed);
                    if let Err(e) = upstream::send_cancel(&up, pid, &key).await {
                        crate::log::debug("cancelling a vanished client's query failed", &[("error", &e)]);
                    }
                }
            }
        }
        End::ServerClosed | End::ServerError(_) => {}
    }
}
