//! Cancel keys: clients get the proxy's own BackendKeyData; a CancelRequest carrying one is
//! forwarded to the matching upstream backend.

use crate::upstream::Upstream;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Entry {
    secret: [u8; 4],
    upstream: Arc<Upstream>,
    pid: u32,
    key: Vec<u8>,
}

#[derive(Default)]
pub struct Registry {
    map: Mutex<HashMap<u32, Entry>>,
}

/// Removes its key from the registry when the client connection ends.
pub struct KeyGuard<'a> {
    reg: &'a Registry,
    pub pid: u32,
    pub secret: [u8; 4],
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.reg.lock().remove(&self.pid);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh (pid, secret) for the client, mapped to the upstream backend's key.
    pub fn register(&self, upstream: Arc<Upstream>, pid: u32, key: Vec<u8>) -> KeyGuard<'_> {
        let rng = SystemRandom::new();
        let mut b = [0u8; 8];
        loop {
            let _ = rng.fill(&mut b);
            let our_pid = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff;
            let secret = [b[4], b[5], b[6], b[7]];
            let mut m = self.lock();
            if our_pid == 0 || m.contains_key(&our_pid) {
                continue;
            }
            m.insert(our_pid, Entry { secret, upstream: upstream.clone(), pid, key: key.clone() });
            return KeyGuard { reg: self, pid: our_pid, secret };
        }
    }

    /// The upstream backend for a client's cancel key, if the key is live and matches.
    pub fn lookup(&self, pid: u32, secret: &[u8]) -> Option<(Arc<Upstream>, u32, Vec<u8>)> {
        let m = self.lock();
        let e = m.get(&pid)?;
        if secret.len() != 4 || secret.iter().zip(e.secret.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return None;
        }
        Some((e.upstream.clone(), e.pid, e.key.clone()))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_and_unmap() {
        let reg = Registry::default();
        let up = Arc::new(Upstream { host: "h".into(), port: 1, tls: crate::tls::upstream_config(None).unwrap() });
        let g = reg.register(up, 42, vec![9, 9, 9, 9]);
        let (_, pid, key) = reg.lookup(g.pid, &g.secret).unwrap();
        assert_eq!((pid, key), (42, vec![9, 9, 9, 9]));
        let mut wrong = g.secret;
        wrong[0] ^= 1;
        assert!(reg.lookup(g.pid, &wrong).is_none());
        assert!(reg.lookup(g.pid, &g.secret[..3]).is_none());
        let p = g.pid;
        let s = g.secret;
        drop(g);
        assert!(reg.lookup(p, &s).is_none());
        assert!(reg.is_empty());
    }
}
