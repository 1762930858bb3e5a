//! The `lbd` command: thin on purpose (arguments, logging, signals); the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "lbd",
    version,
    about = "Load-balancer director: VRRP + IPVS + health checks, managed over HTTP and gRPC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(Box<ServeArgs>),
    /// Print the HTTP API's OpenAPI document (what openapi/openapi.json holds).
    Openapi,
    /// Import one director's keepalived.conf into a running lbd (its per-node VRRP values go to
    /// --node-name; run it again with the other director's file and name).
    ImportKeepalived {
        file: PathBuf,
        /// The director this file belongs to.
        #[arg(long, env = "LBD_NODE_NAME")]
        node_name: String,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        opts: ImportFlags,
        /// The running lbd's HTTP API.
        #[arg(long, env = "LBD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The API token (when lbd runs with --token-file); prefer the environment variable,
        /// which `ps` does not show.
        #[arg(long, env = "LBD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        tls: ClientTlsFlags,
    },
    /// Parse, map and validate keepalived.conf files offline (no daemon): the import's report;
    /// exits non-zero on any error (with --strict also on any unsupported keyword).
    CheckKeepalived {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The director the files belong to (for the per-node VRRP values).
        #[arg(long, env = "LBD_NODE_NAME", default_value = "check")]
        node_name: String,
        #[arg(long)]
        strict: bool,
        #[arg(long)]
        allow_unchecked: bool,
    },
    /// On an LVS-DR real server: put the VIP on lo and set arp_ignore=1/arp_announce=2 (up), or
    /// undo it (down). Idempotent; prints what it changed.
    Realserver {
        #[arg(value_parser = ["up", "down"])]
        action: String,
        #[arg(long)]
        vip: std::net::IpAddr,
    },
    /// Talk to a running lbd (ipvsadm-style).
    Ctl {
        /// The running lbd's HTTP API: http://HOST:PORT, or just HOST:PORT.
        #[arg(
            long,
            env = "LBD_URL",
            default_value = "http://127.0.0.1:8080",
            global = true
        )]
        url: String,
        /// The API token (when lbd runs with --token-file); prefer the environment variable,
        /// which `ps` does not show.
        #[arg(long, env = "LBD_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        tls: ClientTlsFlags,
        #[command(subcommand)]
        cmd: CtlCmd,
    },
    /// Print a running lbd's configuration as keepalived.conf for one node.
    ExportKeepalived {
        #[arg(long, env = "LBD_NODE_NAME")]
        node_name: String,
        #[arg(long, env = "LBD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The API token (when lbd runs with --token-file); prefer the environment variable,
        /// which `ps` does not show.
        #[arg(long, env = "LBD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        tls: ClientTlsFlags,
    },
}

/// How a client command reaches an https API (`lbd serve --tls-cert`).
#[derive(clap::Args, Clone)]
struct ClientTlsFlags {
    /// Trust this CA (PEM) for an https --url: the CA that signed lbd's certificate.
    #[arg(long, env = "LBD_CA", global = true)]
    ca: Option<PathBuf>,
    /// Mutual TLS: present this client certificate (PEM; with --key).
    #[arg(long, env = "LBD_CERT", global = true)]
    cert: Option<PathBuf>,
    /// The key of --cert (PEM).
    #[arg(long, env = "LBD_KEY", global = true)]
    key: Option<PathBuf>,
}

