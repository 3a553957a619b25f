//! Bytes both ways between a client and its upstream connection, until either side ends.
//!
//! Unlike `tokio::io::copy_bidirectional`, a client that closes ends the relay at once (Postgres
//! has no half-close: the server would otherwise finish a long query for nobody), and the relay
//! notes whether the client said goodbye (Terminate) or vanished, so a vanished client's query can
//! be cancelled. Buffers start small and grow while a direction fills them, so an idle connection
//! costs little.

use crate::protocol::Framing;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const START_BUF: usize = 2 * 1024;
const MAX_BUF: usize = 32 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The client closed (`terminated`: after sending Terminate).
    ClientClosed {
        terminated: bool,
    },
    ClientError(io::ErrorKind),
    /// The server closed its side (after a FATAL, or after the client's Terminate).
    ServerClosed,
    ServerError(io::ErrorKind),
}

struct Dir {
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
    need_flush: bool,
}

impl Dir {
    fn new() -> Self {
        Dir { buf: Vec::new(), pos: 0, cap: 0, need_flush: false }
    }
}

enum Step {
    Eof,
    ReadErr(io::ErrorKind),
    WriteErr(io::ErrorKind),
}

fn poll_dir<R, W>(cx: &mut Context<'_>, d: &mut Dir, r: &mut R, w: &mut W, count: &AtomicU64, mut seen: impl FnMut(&[u8])) -> Poll<Step>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        if d.pos == d.cap {
            if d.buf.is_empty() {
                d.buf.resize(START_BUF, 0);
            }
            let mut rb = ReadBuf::new(&mut d.buf);
            match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                Poll::Pending => {
                    if d.need_flush {
                        if let Poll::Ready(r) = Pin::new(&mut *w).poll_flush(cx) {
                            if let Err(e) = r {
                                return Poll::Ready(Step::WriteErr(e.kind()));
                            }
                            d.need_flush = false;
                        }
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Step::ReadErr(e.kind())),
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Step::Eof);
                    }
                    count.fetch_add(n as u64, Relaxed);
                    seen(&d.buf[..n]);
                    d.pos = 0;
                    d.cap = n;
                }
            }
        }
        while d.pos < d.cap {
            match ready!(Pin::new(&mut *w).poll_write(cx, &d.buf[d.pos..d.cap])) {
                Ok(0) => return Poll::Ready(Step::WriteErr(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    d.pos += n;
                    d.need_flush = true;
                }
                Err(e) => return Poll::Ready(Step::WriteErr(e.kind())),
            }
        }
        // A full read: the stream is busy, let the buffer grow.
        if d.cap == d.buf.len() && d.buf.len() < MAX_BUF {
            let n = d.buf.len() * 2;
            d.buf.resize(n, 0);
        }
    }
}

/// Relay until one side ends; `up_bytes`/`down_bytes` count client→server and server→client.
pub async fn relay<C, S>(client: &mut C, server: &mut S, up_bytes: &AtomicU64, down_bytes: &AtomicU64) -> End
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut c2s = Dir::new();
    let mut s2c = Dir::new();
    let mut framing = Framing::default();
    let end = poll_fn(|cx| {
        if let Poll::Ready(step) = poll_dir(cx, &mut c2s, client, server, up_bytes, |b| framing.feed(b)) {
            return Poll::Ready(match step {
                Step::Eof => End::ClientClosed { terminated: framing.terminated },
                Step::ReadErr(k) => End::ClientError(k),
                Step::WriteErr(k) => End::ServerError(k),
            });
        }
        if let Poll::Ready(step) = poll_dir(cx, &mut s2c, server, client, down_bytes, |_| {}) {
            return Poll::Ready(match step {
                Step::Eof => End::ServerClosed,
                Step::ReadErr(k) => End::ServerError(k),
                Step::WriteErr(k) => End::ClientError(k),
            });
        }
        Poll::Pending
    })
    .await;
    if end == End::ServerClosed {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tokio::io::AsyncWriteExt::shutdown(client)).await;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn relays_both_ways_and_ends_when_the_client_goes() {
        let (mut client, mut proxy_c) = tokio::io::duplex(64);
        let (mut proxy_s, mut server) = tokio::io::duplex(64);
        let up = AtomicU64::new(0);
        let down = AtomicU64::new(0);
        let task = tokio::spawn(async move {
            let e = relay(&mut proxy_c, &mut proxy_s, &up, &down).await;
            (e, up.load(Relaxed), down.load(Relaxed))
        });
        let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let b2 = big.clone();
        let w = tokio::spawn(async move {
            server.write_all(&b2).await.unwrap();
            let mut got = vec![0u8; 5];
            server.read_exact(&mut got).await.unwrap();
            (server, got)
        });
        let mut got = vec![0u8; big.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
        client.write_all(b"X\0\0\0\x04").await.unwrap();
        let (_server, got) = w.await.unwrap();
        assert_eq!(got, b"X\0\0\0\x04");
        drop(client);
        let (end, up, down) = task.await.unwrap();
        assert_eq!(end, End::ClientClosed { terminated: true });
        assert_eq!((up, down), (5, 100_000));
    }
}
