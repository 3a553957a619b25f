//! The TLS policy: credentials travel over https (plain http only to loopback), verified against
//! the system store (or `SSL_CERT_FILE`/`SSL_CERT_DIR` when set) plus an optional CA file. The CA
//! store is loaded here once per process for the HTTP client and the `lakebase doctor` wire client.

use crate::error::{Error, Result};
use arc_swap::ArcSwapOption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;

/// The Azure instance metadata service's fixed address.
pub const INSTANCE_METADATA_HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);

/// [`check_url`], plus, for an instance-metadata request, plain http to exactly
/// [`INSTANCE_METADATA_HOST`] on port 80 (IMDS has no TLS; it is reachable only from the VM).
pub fn check_url_for(raw: &str, instance_metadata: bool) -> Result<()> {
    if instance_metadata {
        if let Ok(u) = url::Url::parse(raw) {
            if u.scheme() == "http" && u.host() == Some(url::Host::Ipv4(INSTANCE_METADATA_HOST)) && u.port_or_known_default() == Some(80) {
                return Ok(());
            }
        }
    }
    check_url(raw)
}

/// Credentials travel over https, or over http only to a loopback address.
pub fn check_url(raw: &str) -> Result<()> {
    let u = url::Url::parse(raw).map_err(|e| Error::config(format!("invalid URL {raw:?}: {e}")))?;
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(Error::config(format!(
            "refusing to send credentials over plain http to {}: use https (plain http is allowed only to loopback addresses)",
            u.host_str().unwrap_or("")
        ))),
        s => Err(Error::config(format!("unsupported URL scheme {s:?} in {raw:?}"))),
    }
}

/// Whether `u` names a loopback host.
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The system store (or, when set, `SSL_CERT_FILE` / `SSL_CERT_DIR` instead: OpenSSL's rule,
/// applied by rustls-native-certs), loaded once per process.
pub fn system_roots() -> Arc<Vec<CertificateDer<'static>>> {
    // Not a OnceLock: a thread loading the store at the moment of fork() would leave a OnceLock
    // "running" forever in the child. Racing loaders each load; one result is kept.
    static SYSTEM: ArcSwapOption<Vec<CertificateDer<'static>>> = ArcSwapOption::const_empty();
    match SYSTEM.load_full() {
        Some(s) => s,
        None => {
            let s = Arc::new(load_system_roots());
            SYSTEM.store(Some(s.clone()));
            s
        }
    }
}

/// rustls-native-certs, except that `SSL_CERT_FILE` is read by [`read_pem_certs`] (a regular file
/// of at most 16 MiB): its own reader would block forever on a FIFO and fill memory from
/// `/dev/zero`. An unusable `SSL_CERT_FILE` leaves the store without its certificates, as
/// before, and is logged.
fn load_system_roots() -> Vec<CertificateDer<'static>> {
    let file = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty());
    let dirs = std::env::var_os("SSL_CERT_DIR").filter(|d| !d.is_empty());
    if file.is_none() && dirs.is_none() {
        return rustls_native_certs::load_native_certs().certs;
    }
    let mut certs = Vec::new();
    if let Some(f) = file {
        match read_pem_certs(&f.to_string_lossy()) {
            Ok(c) => certs.extend(c),
            Err(e) => crate::log_error!("SSL_CERT_FILE: {e}"),
        }
    }
    if let Some(d) = dirs {
        for dir in std::env::split_paths(&d).filter(|p| !p.as_os_str().is_empty()) {
            certs.extend(rustls_native_certs::load_certs_from_paths(None, Some(&dir)).certs);
        }
    }
    certs
}

/// The certificates of a PEM file (rustls' own PEM parser). An unreadable file, one that is not
/// a regular file of at most 16 MiB (a FIFO, a device), one that is not PEM, or one without
/// certificates is a configuration error naming the file.
pub fn read_pem_certs(path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let data = crate::fs::read_capped(std::path::Path::new(path), crate::fs::CA_FILE_MAX)
        .map_err(|e| Error::config(format!("cannot read CA file {path:?}: {e}")))?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&data) {
        certs.push(cert.map_err(|e| Error::config(format!("CA file {path:?} is not valid PEM: {e}")))?);
    }
    if certs.is_empty() {
        return Err(Error::config(format!("CA file {path:?} holds no PEM certificates")));
    }
    Ok(certs)
}

/// The system store plus the certificates of `ca_file`.
pub fn roots(ca_file: Option<&str>) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = ca_file {
        for cert in read_pem_certs(path)? {
            roots.add(cert).map_err(|e| Error::config(format!("CA file {path:?}: bad certificate: {e}")))?;
        }
    }
    Ok(roots)
}

/// The crypto provider every TLS connection of the library uses (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for workspace calls: [`roots`] with `ca_file`, safe defaults.
pub fn client_config(ca_file: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots(ca_file)?)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_metadata_is_the_one_plain_http_exception() {
        let imds = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01";
        assert!(check_url_for(imds, true).is_ok());
        assert!(check_url_for(imds, false).is_err(), "only requests marked as instance metadata");
        assert!(check_url_for("http://169.254.169.254:8080/x", true).is_err());
        assert!(check_url_for("http://169.254.169.253/x", true).is_err());
        assert!(check_url_for("http://example.com/x", true).is_err());
        assert!(check_url_for("http://127.0.0.1:9/x", true).is_ok(), "loopback stays allowed (tests)");
    }
}
