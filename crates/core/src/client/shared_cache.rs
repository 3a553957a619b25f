//! How a cache [`Entry`] uses the per-user shared cache ([`crate::cache::disk`]): the other
//! processes of the user with the same cache key (workspace, auth material, target) share one
//! database credential, identity, Postgres host and discovered targets.
//!
//! The in-memory cache stays in front: a hit never touches the disk. Only a fetch (a miss, the
//! refresher, a rejected token) and the first `identity()` / `postgres_host()` /
//! `discover_target()` of a process look here:
//!
//! 1. read the entry (no lock): a token it holds that this process would serve, and that is not
//!    the one being replaced, is adopted — no request;
//! 2. else lock the entry (bounded wait; the kernel drops the lock of a process that dies), read
//!    it again (another process may have minted meanwhile), and mint only if it still has
//!    nothing usable; the new token goes into the entry before the lock is released. N processes
//!    starting at once make one mint. A process that waited while the holder's mint failed gets
//!    that failure instead of repeating it;
//! 3. a token the server rejected is removed from the entry unless a newer one replaces it, so
//!    no process adopts it again; the refresher's renewals land in the entry for everyone.
//!
//! The workspace OAuth token (an all-apis bearer for the whole workspace) is never stored: the
//! database credential alone removes the mint, and a leaked database credential opens one
//! database for an hour, not the workspace.
//!
//! Only auth methods whose credentials are all in what the key hashes share entries (see
//! [`shared_key`]); methods that take the identity from another program's login state
//! (`databricks-cli`, `azure-cli`, `metadata-service`) do not: after `az login` as someone
//! else, nothing in the configuration changes, so a shared entry would hand out a token of the
//! previous identity.

use super::Entry;
use crate::cache::disk::{Failure, Key, Learned, LearnedTarget, Record, Store, StoredToken};
use crate::cache::{Fetched, Obtained, Token};
use crate::clock::WallMs;
use crate::config::Config;
use crate::error::Result;
use crate::target::Target;
use std::time::Duration;

/// How long an identity, Postgres host or discovered target learned by another process is used
/// before it is looked up again.
const LEARNED_MAX_AGE_MS: i64 = 12 * 3600 * 1000;

/// A token from the shared cache must be servable at least this much longer to be adopted.
const ADOPT_HEADROOM_MS: i64 = 1_000;

/// The key of the shared entry for a client with in-memory key `key`, or `None` when its auth
/// method may not share (new methods are not shared until listed here). `file-oidc` mixes in
/// the token file's contents: the path alone does not say whose token the file holds.
pub(super) fn shared_key(key: Key, cfg: &Config, auth_type: &str) -> Option<Key> {
    match auth_type {
        "pat" | "basic" | "oauth-m2m" | "azure-client-secret" | "azure-msi" | "env-oidc" | "github-oidc" | "github-oidc-azure" => Some(key),
        "file-oidc" => {
            let path = cfg.oidc_token_filepath.as_deref().filter(|p| !p.is_empty())?;
            let data = zeroize::Zeroizing::new(std::fs::read(path).ok()?);
            let mut h = ring::digest::Context::new(&ring::digest::SHA256);
            h.update(b"file-oidc\0");
            h.update(&key);
            h.update(&data);
            let mut k = [0u8; 32];
            k.copy_from_slice(h.finish().as_ref());
            Some(k)
        }
        _ => None,
    }
}

/// The entry's place in the shared cache.
pub(super) struct SharedCache {
    pub(super) store: Store,
    pub(super) key: Key,
    pub(super) workspace: String,
    pub(super) auth_type: &'static str,
    pub(super) target: Option<(String, String)>,
    /// Longest wait for another process's mint.
    pub(super) wait: Duration,
}

impl SharedCache {
    fn blank(&self) -> Record {
        Record {
            workspace: self.workspace.clone(),
            auth_type: self.auth_type.to_string(),
            target: self.target.clone(),
            ..Record::default()
        }
    }
}

/// Why the password cache fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    /// No servable token in this process.
    Miss,
    /// The refresher renews ahead of expiry.
    Refresh,
    /// The server rejected the current token.
    Rejected,
    /// The caller asked for a new token (`refresh`) at this instant: only one obtained since then
    /// (by another process, say) may be taken instead of minting.
    Forced(WallMs),
}

