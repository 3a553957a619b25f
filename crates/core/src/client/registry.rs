//! Shared cache entries: clients with the same (workspace, auth material, target) share one entry,
//! found by a SHA-256 key over everything that decides which token a client gets.

use super::Entry;
use crate::config::{Config, Env};
use crate::target::Target;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

pub(crate) type Key = [u8; 32];

pub(crate) fn registry() -> &'static ArcSwap<HashMap<Key, Weak<Entry>>> {
    static R: OnceLock<ArcSwap<HashMap<Key, Weak<Entry>>>> = OnceLock::new();
    R.get_or_init(|| ArcSwap::from_pointee(HashMap::new()))
}

/// The live entry for `key`, or a new one. Lock-free (copy-on-write map), so `fork()` cannot
/// leave it locked.
pub(crate) fn shared_entry(key: Key, make: impl FnOnce(&Weak<Entry>) -> Entry) -> Arc<Entry> {
    if let Some(e) = registry().load().get(&key).and_then(Weak::upgrade) {
        return e;
    }
    let fresh = Arc::new_cyclic(make);
    let mut chosen = fresh.clone();
    registry().rcu(|map| {
        let mut m: HashMap<Key, Weak<Entry>> = map.iter().filter(|(_, w)| w.strong_count() > 0).map(|(k, w)| (*k, w.clone())).collect();
        match m.get(&key).and_then(Weak::upgrade) {
            Some(existing) => chosen = existing,
            None => {
                chosen = fresh.clone();
                m.insert(key, Arc::downgrade(&fresh));
            }
        }
        m
    });
    chosen
}

/// SHA-256 over everything that decides which token a client gets: every attribute of the table
/// marked `cache_key` (all but the timeouts), the auth method picked, the federated JWT of the OIDC
/// methods (another JWT can be another identity), and the target.
pub(crate) fn cache_key(cfg: &Config, env: &dyn Env, auth_type: &str, target: Option<&Target>) -> Key {
    // ring's SHA-256: the implementation rustls already brings (one SHA-256 in the library).
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    let mut put = |label: &str, v: Option<&str>| {
        h.update(label.as_bytes());
        h.update(&[0]);
        if let Some(v) = v {
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        } else {
            h.update(&u64::MAX.to_le_bytes());
        }
    };
    put("v2", None);
    for a in crate::config::attributes().iter().filter(|a| a.cache_key) {
        put(a.name, a.key_value(cfg).as_deref().map(|s| s.as_str()));
    }
    put("auth_type", Some(auth_type));
    let oidc_var = cfg.oidc_token_env.clone().unwrap_or_else(|| "DATABRICKS_OIDC_TOKEN".into());
    let jwt = if auth_type.ends_with("oidc") { env.var(&oidc_var).map(zeroize::Zeroizing::new) } else { None };
    put("oidc_token", jwt.as_deref().map(|s| s.as_str()));
    put("scopes", Some(&cfg.scopes().join(" ")));
    put("target_kind", target.map(|t| t.kind()));
    put("target", target.map(|t| t.name()));
    let mut key = [0u8; 32];
    key.copy_from_slice(h.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_options, MapEnv};

    fn key(options: &str) -> Key {
        let env = MapEnv::from_pairs([("HOME", "/nonexistent")]);
        let cfg = Config::resolve(&parse_options(options).unwrap(), &env).unwrap();
        let target = Target::from_config(&cfg).unwrap();
        cache_key(&cfg, &env, "pat", target.as_ref())
    }

    #[test]
    fn every_token_deciding_attribute_is_in_the_key() {
        let base = key("host=https://h token=a instance=i");
        assert_eq!(base, key("host=https://h token=a instance=i"));
        assert_ne!(base, key("host=https://h token=b instance=i"), "the PAT");
        assert_ne!(base, key("host=https://h2 token=a instance=i"), "the workspace");
        assert_ne!(base, key("host=https://h token=a instance=j"), "the target");
        assert_ne!(base, key("host=https://h token=a instance=i workspace_id=7"), "the workspace id");
        assert_ne!(base, key("host=https://h token=a instance=i ca_file=/x"), "the CA file");
        assert_ne!(base, key("host=https://h token=a instance=i token_audience=x"), "an attribute of the table");
        assert_ne!(base, key("host=https://h token=a instance=i group_id=7"), "the group to assume");
        let ep = "host=https://h token=a endpoint=projects/p/branches/b/endpoints/e";
        assert_ne!(key(ep), key(&format!("{ep} group_name=writers")), "the group role");
        // Each client keeps its own timeouts; they do not split the cache.
        assert_eq!(base, key("host=https://h token=a instance=i http_timeout_seconds=5 retry_timeout_seconds=9"));
    }
}
