//! Criterion benchmarks of the cached password, the Rust-side view of the hot path
//! (`Client::with_password`). The C-ABI view, single-flight, pgbench, load cost and cold start are
//! in `bench/` and `scripts/bench.sh`, which also runs this file and prints one table.
//!
//! Self-contained: a minimal loopback HTTP server in this file answers the credential API, so
//! `cargo bench --bench cache` needs no test rig. (Only the first call of each client reaches it;
//! everything measured here is a cache hit.)
//!
//! Benchmarks:
//! - `hit/with_password`: the bare cache hit (closure gets `&str`).
//! - `hit/copy_4k`: the hit plus a copy into a caller buffer, as the C ABI does.
//! - `hit/password_owned`: `Client::password()`, which allocates a zeroizing `Secret`.
//! - `threads/N`: N threads sharing one client; the reported time is wall time / total calls, i.e.
//!   the inverse of aggregate throughput.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lakebase_core::Client;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A JWT-shaped token of the size Lakebase mints (~900 bytes).
fn fake_token() -> String {
    let mut s = String::from("eyJraWQiOiJiZW5jaCIsInR5cCI6IkpXVCIsImFsZyI6IlJTMjU2In0.");
    while s.len() < 560 {
        s.push_str("eyJzdWIiOiJiZW5jaEBleGFtcGxlLmNvbSJ9");
    }
    s.push('.');
    while s.len() < 900 {
        s.push_str("c2lnbmF0dXJl");
    }
    s
}

/// Serve `POST /api/2.0/database/credentials` (and anything else) with a one-hour token.
fn start_fake_workspace() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let exp = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
                    let exp = exp.format(&time::format_description::well_known::Rfc3339).unwrap();
                    let json = format!(r#"{{"token":"{}","expiration_time":"{}"}}"#, fake_token(), exp);
                    let resp =
                        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}", json.len(), json);
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn client() -> Client {
    let host = start_fake_workspace();
    let c = Client::new(&format!("host={host} token=dapi00000000000000000000000000000000 auth_type=pat instance=bench")).expect("client");
    c.with_password(|p| assert!(p.len() > 800)).expect("first password from the in-process fake workspace");
    c
}

fn hit(c: &mut Criterion) {
    let client = client();
    let mut g = c.benchmark_group("hit");
    g.throughput(Throughput::Elements(1));
    g.bench_function("with_password", |b| b.iter(|| client.with_password(|p| black_box(p.len())).unwrap()));
    let mut buf = [0u8; 4096];
    g.bench_function("copy_4k", |b| {
        b.iter(|| {
            client
                .with_password(|p| {
                    buf[..p.len()].copy_from_slice(p.as_bytes());
                    buf[p.len()] = 0;
                    black_box(&buf);
                })
                .unwrap()
        })
    });
    g.bench_function("password_owned", |b| b.iter(|| black_box(client.password().unwrap())));
    g.finish();

    let mut g = c.benchmark_group("threads");
    g.throughput(Throughput::Elements(1));
    for n in [1usize, 2, 4, 16, 64] {
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let per = (iters as usize).div_ceil(n);
                let start = std::sync::Barrier::new(n + 1);
                std::thread::scope(|s| {
                    for _ in 0..n {
                        s.spawn(|| {
                            start.wait();
                            for _ in 0..per {
                                client.with_password(|p| black_box(p.len())).unwrap();
                            }
                        });
                    }
                    start.wait();
                    let t0 = lakebase_core::clock::Stopwatch::start();
                    // the scope joins every thread before returning
                    t0
                })
                .elapsed()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = hit
}
criterion_main!(benches);
