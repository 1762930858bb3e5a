//! TLS for the two front ends (rustls, ring), and the building blocks other parts of lbd reuse
//! for mutual TLS.
//!
//! `lbd serve --tls-cert PATH --tls-key PATH` serves both APIs over TLS (HTTP/1.1 and h2 by
//! ALPN on the HTTP port, h2 on the gRPC port); `--tls-client-ca PATH` also asks every client
//! for a certificate and accepts only one that chains to that CA (mutual TLS). Without
//! `--tls-client-ca` no client certificate is requested.
//!
//! The files are read again on SIGHUP (with the token file, see [`crate::control::auth`]): new
//! connections get the new certificate; a file that does not load keeps the configuration in
//! force, logs why, and `/api/v1/status` shows the error until a reload succeeds.
//!
//! [`server_config`], [`client_config`] and [`mutual`] build rustls configurations from
//! `(ca, cert, key)`, the shapes a mutual-TLS link between lbd nodes needs too.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Serialize;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {what} {path} holds no {expected} (PEM expected)")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("the CA file {path}: {message}")]
    Ca { path: PathBuf, message: String },
    #[error("cannot verify client certificates with the CA: {0}")]
    Verifier(String),
    #[error("the TLS certificate and key do not make a configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("the certificate {cert} and key {key} do not make a TLS configuration: {source}")]
    Files {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("--tls-cert and --tls-key go together: give both, or neither for plain HTTP and gRPC")]
    Incomplete,
    #[error("--tls-client-ca needs --tls-cert and --tls-key")]
    CaWithoutCert,
}

impl TlsError {
    /// A configuration error, naming the files it came from.
    pub fn naming(self, cert: &Path, key: &Path) -> TlsError {
        match self {
            TlsError::Config(source) => TlsError::Files {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                source,
            },
            other => other,
        }
    }
}

/// Where the front ends' certificate, key and (for mutual TLS) client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Clients must present a certificate chaining to this CA (PEM, one or more).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The files from the three optional flags: both `cert` and `key` or neither, and a
    /// client CA only with them.
    pub fn from_flags(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        client_ca: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, TlsError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert,
                key,
                client_ca,
            })),
            (None, None) if client_ca.is_some() => Err(TlsError::CaWithoutCert),
            (None, None) => Ok(None),
            _ => Err(TlsError::Incomplete),
        }
    }
}

/// The crypto lbd uses: ring's.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn open(what: &'static str, path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
}

/// The certificates of a PEM file, in order.
pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut r = open(what, path)?;
    let certs = rustls_pemfile::certs(&mut r)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "TLS key";
    let mut r = open(what, path)?;
    rustls_pemfile::private_key(&mut r)
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "PRIVATE KEY",
        })
}

