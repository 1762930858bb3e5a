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
    Serve(ServeArgs),
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
        /// The running lbd's HTTP API.
        #[arg(long, env = "LBD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
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
        /// The running lbd's HTTP API.
        #[arg(
            long,
            env = "LBD_URL",
            default_value = "http://127.0.0.1:8080",
            global = true
        )]
        url: String,
        /// Print the API's JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        cmd: CtlCmd,
    },
    /// Print a running lbd's configuration as keepalived.conf for one node.
    ExportKeepalived {
        #[arg(long, env = "LBD_NODE_NAME")]
        node_name: String,
        #[arg(long, env = "LBD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

#[derive(Subcommand)]
enum CtlCmd {
    /// The kernel's IPVS table, in `ipvsadm -Ln` layout.
    List {
        /// Traffic totals (ipvsadm -Ln --stats).
        #[arg(long)]
        stats: bool,
    },
    /// Node, revision, data plane and health.
    Status,
    /// The IPVS connection table (ipvsadm -Lnc).
    Connections,
    /// Create a virtual server ADDRESS:PORT.
    Create {
        vip: std::net::SocketAddr,
        #[arg(long, default_value = "tcp")]
        protocol: String,
        #[arg(long, default_value = "rr")]
        scheduler: String,
        #[arg(long, default_value = "dr")]
        forwarding: String,
    },
    /// Add a real server to virtual server VS.
    AddReal {
        vs: i64,
        address: std::net::IpAddr,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value_t = 1)]
        weight: u32,
    },
    /// Set a real server's weight to 0: existing connections finish, new ones go elsewhere.
    Drain { vs: i64, rs: i64 },
    /// Delete virtual server VS, or its real server RS.
    Delete { vs: i64, rs: Option<i64> },
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
    /// SQLite database file (created if missing).
    #[arg(long, env = "LBD_DB", default_value = "./lbd.db")]
    db: PathBuf,
    /// HTTP API listen address.
    #[arg(long, env = "LBD_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: SocketAddr,
    /// gRPC API listen address.
    #[arg(long, env = "LBD_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    grpc_listen: SocketAddr,
    /// This director's name: selects its per-node VRRP entries (default: the hostname).
    #[arg(long, env = "LBD_NODE_NAME")]
    node_name: Option<String>,
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
            let spec = lbd::api::openapi()
                .to_pretty_json()
                .context("cannot render the OpenAPI document")?;
            println!("{spec}");
            Ok(())
        }
        Command::Serve(args) => serve(args),
        Command::ImportKeepalived {
            file,
            node_name,
            dry_run,
            url,
        } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let report = rt.block_on(lbd::ctl::import_keepalived(
                &url, &file, &node_name, dry_run,
            ))?;
            print!("{report}");
            Ok(())
        }
        Command::Ctl { url, json, cmd } => {
            let stats = matches!(cmd, CtlCmd::List { stats: true });
            let out = lbd::ctl::Output { json, stats };
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let text = rt.block_on(async {
                match cmd {
                    CtlCmd::List { .. } => lbd::ctl::list(&url, &out).await,
                    CtlCmd::Status => lbd::ctl::status(&url, &out).await,
                    CtlCmd::Connections => lbd::ctl::connections(&url, &out).await,
                    CtlCmd::Create { vip, protocol, scheduler, forwarding } => {
                        let body = serde_json::json!({"address": vip.ip(), "port": vip.port(),
                            "protocol": protocol, "scheduler": scheduler, "forwarding": forwarding});
                        lbd::ctl::create(&url, body, &out).await
                    }
                    CtlCmd::AddReal { vs, address, port, weight } => {
                        let mut body = serde_json::json!({"address": address, "weight": weight});
                        if let Some(p) = port {
                            body["port"] = p.into();
                        }
                        lbd::ctl::add_real(&url, vs, body, &out).await
                    }
                    CtlCmd::Drain { vs, rs } => lbd::ctl::drain(&url, vs, rs, &out).await,
                    CtlCmd::Delete { vs, rs } => lbd::ctl::delete(&url, vs, rs, &out).await,
                }
            })?;
            print!("{text}");
            Ok(())
        }
        Command::Realserver { action, vip } => {
            let changes = if action == "up" {
                lbd::realserver::up(vip)?
            } else {
                lbd::realserver::down(vip)?
            };
            if changes.is_empty() {
                println!("nothing to change");
            }
            for c in changes {
                println!("{c}");
            }
            Ok(())
        }
        Command::ExportKeepalived { node_name, url } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            print!(
                "{}",
                rt.block_on(lbd::ctl::export_keepalived(&url, &node_name))?
            );
            Ok(())
        }
    }
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
    let have = lbd::listener::raise_fd_limit(want);
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
    let limits = lbd::server::Limits {
        http: lbd::api::limits::HttpLimits {
            body_bytes: args.max_body_bytes,
            config_body_bytes: args.max_config_body_bytes,
            import_body_bytes: args.max_import_body_bytes,
            body_memory_bytes: args.body_memory_bytes,
            body_timeout: ms(args.body_timeout_ms),
            max_requests: args.max_requests,
        },
        connections: lbd::listener::ConnLimits {
            max_connections,
            header_timeout: ms(args.header_timeout_ms),
            idle_timeout: ms(args.idle_timeout_ms),
        },
        grpc_message_bytes: args.max_grpc_message_bytes,
    };
    let cfg = lbd::server::ServerConfig {
        limits,
        db: args.db,
        http_listen: args.http_listen,
        grpc_listen: args.grpc_listen,
        node_name: args.node_name.unwrap_or_else(lbd::server::hostname),
        resync_interval: std::time::Duration::from_millis(args.resync_interval_ms.max(100)),
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
        lbd::server::run(cfg, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
