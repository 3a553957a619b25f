//! Fingerprints of the Lakebase tokens this process minted (or took from the shared cache), so that a token handed back to libpq
//! as an explicit password (pg_dump and pg_restore reconnect with `PQpass()` of their first
//! connection) is recognised as the library's own and gets the library's rules (identity as
//! user, TLS only to a verified server).
//!
//! A fixed ring of 128-bit SHA-256 prefixes in atomics: lock-free (nothing a `fork()` can leave
//! locked), no allocation, and nothing from which a token could be recovered.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const SLOTS: usize = 64;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static RING: [AtomicU64; SLOTS * 2] = [ZERO; SLOTS * 2];
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn fingerprint(secret: &str) -> (u64, u64) {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let d = digest.as_ref();
    let a = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default()) | 1; // never 0 (= empty slot)
    let b = u64::from_le_bytes(d[8..16].try_into().unwrap_or_default());
    (a, b)
}

/// Remember a token this process minted (the last 64 are kept).
pub(crate) fn record(secret: &str) {
    let (a, b) = fingerprint(secret);
    let i = NEXT.fetch_add(1, Ordering::AcqRel) % SLOTS;
    // A reader racing with this write sees an empty or a mixed slot: no false positive that
    // matters (a mixed slot matches no token), at worst one missed match.
    RING[2 * i].store(0, Ordering::Release);
    RING[2 * i + 1].store(b, Ordering::Release);
    RING[2 * i].store(a, Ordering::Release);
}

/// Whether `password` is one of the last 64 tokens this process minted.
pub fn is_minted_here(password: &str) -> bool {
    if password.is_empty() {
        return false;
    }
    let (a, b) = fingerprint(password);
    (0..SLOTS).any(|i| RING[2 * i].load(Ordering::Acquire) == a && RING[2 * i + 1].load(Ordering::Acquire) == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_last_64_tokens_only() {
        let tok = |i: usize| format!("eyJ-test-token-{i}-{}", "x".repeat(i % 7));
        assert!(!is_minted_here(&tok(0)));
        assert!(!is_minted_here(""));
        for i in 0..10 {
            record(&tok(i));
        }
        assert!((0..10).all(|i| is_minted_here(&tok(i))));
        assert!(!is_minted_here("eyJ-test-token-10"));
        // Other tests record too: after 64 more, the first ones are gone.
        for i in 100..164 {
            record(&tok(i));
        }
        assert!(!is_minted_here(&tok(0)));
        assert!(is_minted_here(&tok(163)));
    }
}
