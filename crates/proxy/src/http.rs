//! The HTTP server: `/startup`, `/liveness`, `/readiness`, `/metrics`. GET only, one request
//! per connection, bounded reads.

use crate::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = listener.accept() => {
                if let Ok((s, _)) = r {
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(5), handle(s, &sh)).await;
                    });
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn handle(mut s: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 8192 {
            return respond(&mut s, 431, "text/plain", "request header too large\n").await;
        }
    }
    let line = String::from_utf8_lossy(buf.split(|&c| c == b'\r').next().unwrap_or(&[])).into_owned();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return respond(&mut s, 405, "text/plain", "only GET\n").await;
    }
    match path {
        "/startup" => {
            let ok = shared.started.load(std::sync::atomic::Ordering::Acquire);
            respond(&mut s, if ok { 200 } else { 503 }, "text/plain", if ok { "ok\n" } else { "starting\n" }).await
        }
        "/liveness" => respond(&mut s, 200, "text/plain", "ok\n").await,
        "/readiness" => {
            let (ok, why) = shared.readiness();
            respond(&mut s, if ok { 200 } else { 503 }, "text/plain", &format!("{why}\n")).await
        }
        "/metrics" => {
            let stats: Vec<_> = shared.targets.iter().map(|t| (t.label.clone(), t.source.stats())).collect();
            let body = shared.metrics.render(&stats, shared.readiness().0);
            respond(&mut s, 200, "text/plain; version=0.0.4", &body).await
        }
        _ => respond(&mut s, 404, "text/plain", "not found\n").await,
    }
}

async fn respond(s: &mut TcpStream, status: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    s.shutdown().await
}
