//! TLS configurations: upstream (always verified: certificate chain and host name) and, with
//! --tls-cert/--tls-key, the one offered to clients.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

use lakebase_core::http::tls::{provider, read_pem_certs, system_roots};

/// The system trust store (the library's one loader) plus `extra_ca` (PEM). Fails when no root
/// at all is usable.
pub fn upstream_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = extra_ca {
        let certs = read_pem_certs(&path.to_string_lossy()).map_err(|e| format!("--upstream-ca: {}", e.message()))?;
        for c in certs {
            roots.add(c).map_err(|e| format!("--upstream-ca {}: {e}", path.display()))?;
        }
    } else if added == 0 {
        return Err("no trusted CA certificates: the system store is empty; install ca-certificates or pass --upstream-ca".into());
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The server configuration offered to clients that send an SSLRequest.
pub fn client_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {}: no certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    Ok(Arc::new(cfg))
}