impl ClientTlsFlags {
    fn tls(&self) -> lbd::cli::ctl::ClientTls {
        lbd::cli::ctl::ClientTls {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

/// How a command names a virtual server (ipvsadm's -t/-u/-f).
#[derive(clap::Args, Clone)]
struct SvcFlags {
    /// The service is UDP (ipvsadm -u); TCP (-t) is the default.
    #[arg(short = 'u', long, conflicts_with = "sctp")]
    udp: bool,
    /// The service is SCTP (ipvsadm --sctp-service).
    #[arg(long)]
    sctp: bool,
    /// A firewall-mark service (ipvsadm -f MARK): then leave out SERVICE.
    #[arg(short = 'f', long, value_name = "MARK")]
    fwmark: Option<u32>,
}

impl SvcFlags {
    fn target(&self, words: Vec<String>) -> lbd::cli::ctl::Target {
        lbd::cli::ctl::Target {
            protocol: Some(if self.udp {
                lbd::model::Protocol::Udp
            } else if self.sctp {
                lbd::model::Protocol::Sctp
            } else {
                lbd::model::Protocol::Tcp
            }),
            fwmark: self.fwmark,
            words,
        }
    }
}

#[derive(clap::Args)]
struct ImportFlags {
    /// Where this file disagrees with the other director's on a shared value, take this file's.
    #[arg(long)]
    prefer_file: bool,
    /// Remove the virtual servers and VRRP groups the file does not name.
    #[arg(long)]
    replace: bool,
    /// Import a real server whose check lbd cannot run without a check (warned) instead of failing.
    #[arg(long)]
    allow_unchecked: bool,
    /// Fail on any keyword lbd does not support.
    #[arg(long)]
    strict: bool,
}

impl ImportFlags {
    fn options(&self) -> lbd::keepalived::ImportOptions {
        lbd::keepalived::ImportOptions {
            prefer_file: self.prefer_file,
            replace: self.replace,
            allow_unchecked: self.allow_unchecked,
            strict: self.strict,
        }
    }
}

/// The forwarding method, as lbd names it or as ipvsadm's flags do.
#[derive(clap::Args, Clone)]
struct FwdFlags {
    /// Forwarding method: dr (or route, gatewaying), nat (or masq, masquerading), tun (or
    /// ipip, tunnel); any case.
    #[arg(long, value_name = "METHOD", value_parser = parse_forwarding)]
    forwarding: Option<lbd::model::Forwarding>,
    /// Direct routing (ipvsadm -g, --gatewaying).
    #[arg(short = 'g', long, conflicts_with_all = ["forwarding", "masquerading", "ipip"])]
    gatewaying: bool,
    /// NAT (ipvsadm -m, --masquerading).
    #[arg(short = 'm', long, conflicts_with_all = ["forwarding", "ipip"])]
    masquerading: bool,
    /// IP-in-IP tunnelling (ipvsadm -i, --ipip).
    #[arg(short = 'i', long, conflicts_with = "forwarding")]
    ipip: bool,
}

impl FwdFlags {
    fn get(&self) -> Option<lbd::model::Forwarding> {
        use lbd::model::Forwarding;
        if self.gatewaying {
            Some(Forwarding::Dr)
        } else if self.masquerading {
            Some(Forwarding::Nat)
        } else if self.ipip {
            Some(Forwarding::Tun)
        } else {
            self.forwarding
        }
    }
}

fn parse_forwarding(s: &str) -> Result<lbd::model::Forwarding, String> {
    lbd::cli::ipvsadm::forwarding(s).map_err(|e| e.0)
}

fn parse_scheduler(s: &str) -> Result<lbd::model::Scheduler, String> {
    lbd::cli::ipvsadm::scheduler(s).map_err(|e| e.0)
}

#[derive(Subcommand)]
enum CtlCmd {
    /// The kernel's IPVS table, in `ipvsadm -Ln` layout (--config: what lbd is configured to
    /// program, with ids, weights and health).
    List {
        /// Traffic totals (ipvsadm -Ln --stats).
        #[arg(long, conflicts_with = "config")]
        stats: bool,
        /// The configured services and real servers with their ids, weights and health.
        #[arg(long)]
        config: bool,
    },
    /// Node, revision, data plane and health.
    Status,
    /// The IPVS connection table (ipvsadm -Lnc).
    Connections,
    /// Create a virtual server VIP:PORT, or -f MARK (ipvsadm -A).
    Create {
        /// VIP:PORT (IPv6: [VIP]:PORT); leave out with -f.
        #[arg(value_name = "VIP:PORT", required_unless_present = "fwmark")]
        vip: Option<String>,
        #[command(flatten)]
        svc: SvcFlags,
        /// With -f: the address family of the firewall-mark service (ipv4, ipv6).
        #[arg(long, value_parser = ["ipv4", "ipv6"], ignore_case = true, default_value = "ipv4")]
        family: String,
        /// Scheduler (ipvsadm -s), any case: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq,
        /// mh, fo, ovf, twos.
        #[arg(short = 's', long, value_parser = parse_scheduler, default_value = "rr")]
        scheduler: lbd::model::Scheduler,
        /// Protocol: tcp, udp, sctp (same as -u / --sctp).
        #[arg(long, value_parser = ["tcp", "udp", "sctp"], ignore_case = true)]
        protocol: Option<String>,
        #[command(flatten)]
        fwd: FwdFlags,
        /// Persistence timeout in seconds (ipvsadm -p).
        #[arg(short = 'p', long, value_name = "SECS")]
        persistent: Option<u32>,
    },
    /// Add a real server ADDR[:PORT] to a service (ipvsadm -a).
    AddReal {
        /// SERVICE (VIP:PORT or its id; leave out with -f), then the real server ADDR[:PORT].
        #[arg(value_name = "SERVICE REAL", num_args = 1..=2, required = true)]
        targets: Vec<String>,
        #[command(flatten)]
        svc: SvcFlags,
        /// The real server's port when REAL has none (default: the service's).
        #[arg(long)]
        port: Option<u16>,
        /// Weight 0..=65535 (ipvsadm -w).
        #[arg(short = 'w', long, default_value_t = 1)]
        weight: u32,
        #[command(flatten)]
        fwd: FwdFlags,
    },
    /// Change a real server's weight and/or forwarding (ipvsadm -e); the rest, health check
    /// included, stays.
    EditReal {
        /// SERVICE (VIP:PORT or its id; leave out with -f), then the real server (ADDR[:PORT]
        /// or its id).
        #[arg(value_name = "SERVICE REAL", num_args = 1..=2, required = true)]
        targets: Vec<String>,
        #[command(flatten)]
        svc: SvcFlags,
        /// New weight 0..=65535 (ipvsadm -w).
        #[arg(short = 'w', long)]
        weight: Option<u32>,
        #[command(flatten)]
        fwd: FwdFlags,
    },
    /// Set a real server's weight to 0: existing connections finish, new ones go elsewhere.
    Drain {
        /// SERVICE (VIP:PORT or its id; leave out with -f), then the real server (ADDR[:PORT]
        /// or its id).
        #[arg(value_name = "SERVICE REAL", num_args = 1..=2, required = true)]
        targets: Vec<String>,
        #[command(flatten)]
        svc: SvcFlags,
    },
    /// Put a drained real server back with --weight (default 1): lbd does not remember the
    /// weight it had before the drain.
    Undrain {
        /// SERVICE (VIP:PORT or its id; leave out with -f), then the real server (ADDR[:PORT]
        /// or its id).
        #[arg(value_name = "SERVICE REAL", num_args = 1..=2, required = true)]
        targets: Vec<String>,
        #[command(flatten)]
        svc: SvcFlags,
        /// The weight to restore, 0..=65535.
        #[arg(short = 'w', long, default_value_t = 1)]
        weight: u32,
    },
    /// Delete a virtual server (SERVICE), or one of its real servers (SERVICE REAL).
    Delete {
        /// SERVICE (VIP:PORT or its id; leave out with -f), then optionally the real server
        /// (ADDR[:PORT] or its id).
        #[arg(value_name = "SERVICE [REAL]", num_args = 0..=2)]
        targets: Vec<String>,
        #[command(flatten)]
        svc: SvcFlags,
    },
    /// The configured services and real servers as ipvsadm rules (ipvsadm -S -n). Health
    /// checks, sorry servers and VRRP groups have no rule syntax and are left out.
    Save,
    /// Apply ipvsadm rules (ipvsadm -R) from FILE or stdin to the configuration in one
    /// revision-guarded write: -A/-E/-D services, -a/-e/-d real servers, -C clears services.
    Restore {
        /// The rules; `-` or absent: stdin.
        file: Option<PathBuf>,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Zero the kernel's traffic counters (ipvsadm -Z): of every service, or of SERVICE.
    Zero {
        /// VIP:PORT (IPv6: [VIP]:PORT) or a configured service's id; leave out with -f, or to
        /// zero every service.
        #[arg(value_name = "SERVICE", num_args = 0..=1)]
        targets: Vec<String>,
        #[command(flatten)]
        svc: SvcFlags,
        /// With -f: the IPv6 firewall-mark service (ipvsadm -6).
        #[arg(short = '6', long, requires = "fwmark")]
        ipv6: bool,
    },
    /// The kernel's IPVS connection timeouts (ipvsadm -L --timeout); with --set TCP TCPFIN UDP
    /// (ipvsadm --set, seconds) makes them lbd's configuration, which it sets in the kernel and
    /// keeps there: a 0 is left as the kernel has it, `--set 0 0 0` stops managing them.
    Timeouts {
        /// TCP TCPFIN UDP in seconds, in ipvsadm's order (each 0..=2147483).
        #[arg(long, num_args = 3, value_names = ["TCP", "TCPFIN", "UDP"])]
        set: Option<Vec<u32>>,
        /// With --set: show what would change; change nothing.
        #[arg(long, requires = "set")]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// One line per event, `key=value` fields; coloured only on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Log line format.
    #[arg(long, env = "LBD_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// SQLite database file (created if missing). Default: `lbd.db` in systemd's
    /// `STATE_DIRECTORY` when set (the unit's `StateDirectory=lbd`), else `./lbd.db`.
    #[arg(long, env = "LBD_DB")]
    db: Option<PathBuf>,
    /// HTTP API listen address.
    #[arg(long, env = "LBD_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: SocketAddr,
    /// gRPC API listen address.
    #[arg(long, env = "LBD_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    grpc_listen: SocketAddr,
    /// API tokens: `TOKEN ROLE` lines (role read, operate or admin; a token may be given as
    /// `sha256:HEX`), read again on SIGHUP and when the file changes. Required when either API
    /// listens beyond loopback; without it, the API is open on loopback.
    #[arg(long, env = "LBD_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A host name requests may carry in `Host` besides IP addresses and `localhost`
    /// (repeatable); any other is refused (DNS rebinding).
    #[arg(
        long = "allowed-host",
        env = "LBD_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_host: Vec<String>,
    /// An origin (`https://ops.example.com`) whose web pages may call the HTTP API (CORS;
    /// repeatable). None by default: pages of other origins are refused.
    #[arg(long = "cors-origin", env = "LBD_CORS_ORIGINS", value_delimiter = ',')]
    cors_origin: Vec<String>,
    /// Serve both APIs over TLS with this certificate chain (PEM, the server's certificate
    /// first); needs --tls-key. Read again on SIGHUP.
    #[arg(long, env = "LBD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM). Read again on SIGHUP.
    #[arg(long, env = "LBD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate that chains to this CA (PEM). Without
    /// it no client certificate is asked for. Read again on SIGHUP.
    #[arg(long, env = "LBD_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// This director's name: selects its per-node VRRP entries (default: the hostname).
    #[arg(long, env = "LBD_NODE_NAME")]
    node_name: Option<String>,
    /// A peer director's `--peer-listen` address, `HOST:PORT` (repeatable): the directors hold
    /// one configuration and one health view (see the README's "Peer sync"). Without it, lbd
    /// runs alone.
    #[arg(long = "peer", env = "LBD_PEERS", value_delimiter = ',')]
    peer: Vec<String>,
    /// Where this director serves its peers (with `--peer`).
    #[arg(long, env = "LBD_PEER_LISTEN", default_value = "0.0.0.0:7946")]
    peer_listen: SocketAddr,
    /// The shared secret of the peer link (at least 16 bytes; surrounding white space is
    /// ignored): it authenticates every peer message. Required with `--peer`.
    #[arg(long, env = "LBD_PEER_SECRET_FILE")]
    peer_secret_file: Option<PathBuf>,
    /// Mutual TLS on the peer link: the CA every director's certificate chains to (with
    /// `--peer-cert` and `--peer-key`). A peer's certificate must name the address it is reached
    /// at (`--peer`). With it, `--peer-secret-file` is optional.
    #[arg(long, env = "LBD_PEER_CA", requires_all = ["peer_cert", "peer_key"])]
    peer_ca: Option<PathBuf>,
    /// This director's certificate on the peer link (PEM, with its chain).
    #[arg(long, env = "LBD_PEER_CERT", requires_all = ["peer_ca", "peer_key"])]
    peer_cert: Option<PathBuf>,
    /// The key of `--peer-cert` (PEM).
    #[arg(long, env = "LBD_PEER_KEY", requires_all = ["peer_ca", "peer_cert"])]
    peer_key: Option<PathBuf>,
    /// The longest (ms) a starting director holds its data plane (IPVS and VRRP) until it has
    /// heard from every peer.
    #[arg(long, env = "LBD_PEER_CATCH_UP_MS", default_value_t = 3_000)]
    peer_catch_up_ms: u64,
    /// How often (ms) the kernel's IPVS table is compared with the configuration to repair drift.
    #[arg(long, env = "LBD_RESYNC_INTERVAL_MS", default_value_t = 10_000)]
    resync_interval_ms: u64,
    /// Largest request body (bytes) of the single-resource HTTP routes; a larger one is refused
    /// with 413 before it is read.
    #[arg(long, env = "LBD_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// Largest body (bytes) of PUT /api/v1/config (the whole configuration).
    #[arg(long, env = "LBD_MAX_CONFIG_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    max_config_body_bytes: usize,
    /// Largest body (bytes) of POST /api/v1/import/keepalived.
    #[arg(long, env = "LBD_MAX_IMPORT_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    max_import_body_bytes: usize,
    /// Request body bytes held in memory at once, over all HTTP requests.
    #[arg(long, env = "LBD_BODY_MEMORY_BYTES", default_value_t = 96 * 1024 * 1024)]
    body_memory_bytes: usize,
    /// Time (ms) a client has to send a whole request body (408 after it).
    #[arg(long, env = "LBD_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// Time (ms) a client has to send a whole HTTP/1 request head.
    #[arg(long, env = "LBD_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Time (ms) a connection may stay open with no request (HTTP) or no bytes (gRPC).
    #[arg(long, env = "LBD_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// Open connections per listener (HTTP and gRPC each); more wait in the kernel's backlog.
    #[arg(long, env = "LBD_MAX_CONNECTIONS", default_value_t = 16_384)]
    max_connections: usize,
    /// Requests handled at once (per front end); more wait their turn.
    #[arg(long, env = "LBD_MAX_REQUESTS", default_value_t = 256)]
    max_requests: usize,
    /// Largest gRPC request message (bytes).
    #[arg(long, env = "LBD_MAX_GRPC_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_grpc_message_bytes: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            // Through a `Value`, whose objects keep their keys sorted: the same document
            // prints the same way every time.
            let spec = serde_json::to_value(lbd::api::openapi())
                .and_then(|v| serde_json::to_string_pretty(&v))
                .context("cannot render the OpenAPI document")?;
            println!("{spec}");
            Ok(())
        }
        Command::Serve(args) => serve(*args),
        Command::ImportKeepalived {
            file,
            node_name,
            dry_run,
            opts,
            url,
            token,
            tls,
        } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let url = lbd::cli::ctl::Api::new(&url, token.as_deref(), &tls.tls())?;
            let report = rt.block_on(lbd::cli::ctl::import_keepalived(
                &url,
                &file,
                &node_name,
                dry_run,
                opts.options(),
            ))?;
            print!("{report}");
            Ok(())
        }
        Command::CheckKeepalived {
            files,
            node_name,
            strict,
            allow_unchecked,
        } => {
            let opts = lbd::keepalived::ImportOptions {
                strict,
                allow_unchecked,
                ..Default::default()
            };
            let mut failed = 0;
            for f in &files {
                match lbd::cli::ctl::check_keepalived(f, &node_name, opts) {
                    Ok(report) => print!("{report}"),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: error: {e}", f.display());
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} file(s) failed the check", files.len());
            }
            Ok(())
        }
        Command::Ctl {
            url,
            token,
            json,
            tls,
            cmd,
        } => {
            let url = lbd::cli::ctl::Api::new(&url, token.as_deref(), &tls.tls())?;
            let stats = matches!(cmd, CtlCmd::List { stats: true, .. });
            let out = lbd::cli::ctl::Output { json, stats };
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let text = rt.block_on(ctl(&url, cmd, &out))?;
            print!("{text}");
            Ok(())
        }
        Command::Realserver { action, vip } => {
            let changes = if action == "up" {
                lbd::cli::realserver_host::up(vip)?
            } else {
                lbd::cli::realserver_host::down(vip)?
            };
            if changes.is_empty() {
                println!("nothing to change");
            }
            for c in changes {
                println!("{c}");
            }
            Ok(())
        }
        Command::ExportKeepalived {
            node_name,
            url,
            token,
            tls,
        } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let api = lbd::cli::ctl::Api::new(&url, token.as_deref(), &tls.tls())?;
            print!(
                "{}",
                rt.block_on(lbd::cli::ctl::export_keepalived(&api, &node_name))?
            );
            Ok(())
        }
    }
}

async fn ctl(
    url: &lbd::cli::ctl::Api,
    cmd: CtlCmd,
    out: &lbd::cli::ctl::Output,
) -> Result<String, lbd::cli::ctl::CtlError> {
    use lbd::cli::ctl::{self, CtlError};
    match cmd {
        CtlCmd::List { config: true, .. } => ctl::list_config(url, out).await,
        CtlCmd::List { .. } => ctl::list(url, out).await,
        CtlCmd::Status => ctl::status(url, out).await,
        CtlCmd::Connections => ctl::connections(url, out).await,
        CtlCmd::Create {
            vip,
            svc,
            family,
            scheduler,
            protocol,
            fwd,
            persistent,
        } => {
            let mut body = serde_json::json!({
                "scheduler": scheduler,
                "forwarding": fwd.get().unwrap_or_default(),
            });
            match (svc.fwmark, vip) {
                (Some(m), None) => {
                    body["fwmark"] = m.into();
                    body["family"] = family.to_ascii_lowercase().into();
                }
                (None, Some(v)) => {
                    let (addr, port) = lbd::cli::ipvsadm::host_port(&v)?;
                    let port = port.ok_or_else(|| {
                        CtlError::Usage(format!("{v}: a virtual server is VIP:PORT"))
                    })?;
                    let proto = match protocol {
                        Some(p) => lbd::cli::ipvsadm::protocol(&p)?,
                        None => svc
                            .target(vec![])
                            .protocol
                            .unwrap_or(lbd::model::Protocol::Tcp),
                    };
                    body["address"] = addr.to_string().into();
                    body["port"] = port.into();
                    body["protocol"] = serde_json::to_value(proto).unwrap_or_default();
                }
                _ => return Err(CtlError::Usage("give VIP:PORT or -f MARK, not both".into())),
            }
            if let Some(p) = persistent {
                body["persistence_timeout_secs"] = p.into();
            }
            ctl::create(url, body, out).await
        }
        CtlCmd::AddReal {
            targets,
            svc,
            port,
            weight,
            fwd,
        } => {
            let mut body = serde_json::json!({ "weight": weight });
            if let Some(p) = port {
                body["port"] = p.into();
            }
            if let Some(f) = fwd.get() {
                body["forwarding"] = serde_json::to_value(f).unwrap_or_default();
            }
            ctl::add_real_to(url, &svc.target(targets), body, out).await
        }
        CtlCmd::EditReal {
            targets,
            svc,
            weight,
            fwd,
        } => {
            let mut patch = serde_json::json!({});
            if let Some(w) = weight {
                patch["weight"] = w.into();
            }
            if let Some(f) = fwd.get() {
                patch["forwarding"] = serde_json::to_value(f).unwrap_or_default();
            }
            ctl::edit_real(url, &svc.target(targets), patch, out).await
        }
        CtlCmd::Drain { targets, svc } => ctl::drain(url, &svc.target(targets), out).await,
        CtlCmd::Undrain {
            targets,
            svc,
            weight,
        } => ctl::undrain(url, &svc.target(targets), weight, out).await,
        CtlCmd::Delete { targets, svc } => ctl::delete_target(url, &svc.target(targets), out).await,
        CtlCmd::Save => ctl::save(url).await,
        CtlCmd::Restore { file, dry_run } => {
            let text = match file.as_deref() {
                None => read_stdin(),
                Some(p) if p == std::path::Path::new("-") => read_stdin(),
                Some(p) => std::fs::read_to_string(p),
            }
            .map_err(|source| CtlError::Read {
                path: file
                    .as_ref()
                    .map_or("stdin".into(), |p| p.display().to_string()),
                source,
            })?;
            ctl::restore(url, &text, dry_run, out).await
        }
        CtlCmd::Zero { targets, svc, ipv6 } => {
            if targets.is_empty() && svc.fwmark.is_none() && (svc.udp || svc.sctp) {
                return Err(CtlError::Usage(
                    "name the service: VIP:PORT after -u/--sctp".into(),
                ));
            }
            ctl::zero(url, &svc.target(targets), ipv6, out).await
        }
        CtlCmd::Timeouts { set: None, .. } => ctl::timeouts(url, out).await,
        CtlCmd::Timeouts {
            set: Some(v),
            dry_run,
        } => match v.as_slice() {
            [tcp, fin, udp] => ctl::set_timeouts(url, *tcp, *fin, *udp, dry_run, out).await,
            _ => Err(CtlError::Usage("--set takes TCP TCPFIN UDP".into())),
        },
    }
}

fn read_stdin() -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s)
}