/// A trust store of the CA certificates of a PEM file.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs("CA file", path)? {
        roots.add(c).map_err(|e| TlsError::Ca {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A server configuration: `chain` and `key` as the server's identity; with `client_ca`,
/// every client must present a certificate that chains to it. `alpn` in preference order.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<RootCertStore>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(roots) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key)?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// A client configuration that trusts `roots`, and presents `identity` (chain, key) when the
/// server asks for a certificate.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut cfg = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// Both ends of a mutual-TLS link: each side proves itself with `cert`/`key` and accepts only
/// a peer whose certificate chains to `ca`.
#[derive(Debug, Clone)]
pub struct MutualTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

/// Reads `ca`, `cert` and `key` (PEM) into a [`MutualTls`] that speaks `alpn`.
pub fn mutual(ca: &Path, cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<MutualTls, TlsError> {
    let roots = load_roots(ca)?;
    let chain = load_certs("TLS certificate", cert)?;
    let key_der = load_key(key)?;
    let server = server_config(
        chain.clone(),
        key_der.clone_key(),
        Some(roots.clone()),
        alpn,
    )
    .map_err(|e| e.naming(cert, key))?;
    let client =
        client_config(roots, Some((chain, key_der)), alpn).map_err(|e| e.naming(cert, key))?;
    Ok(MutualTls {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

/// ALPN of the HTTP port: HTTP/2, then HTTP/1.1.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN of the gRPC port: HTTP/2 only.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];

/// Whether the API is served over TLS (`/api/v1/status`, in `auth`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct TlsStatus {
    /// Clients must present a certificate from the configured CA (`--tls-client-ca`).
    pub mutual: bool,
    /// Why the last reload (SIGHUP) failed; the configuration loaded before stays in force.
    /// Absent once a reload succeeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_error: Option<String>,
}

/// The front ends' TLS in force: one acceptor per port, and what the status shows.
#[derive(Clone)]
pub struct ServerTls {
    pub http: TlsAcceptor,
    pub grpc: TlsAcceptor,
    pub status: TlsStatus,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the files and builds both ports' configurations.
    pub fn load(files: &TlsFiles) -> Result<ServerTls, TlsError> {
        let chain = load_certs("TLS certificate", &files.cert)?;
        let key = load_key(&files.key)?;
        let roots = files.client_ca.as_deref().map(load_roots).transpose()?;
        let mutual = roots.is_some();
        let named = |e: TlsError| e.naming(&files.cert, &files.key);
        let http = server_config(chain.clone(), key.clone_key(), roots.clone(), ALPN_HTTP)
            .map_err(named)?;
        let grpc = server_config(chain, key, roots, ALPN_GRPC).map_err(named)?;
        Ok(ServerTls {
            http: TlsAcceptor::from(Arc::new(http)),
            grpc: TlsAcceptor::from(Arc::new(grpc)),
            status: TlsStatus {
                mutual,
                reload_error: None,
            },
        })
    }
}

/// The TLS in force, for the listeners: each new connection takes the latest.
pub type TlsRx = watch::Receiver<Arc<ServerTls>>;

/// The files and the sender the reload task keeps.
#[derive(Debug)]
pub struct TlsWatch {
    files: TlsFiles,
    tx: watch::Sender<Arc<ServerTls>>,
}

/// Loads the files (a start with files that do not load fails) and returns the listeners'
/// receiver and the reload task's half.
pub fn start(files: &TlsFiles) -> Result<(TlsRx, TlsWatch), TlsError> {
    let tls = ServerTls::load(files)?;
    tracing::info!(
        cert = %files.cert.display(),
        client_ca = ?files.client_ca.as_ref().map(|p| p.display().to_string()),
        "serving both APIs over TLS"
    );
    let (tx, rx) = watch::channel(Arc::new(tls));
    Ok((
        rx,
        TlsWatch {
            files: files.clone(),
            tx,
        },
    ))
}

impl TlsWatch {
    /// Reads the files again; on failure keeps what is in force and records why.
    pub fn reload(&self, why: &str) {
        match ServerTls::load(&self.files) {
            Ok(tls) => {
                tracing::info!(cert = %self.files.cert.display(), why, "TLS certificate reloaded");
                let _ = self.tx.send(Arc::new(tls));
            }
            Err(e) => {
                tracing::warn!(error = %e, why, "TLS files not reloaded: the certificate loaded before stays in force");
                self.tx.send_modify(|cur| {
                    let mut next = ServerTls::clone(cur);
                    next.status.reload_error = Some(e.to_string());
                    *cur = Arc::new(next);
                });
            }
        }
    }
}

/// Reads the TLS files again on every SIGHUP until `stop`. `hup` is made by the caller while it
/// starts (see [`crate::control::auth::catch_sighup`]).
pub async fn reload(
    w: TlsWatch,
    mut hup: Option<tokio::signal::unix::Signal>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            Some(()) = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => w.reload("SIGHUP"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_go_together() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert!(matches!(
            TlsFiles::from_flags(p("c"), None, None),
            Err(TlsError::Incomplete)
        ));
        assert!(matches!(
            TlsFiles::from_flags(None, p("k"), None),
            Err(TlsError::Incomplete)
        ));
        assert!(matches!(
            TlsFiles::from_flags(None, None, p("ca")),
            Err(TlsError::CaWithoutCert)
        ));
        assert!(matches!(TlsFiles::from_flags(None, None, None), Ok(None)));
        assert!(matches!(
            TlsFiles::from_flags(p("c"), p("k"), p("ca")),
            Ok(Some(_))
        ));
    }

    #[test]
    fn mutual_from_files_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let (ca_p, cert_p, key_p) = (
            dir.path().join("ca.pem"),
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
        );
        std::fs::write(&ca_p, ca.pem()).unwrap();
        std::fs::write(&cert_p, cert.pem()).unwrap();
        std::fs::write(&key_p, key.serialize_pem()).unwrap();
        let m = mutual(&ca_p, &cert_p, &key_p, ALPN_GRPC).unwrap();
        assert_eq!(m.server.alpn_protocols, vec![b"h2".to_vec()]);

        std::fs::write(&key_p, "not a key").unwrap();
        let e = mutual(&ca_p, &cert_p, &key_p, ALPN_GRPC).unwrap_err();
        assert!(e.to_string().contains("key.pem"), "{e}");
        let e = ServerTls::load(&TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: key_p,
            client_ca: None,
        })
        .unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}
