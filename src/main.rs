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
        #[command(flatten)]
        opts: ImportFlags,
        /// The running lbd's HTTP API.
        #[arg(long, env = "LBD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
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

#[derive(clap::Args)]
struct ServeArgs {
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
            opts,
            url,
        } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let report = rt.block_on(lbd::ctl::import_keepalived(
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
                match lbd::ctl::check_keepalived(f, &node_name, opts) {
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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LBD_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cfg = lbd::server::ServerConfig {
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
