//! TLS at both edges of a node, with rustls (no OpenSSL): the listener's certificate (`wss://`, the HTTP API,
//! the auth endpoints and the probes on one port), reloaded when its files change or on SIGHUP without
//! dropping anyone (a bad new file keeps the old certificate), and the client that reaches the app over
//! `https://` (auth forwarding and webhooks), trusting the system's roots plus an optional CA bundle.

use crate::auth_proxy::AppClient;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;

/// The modification times of the certificate and key files.
type Stamps = (Option<SystemTime>, Option<SystemTime>);

/// How often the certificate files are looked at for a change.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Why a certificate, key or CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
}

fn file_error(what: &'static str, path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The ring provider, for every rustls configuration Herald builds.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file of certificates (a chain, or a CA bundle).
pub fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_error(what, path, e))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, e))?;
    if certs.is_empty() {
        return Err(file_error(what, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_error("key file", path, e))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| file_error("key file", path, e))?
        .ok_or_else(|| file_error("key file", path, "no PEM private key in it"))
}

/// The listener's certificate and key, as the files hold them now.
fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs("certificate file", cert)?;
    let key_der = read_key(key)?;
    let signing = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| file_error("key file", key, e))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| file_error("certificate file", cert, format!("does not match the key: {e}")))?;
    Ok(certified)
}

/// The listener's certificate, swapped in place when its files change.
#[derive(Debug)]
pub struct ListenerCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ListenerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

impl ListenerCert {
    /// Loads the files; fails (at start) when they cannot serve.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let certified = load_certified_key(cert, key)?;
        Ok(Arc::new(ListenerCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(certified)),
        }))
    }

    /// Loads the files again: a good pair is served to the next connection; a bad one keeps the old and says
    /// why.
    pub fn reload(&self, why: &str) {
        match load_certified_key(&self.cert, &self.key) {
            Ok(certified) => {
                *self.current.write().expect("certificate lock") = Arc::new(certified);
                tracing::info!(cert = %self.cert.display(), why, "TLS certificate reloaded");
            }
            Err(e) => tracing::warn!(error = %e, why, "TLS certificate not reloaded; still serving the previous one"),
        }
    }

    /// The acceptor for the listener (HTTP/1.1 over TLS).
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// Reloads when either file changes (cert-manager and Let's Encrypt renew them in place; Kubernetes swaps
    /// a Secret's symlink) and on SIGHUP, until the process ends.
    pub fn watch(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let mut loaded: Stamps = (stamp(&this.cert), stamp(&this.key));
            // A change is loaded once the files have held still for a poll, so a file being rewritten in place
            // is never read half-written.
            let mut changing: Option<Stamps> = None;
            let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                let why = tokio::select! {
                    _ = tick.tick() => {
                        let now = (stamp(&this.cert), stamp(&this.key));
                        if now == loaded { changing = None; continue; }
                        if changing != Some(now) { changing = Some(now); continue; }
                        loaded = now;
                        changing = None;
                        "the certificate files changed"
                    }
                    Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                };
                this.reload(why);
            }
        });
    }
}

/// The client that reaches the app (auth forwarding, webhooks): `http://` and `https://`, trusting the
/// system's roots and, when given, the CA bundle at `ca_file`. Redirects are never followed.
pub fn app_client(ca_file: Option<&Path>) -> Result<AppClient, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        for cert in read_certs("CA file", path)? {
            roots.add(cert).map_err(|e| file_error("CA file", path, e))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    // Title-case header names (`X-Pusher-Signature`): some PHP code looks headers up case-sensitively.
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http1_title_case_headers(true)
            .build(connector),
    )
}

/// The whole chain of an error, so a certificate problem (`invalid peer certificate: UnknownIssuer`) shows in
/// the log line rather than only "client error (Connect)".
pub fn cause(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
