//! Who may call the API: bearer tokens with roles, shared by HTTP and gRPC, and the checks that
//! keep a web page in an operator's browser from driving lbd (foreign `Host`, foreign `Origin`).
//!
//! The token file has one `TOKEN ROLE` pair per line (`#` starts a comment). A token is either
//! the secret itself (at least 16 characters) or `sha256:` and the hex SHA-256 of the secret,
//! so the file need not hold secrets. Roles: `read` (GETs, status, events, metrics), `operate`
//! (that plus drain/undrain and weights, and zeroing counters) and `admin` (everything). The
//! file is read again on SIGHUP and when it changes; a file that does not parse keeps the
//! tokens already loaded, and says why in the log.
//!
//! Without a token file lbd is open, which it allows only while both APIs listen on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use utoipa::ToSchema;

/// What a caller may do. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads: the configuration, status, events, the kernel's table, metrics.
    Read,
    /// Reads, and the day-to-day operations: drain and undrain (a real server's weight),
    /// zeroing the kernel's counters.
    Operate,
    /// Everything, including imports and replacing the whole configuration.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "operate" => Some(Role::Operate),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The role a request was admitted with, as a request extension (HTTP and gRPC): handlers
/// that admit `operate` for part of what they do check the rest against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub Role);

/// Whether the API asks for tokens (`/api/v1/status` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No token file: every caller is `admin`. Allowed only on loopback listeners.
    Open,
    /// Every API call carries a bearer token of the token file.
    Tokens,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuthStatus {
    pub mode: AuthMode,
    /// How many tokens the token file holds now (0 when open).
    pub tokens: usize,
    /// Present when both APIs are served over TLS (`--tls-cert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::control::tls::TlsStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the API listens on {addr}, beyond loopback: give --token-file (see README, \"Authentication\")")]
    OpenBeyondLoopback { addr: SocketAddr },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one the file does not hold (HTTP 401, gRPC UNAUTHENTICATED).
    Unauthenticated(&'static str),
    /// A valid token whose role is not enough (HTTP 403, gRPC PERMISSION_DENIED).
    Forbidden { have: Role, need: Role },
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Unauthenticated(why) => f.write_str(why),
            Denied::Forbidden { have, need } => write!(
                f,
                "this token's role is {}; this call needs {}",
                have.as_str(),
                need.as_str()
            ),
        }
    }
}

/// The tokens of one reading of the token file.
#[derive(Debug, Default)]
pub struct TokenSet {
    /// SHA-256 of each secret: a presented token is hashed and compared with every entry, so
    /// the time taken does not depend on how much of a secret matched.
    entries: Vec<([u8; 32], Role)>,
}

/// Shortest secret accepted in the file: a guessable token is no token.
const MIN_SECRET_CHARS: usize = 16;
/// Largest token file read (a few thousand tokens).
const MAX_FILE_BYTES: u64 = 1 << 20;