impl Entry {
    /// The fetch behind the password cache: the shared cache first, then a mint.
    pub(super) fn fetch(&self, why: Why) -> Result<Obtained> {
        let Some(sc) = &self.shared_cache else { return self.mint().map(Obtained::from) };
        let current = self.cache.current();
        if let Some(o) = sc.store.read(&sc.key).and_then(|r| self.adoptable(r, current.as_deref(), why)) {
            return Ok(o);
        }
        let started = self.cache.clock().wall_ms();
        let Some(session) = sc.store.session(&sc.key, sc.wait) else { return self.mint().map(Obtained::from) };
        let rec = session.read();
        if let Some(o) = rec.clone().and_then(|r| self.adoptable(r, current.as_deref(), why)) {
            return Ok(o);
        }
        if session.waited {
            if let Some(f) = rec.as_ref().and_then(|r| r.failure.as_ref()).filter(|f| f.at_ms >= started) {
                crate::log_info!("shared cache: another process's request failed while this one waited; not repeating it");
                return Err(f.to_error());
            }
        }
        let minted = self.mint();
        let now = self.cache.clock().wall_ms();
        let mut rec = rec.unwrap_or_else(|| sc.blank());
        match &minted {
            Ok(f) => {
                rec.token = Some(StoredToken { secret: f.secret.clone(), obtained_ms: now, expiry_ms: f.expiry_ms });
                rec.failure = None;
            }
            Err(e) => {
                rec.failure = Some(Failure::of(e, now));
                let stale = matches!((&rec.token, &current), (Some(t), Some(c)) if t.secret == c.secret);
                if why == Why::Rejected && stale {
                    rec.token = None;
                }
            }
        }
        session.write(&mut rec, now);
        minted.map(|fetched| Obtained { fetched, obtained_ms: Some(now), adopted: false })
    }

    /// The entry's token, if this process may take it instead of minting: servable (with some
    /// headroom; for the refresher, not due for refresh itself), not the token being replaced and
    /// not older than it.
    fn adoptable(&self, rec: Record, current: Option<&Token>, why: Why) -> Option<Obtained> {
        let t = rec.token?;
        if let Why::Forced(since) = why {
            if t.obtained_ms < since {
                return None;
            }
        }
        if let Some(c) = current {
            if c.secret == t.secret || t.obtained_ms < c.obtained_ms {
                return None;
            }
        }
        let now = self.cache.clock().wall_ms();
        let (refresh_at, serve_until) = self.cache.schedule_of(t.obtained_ms.min(now), t.expiry_ms);
        if now.saturating_add(ADOPT_HEADROOM_MS) >= serve_until || (why == Why::Refresh && now >= refresh_at) {
            return None;
        }
        crate::log_debug!(
            "shared cache: using the password minted by process {} at {} ({why:?})",
            rec.writer_pid,
            crate::timefmt::fmt_wall(t.obtained_ms)
        );
        // Handed out by this process from now on, like one it minted: a program that passes it
        // back as an explicit password (pg_dump -j, pg_restore -C) must be recognised.
        crate::cache::minted::record(t.secret.expose());
        Some(Obtained { fetched: Fetched { secret: t.secret, expiry_ms: t.expiry_ms }, obtained_ms: Some(t.obtained_ms), adopted: true })
    }

    /// Something learned once per entry (`find` in a record, else `fetch` and `keep`), shared
    /// across processes; looked up under the entry's lock so that processes starting at once ask
    /// the API once.
    fn learn<T: Clone>(
        &self,
        find: impl Fn(&Record, WallMs) -> Option<T>,
        keep: impl FnOnce(&mut Record, &T, WallMs),
        fetch: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let Some(sc) = &self.shared_cache else { return fetch() };
        let now = self.cache.clock().wall_ms();
        if let Some(v) = sc.store.read(&sc.key).and_then(|r| find(&r, now)) {
            return Ok(v);
        }
        let Some(session) = sc.store.session(&sc.key, sc.wait) else { return fetch() };
        let rec = session.read();
        let now = self.cache.clock().wall_ms();
        if let Some(v) = rec.as_ref().and_then(|r| find(r, now)) {
            return Ok(v);
        }
        let v = fetch()?;
        let now = self.cache.clock().wall_ms();
        let mut rec = rec.unwrap_or_else(|| sc.blank());
        keep(&mut rec, &v, now);
        session.write(&mut rec, now);
        Ok(v)
    }