/// `lbd.db` in the first of systemd's `STATE_DIRECTORY` paths (colon-separated), else in the
/// working directory.
fn default_db() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .and_then(|dirs| {
            std::env::split_paths(&dirs)
                .next()
                .filter(|d| !d.as_os_str().is_empty())
        })
        .unwrap_or_else(|| PathBuf::from("."))
        .join("lbd.db")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("LBD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => log.json().init(),
        // Colour only for a person at a terminal: a file or a journal gets plain text.
        LogFormat::Text => log
            .with_ansi(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
    // Both listeners at their connection cap, plus the database, sockets and files of the data
    // plane, must fit under the descriptor limit.
    let want = (args.max_connections as u64)
        .saturating_mul(2)
        .saturating_add(1024);
    let have = lbd::control::listener::raise_fd_limit(want);
    let mut max_connections = args.max_connections;
    if have < want {
        max_connections = (have.saturating_sub(1024) / 2).max(64) as usize;
        tracing::warn!(
            open_files = have,
            max_connections,
            "the open-file limit is too low for --max-connections; using fewer connections"
        );
    }
    let ms = std::time::Duration::from_millis;
    let limits = lbd::daemon::Limits {
        http: lbd::api::limits::HttpLimits {
            body_bytes: args.max_body_bytes,
            config_body_bytes: args.max_config_body_bytes,
            import_body_bytes: args.max_import_body_bytes,
            body_memory_bytes: args.body_memory_bytes,
            body_timeout: ms(args.body_timeout_ms),
            max_requests: args.max_requests,
        },
        connections: lbd::control::listener::ConnLimits {
            max_connections,
            header_timeout: ms(args.header_timeout_ms),
            idle_timeout: ms(args.idle_timeout_ms),
        },
        grpc_message_bytes: args.max_grpc_message_bytes,
    };
    let peer = if args.peer.is_empty() {
        None
    } else {
        let tls = match (&args.peer_ca, &args.peer_cert, &args.peer_key) {
            (Some(ca), Some(cert), Some(key)) => Some(lbd::control::tls::mutual(
                ca,
                cert,
                key,
                lbd::control::tls::ALPN_GRPC,
            )?),
            _ => None,
        };
        let key = match (&args.peer_secret_file, &tls) {
            (Some(path), _) => lbd::peer::read_key(path)?,
            (None, Some(_)) => lbd::peer::seal::Key::tls_only(),
            (None, None) => anyhow::bail!(
                "--peer needs --peer-secret-file or --peer-ca/--peer-cert/--peer-key: the peer link is always authenticated"
            ),
        };
        Some(lbd::peer::PeerConfig {
            peers: args.peer.clone(),
            listen: args.peer_listen,
            key,
            tls,
            catch_up: std::time::Duration::from_millis(args.peer_catch_up_ms),
        })
    };
    let tls =
        lbd::control::tls::TlsFiles::from_flags(args.tls_cert, args.tls_key, args.tls_client_ca)?;
    let cfg = lbd::daemon::ServerConfig {
        tls,
        peer,
        limits,
        notifier: lbd::control::systemd::Notifier::from_env(),
        db: args.db.unwrap_or_else(default_db),
        http_listen: args.http_listen,
        grpc_listen: args.grpc_listen,
        node_name: args.node_name.unwrap_or_else(lbd::daemon::hostname),
        resync_interval: std::time::Duration::from_millis(args.resync_interval_ms.max(100)),
        auth: lbd::control::auth::AuthConfig {
            token_file: args.token_file,
            allowed_hosts: args.allowed_host,
            cors_origins: args.cors_origin,
        },
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        // Watch the signals before serving, so a SIGTERM right after start-up is a clean stop.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        lbd::daemon::run(cfg, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