impl TokenSet {
    pub fn parse(path: &Path, text: &str) -> Result<TokenSet, AuthError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |message: String| AuthError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(token), Some(role), None) = (words.next(), words.next(), words.next()) else {
                return Err(err(
                    "expected `TOKEN ROLE` (role: read, operate or admin)".into()
                ));
            };
            let role = Role::parse(role).ok_or_else(|| {
                err(format!(
                    "unknown role {role:?}: expected read, operate or admin"
                ))
            })?;
            let digest = if let Some(hex) = token.strip_prefix("sha256:") {
                decode_hex32(hex).ok_or_else(|| {
                    err(
                        "sha256: must be followed by 64 hex digits (the SHA-256 of the token)"
                            .into(),
                    )
                })?
            } else {
                if token.chars().count() < MIN_SECRET_CHARS {
                    return Err(err(format!(
                        "a token is at least {MIN_SECRET_CHARS} characters (or sha256:HEX)"
                    )));
                }
                sha256(token.as_bytes())
            };
            entries.push((digest, role));
        }
        Ok(TokenSet { entries })
    }

    pub fn load(path: &Path) -> Result<TokenSet, AuthError> {
        let read = |source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(AuthError::Syntax {
                path: path.to_path_buf(),
                line: 0,
                message: format!("larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        TokenSet::parse(path, &text)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The role of `token`, if the file holds it.
    fn role_of(&self, token: &str) -> Option<Role> {
        let presented = sha256(token.as_bytes());
        let mut found = None;
        for (digest, role) in &self.entries {
            // Every entry is compared whole, a match or not.
            let diff = digest
                .iter()
                .zip(presented.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none_or(|r| *role > r) {
                found = Some(*role);
            }
        }
        found
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// When a file last changed, as far as a poll can tell.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The token file as it was read at start, for [`reload`] to watch.
#[derive(Debug)]
pub struct TokenWatch {
    path: PathBuf,
    tx: watch::Sender<Arc<TokenSet>>,
    /// Taken before the read: a change made while lbd starts is read again at the first poll.
    read_at: Stamp,
}

/// The API's authentication settings (`lbd serve --token-file`, `--allowed-host`,
/// `--cors-origin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub token_file: Option<PathBuf>,
    /// Host names (besides IP literals and `localhost`) that requests may name in `Host`.
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://ops.example.com`) whose pages may call the API (CORS). None by default.
    pub cors_origins: Vec<String>,
}

/// The API's gatekeeper, cloned into both front ends. The tokens come over a watch channel from
/// the task that reloads the file.
#[derive(Debug, Clone)]
pub struct Auth {
    tokens: Option<watch::Receiver<Arc<TokenSet>>>,
    allowed_hosts: Arc<Vec<String>>,
    cors_origins: Arc<Vec<String>>,
    /// The TLS in force, for the status.
    tls: Option<crate::control::tls::TlsRx>,
}

impl Auth {
    /// Open: every caller is admin (tests, and lbd on loopback without a token file).
    pub fn open() -> Auth {
        Auth {
            tokens: None,
            allowed_hosts: Arc::default(),
            cors_origins: Arc::default(),
            tls: None,
        }
    }

    /// The same, reporting `tls` in its status.
    pub fn with_tls(self, tls: Option<crate::control::tls::TlsRx>) -> Auth {
        Auth { tls, ..self }
    }

    /// Reads the token file (if any) and checks that an open API listens only on loopback.
    /// The returned sender is the reload task's (see [`reload`]).
    pub fn start(
        cfg: &AuthConfig,
        listeners: &[SocketAddr],
    ) -> Result<(Auth, Option<TokenWatch>), AuthError> {
        let hosts = cfg
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let origins = cfg
            .cors_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        let (tokens, tx) = match &cfg.token_file {
            Some(path) => {
                let read_at = stamp(path);
                let set = TokenSet::load(path)?;
                if set.is_empty() {
                    tracing::warn!(path = %path.display(), "the token file holds no tokens: every API call is refused");
                }
                let (tx, rx) = watch::channel(Arc::new(set));
                let w = TokenWatch {
                    path: path.clone(),
                    tx,
                    read_at,
                };
                (Some(rx), Some(w))
            }
            None => {
                if let Some(addr) = listeners.iter().find(|a| !a.ip().is_loopback()) {
                    return Err(AuthError::OpenBeyondLoopback { addr: *addr });
                }
                (None, None)
            }
        };
        Ok((
            Auth {
                tokens,
                allowed_hosts: Arc::new(hosts),
                cors_origins: Arc::new(origins),
                tls: None,
            },
            tx,
        ))
    }

    pub fn status(&self) -> AuthStatus {
        let tls = self.tls.as_ref().map(|rx| rx.borrow().status.clone());
        match &self.tokens {
            None => AuthStatus {
                mode: AuthMode::Open,
                tokens: 0,
                tls,
            },
            Some(rx) => AuthStatus {
                mode: AuthMode::Tokens,
                tokens: rx.borrow().len(),
                tls,
            },
        }
    }

    /// The caller's role for a call that needs `need`, from the token it presented.
    pub fn check(&self, presented: Option<&str>, need: Role) -> Result<Caller, Denied> {
        let Some(rx) = &self.tokens else {
            return Ok(Caller(Role::Admin));
        };
        let token = presented.ok_or(Denied::Unauthenticated(
            "this API needs a bearer token (Authorization: Bearer TOKEN)",
        ))?;
        let have = rx
            .borrow()
            .role_of(token)
            .ok_or(Denied::Unauthenticated("the token is not valid"))?;
        if have < need {
            return Err(Denied::Forbidden { have, need });
        }
        Ok(Caller(have))
    }

    /// Whether a request's `Host` may be served: an IP literal, `localhost`, or an allowed
    /// name. A name pointed at lbd by someone else's DNS (rebinding) is refused.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        if name.parse::<std::net::IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether a page of `origin` may call the API: the page lbd serves itself (same host and
    /// port as `host`), or a configured CORS origin.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/');
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if let (Some(a), Some(h)) = (authority, host) {
            if a.eq_ignore_ascii_case(h) {
                return true;
            }
        }
        self.cors_allowed(origin)
    }

    /// A configured CORS origin.
    pub fn cors_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.cors_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// The host part of a `Host` value (`[::1]:8080` → `::1`, `lb.example:8080` → `lb.example`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The bearer token of an `Authorization` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// SIGHUP, caught from now on.
pub fn catch_sighup() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot catch SIGHUP: the token file is reloaded when it changes only");
            None
        }
    }
}

/// Reads the token file again on SIGHUP and whenever it changes (checked every `poll`), until
/// `stop`. A file that does not parse keeps the tokens already loaded. Without a token file
/// (`None`) a SIGHUP only says there is nothing to reload: `systemctl reload` must not end lbd,
/// which SIGHUP's default action would. `hup` is made by the caller while it starts, so a
/// SIGHUP right after start-up is caught too (see [`catch_sighup`]).
pub async fn reload(
    w: Option<TokenWatch>,
    mut hup: Option<tokio::signal::unix::Signal>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = w.as_ref().and_then(|w| w.read_at);
    loop {
        let why = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            Some(()) = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => "SIGHUP",
            _ = tokio::time::sleep(poll), if w.is_some() => {
                let now = w.as_ref().and_then(|w| stamp(&w.path));
                if now == last {
                    continue;
                }
                last = now;
                "the file changed"
            }
        };
        let Some(w) = &w else {
            tracing::info!("SIGHUP: no token file to reload (lbd runs without --token-file)");
            continue;
        };
        match TokenSet::load(&w.path) {
            Ok(set) => {
                tracing::info!(path = %w.path.display(), tokens = set.len(), why, "token file reloaded");
                let _ = w.tx.send(Arc::new(set));
            }
            Err(e) => {
                tracing::error!(error = %e, why, "token file not reloaded: the tokens loaded before stay in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> Result<TokenSet, AuthError> {
        TokenSet::parse(Path::new("tokens"), text)
    }

    fn auth_with(text: &str) -> Auth {
        let (_tx, rx) = watch::channel(Arc::new(set(text).unwrap()));
        // The sender's end goes away; the last value stays readable.
        Auth {
            tokens: Some(rx),
            allowed_hosts: Arc::new(vec!["lb.example".into()]),
            cors_origins: Arc::new(vec!["https://ops.example".into()]),
            tls: None,
        }
    }

    #[test]
    fn roles_from_plain_and_hashed_tokens() {
        let hashed = "sha256:".to_string()
            + &sha256(b"operator-token-0123")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>();
        let a = auth_with(&format!(
            "# comment\n\nreader-token-0123456 read\n{hashed} operate # the operator\nadmin-token-01234567 admin\n"
        ));
        assert_eq!(
            a.status(),
            AuthStatus {
                mode: AuthMode::Tokens,
                tokens: 3,
                tls: None,
            }
        );
        assert_eq!(
            a.check(Some("reader-token-0123456"), Role::Read),
            Ok(Caller(Role::Read))
        );
        assert_eq!(
            a.check(Some("reader-token-0123456"), Role::Operate),
            Err(Denied::Forbidden {
                have: Role::Read,
                need: Role::Operate
            })
        );
        assert_eq!(
            a.check(Some("operator-token-0123"), Role::Operate),
            Ok(Caller(Role::Operate))
        );
        assert_eq!(
            a.check(Some("operator-token-0123"), Role::Admin),
            Err(Denied::Forbidden {
                have: Role::Operate,
                need: Role::Admin
            })
        );
        assert_eq!(
            a.check(Some("admin-token-01234567"), Role::Admin),
            Ok(Caller(Role::Admin))
        );
        assert!(matches!(
            a.check(None, Role::Read),
            Err(Denied::Unauthenticated(_))
        ));
        assert!(matches!(
            a.check(Some("admin-token-0123456"), Role::Read),
            Err(Denied::Unauthenticated(_))
        ));
        assert_eq!(
            Auth::open().check(None, Role::Admin),
            Ok(Caller(Role::Admin))
        );
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line, says) in [
            ("short admin\n", 1, "at least 16"),
            ("\nlong-enough-token-123 root\n", 2, "unknown role"),
            ("a b c\n", 1, "TOKEN ROLE"),
            ("sha256:abcd admin\n", 1, "64 hex"),
        ] {
            match set(text) {
                Err(AuthError::Syntax {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(message.contains(says), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn hosts_and_origins() {
        let a = auth_with("");
        for h in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost:8080",
            "10.1.2.3",
            "LB.example:80",
        ] {
            assert!(a.host_allowed(h), "{h}");
        }
        for h in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "lb.example.evil",
        ] {
            assert!(!a.host_allowed(h), "{h}");
        }
        assert!(a.origin_allowed("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!a.origin_allowed("http://evil.example", Some("127.0.0.1:8080")));
        assert!(!a.origin_allowed("http://127.0.0.1:9999", Some("127.0.0.1:8080")));
        assert!(a.origin_allowed("https://ops.example/", Some("127.0.0.1:8080")));
        assert!(!a.origin_allowed("null", Some("127.0.0.1:8080")));
    }

    #[test]
    fn open_only_on_loopback() {
        let cfg = AuthConfig::default();
        assert!(Auth::start(
            &cfg,
            &["127.0.0.1:80".parse().unwrap(), "[::1]:1".parse().unwrap()]
        )
        .is_ok());
        assert!(matches!(
            Auth::start(
                &cfg,
                &[
                    "127.0.0.1:80".parse().unwrap(),
                    "0.0.0.0:1".parse().unwrap()
                ]
            ),
            Err(AuthError::OpenBeyondLoopback { .. })
        ));
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