    /// The identity (SCIM userName), from the shared cache or `fetch`.
    pub(super) fn shared_identity(&self, fetch: impl FnOnce() -> Result<String>) -> Result<String> {
        self.learn(
            |r, now| fresh(r.identity.as_ref(), now),
            |r, v, now| r.identity = Some(Learned { value: v.clone(), learned_ms: now }),
            fetch,
        )
    }

    /// The target's Postgres host, from the shared cache or `fetch`.
    pub(super) fn shared_pg_host(&self, fetch: impl FnOnce() -> Result<String>) -> Result<String> {
        self.learn(
            |r, now| fresh(r.pg_host.as_ref(), now),
            |r, v, now| r.pg_host = Some(Learned { value: v.clone(), learned_ms: now }),
            fetch,
        )
    }

    /// The target serving Postgres host `host`, from the shared cache or `fetch`.
    pub(super) fn shared_target(&self, host: &str, fetch: impl FnOnce() -> Result<Target>) -> Result<Target> {
        let host = host.to_ascii_lowercase();
        self.learn(
            |r, now| {
                let t = r.targets.iter().find(|t| t.host == host && age_ok(t.learned_ms, now))?;
                match t.kind.as_str() {
                    "instance" => Some(Target::Instance(t.name.clone())),
                    _ => Some(Target::Endpoint(t.name.clone())),
                }
            },
            |r, t, now| {
                r.targets.retain(|x| x.host != host && age_ok(x.learned_ms, now));
                r.targets.push(LearnedTarget {
                    host: host.clone(),
                    kind: t.kind().to_string(),
                    name: t.name().to_string(),
                    learned_ms: now,
                });
            },
            fetch,
        )
    }
}

fn age_ok(learned_ms: WallMs, now: WallMs) -> bool {
    let age = now.saturating_sub(learned_ms);
    (-60_000..LEARNED_MAX_AGE_MS).contains(&age)
}

fn fresh(l: Option<&Learned>, now: WallMs) -> Option<String> {
    l.filter(|l| age_ok(l.learned_ms, now)).map(|l| l.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_methods_whose_credentials_the_key_covers_share() {
        let cfg = Config::default();
        let key = [3u8; 32];
        for m in ["pat", "basic", "oauth-m2m", "azure-client-secret", "azure-msi", "env-oidc", "github-oidc", "github-oidc-azure"] {
            assert_eq!(shared_key(key, &cfg, m), Some(key), "{m}");
        }
        for m in ["databricks-cli", "azure-cli", "metadata-service", "some-new-method"] {
            assert_eq!(shared_key(key, &cfg, m), None, "{m}");
        }
        // file-oidc: the file's contents are part of the key; no readable file, no sharing.
        assert_eq!(shared_key(key, &cfg, "file-oidc"), None);
        let path = std::env::temp_dir().join(format!("lakebase-oidc-{}-{:x}", std::process::id(), fastrand::u64(..)));
        let cfg = Config { oidc_token_filepath: Some(path.to_string_lossy().into_owned()), ..Config::default() };
        std::fs::write(&path, "jwt-of-alice").unwrap();
        let a = shared_key(key, &cfg, "file-oidc").unwrap();
        assert_ne!(a, key);
        assert_eq!(shared_key(key, &cfg, "file-oidc"), Some(a));
        std::fs::write(&path, "jwt-of-bob").unwrap();
        assert_ne!(shared_key(key, &cfg, "file-oidc"), Some(a));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn learned_values_age_out() {
        let l = Learned { value: "alice".into(), learned_ms: 1_000_000 };
        assert_eq!(fresh(Some(&l), 1_000_000 + LEARNED_MAX_AGE_MS - 1), Some("alice".into()));
        assert_eq!(fresh(Some(&l), 1_000_000 + LEARNED_MAX_AGE_MS), None);
        // Learned "in the future" (a clock step back) by more than a minute: not trusted.
        assert_eq!(fresh(Some(&l), 1_000_000 - 61_000), None);
        assert_eq!(fresh(None, 0), None);
    }
}
