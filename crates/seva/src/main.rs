//! The `seva` binary: reads the configuration, opens the store, and runs a command.

mod config;
mod import;

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use seva_app::demo::DemoSize;
use seva_app::{App, SystemClock};
use seva_domain::Role;
use seva_store::{Store, StoreOptions};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides, redact_url};

#[derive(Debug, Parser)]
#[command(
    name = "seva",
    version,
    about = "Seva: self-hosted customer service for retailers"
)]
struct Cli {
    /// A TOML configuration file; flags and SEVA_* variables override it.
    #[arg(long, env = "SEVA_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The data folder: the SQLite database (when no URL is given) and, later, attachments.
    #[arg(long, env = "SEVA_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// `postgres://user@host/db` for PostgreSQL, or `sqlite://path`; default SQLite in the data folder.
    #[arg(long, env = "SEVA_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web interface and the API.
    Serve {
        /// host:port to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "SEVA_LISTEN")]
        listen: Option<String>,
        /// The address users reach Seva at, when behind a proxy (e.g. https://help.example.com).
        #[arg(long, env = "SEVA_PUBLIC_URL")]
        public_url: Option<String>,
        /// A PEM file of certificate authorities to trust for mail servers, besides the
        /// public ones (a mail server with a certificate from the shop's own CA).
        #[arg(long, env = "SEVA_MAIL_CA_FILE")]
        mail_ca_file: Option<PathBuf>,
        /// Load the demo shop first if the store has no conversations yet.
        #[arg(long)]
        demo: bool,
    },
    /// Load the demo shop (two brands, agents, ~300 customers, ~1,000 conversations).
    Demo {
        #[arg(long, default_value_t = 300)]
        customers: usize,
        #[arg(long, default_value_t = 1000)]
        conversations: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Import a shop's history from CSV: orders (one row per line item) or customers.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Administration: users and API tokens.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Orders: columns order_id, currency, total, placed_at, and customer_id, email or phone;
    /// optional number, name, status, payment_status, fulfilment_status, refunded, and per
    /// line sku, title, quantity, unit_price, line_total. Amounts in major units (520000.00).
    Orders {
        file: PathBuf,
        /// Check every row and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the refused rows, with why, to this CSV file.
        #[arg(long)]
        errors: Option<PathBuf>,
    },
    /// Customers: columns customer_id, email, phone (at least one), name, language.
    Customers {
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        errors: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a user. The password is read from standard input (one line).
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "supervisor", "agent", "readonly"])]
        role: String,
        /// Read the password from standard input; without it the user cannot sign in yet.
        #[arg(long)]
        password_stdin: bool,
        /// Interface language (en, fa, mr, hi).
        #[arg(long)]
        language: Option<String>,
    },
    /// Print a new API token for a user. Only its hash is stored: keep it safe.
    CreateToken {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "api")]
        label: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SEVA_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seva: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seva: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (listen, public_url, mail_ca_file) = match &cli.command {
        Command::Serve {
            listen,
            public_url,
            mail_ca_file,
            ..
        } => (listen.clone(), public_url.clone(), mail_ca_file.clone()),
        _ => (None, None, None),
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        public_url,
        mail_ca_file,
    };
    let config = Config::build(cli.config.as_deref(), &overrides)?;
    let app = open(&config).await?;
    match cli.command {
        Command::Serve { demo, .. } => serve(config, app, demo).await,
        Command::Demo {
            customers,
            conversations,
            seed,
        } => {
            load_demo(
                &app,
                seed,
                DemoSize {
                    customers,
                    conversations,
                },
            )
            .await?;
            Ok(())
        }
        Command::Admin { command } => admin(&app, command).await,
        Command::Import { what } => {
            let (summary, what) = match what {
                ImportCommand::Orders {
                    file,
                    dry_run,
                    errors,
                } => (
                    import::orders(&app, &file, &import::Options { dry_run, errors }).await?,
                    "orders",
                ),
                ImportCommand::Customers {
                    file,
                    dry_run,
                    errors,
                } => (
                    import::customers(&app, &file, &import::Options { dry_run, errors }).await?,
                    "customers",
                ),
            };
            if summary.refused.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} {what} refused (listed above)", summary.refused.len())
            }
        }
    }
}

async fn open(config: &Config) -> anyhow::Result<App> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data folder {}",
                config.data_dir.display()
            )
        })?;
    }
    let url = config.effective_database_url();
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the database at {}", redact_url(&url)))?;
    tracing::info!(backend = store.backend().name(), "store ready");
    // Attachments live in the data folder, also with PostgreSQL (instances side by side share
    // it, e.g. over NFS, until an object store is configured).
    let blobs = seva_app::attachments::LocalBlobs::new(config.data_dir.join("attachments"));
    let app = App::new(store, Arc::new(SystemClock)).with_blobs(Arc::new(blobs));
    Ok(match &config.mail_ca_file {
        Some(path) => app.with_mail_ca(
            std::fs::read(path)
                .with_context(|| format!("cannot read the mail CA file {}", path.display()))?,
        ),
        None => app,
    })
}

async fn load_demo(app: &App, seed: u64, size: DemoSize) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = app.load_demo(seed, size).await?;
    println!(
        "Loaded the demo shop: {} customers, {} conversations, {} messages, {} orders in {:.1}s.",
        report.customers,
        report.conversations,
        report.messages,
        report.orders,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve(config: Config, app: App, demo: bool) -> anyhow::Result<()> {
    if demo {
        let any = app
            .list_conversations(
                &seva_store::conversations::ConversationFilter::default(),
                None,
                1,
            )
            .await?;
        if any.is_empty() {
            load_demo(&app, 7, DemoSize::default()).await?;
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    if let Some(token) = app.first_admin_setup_token().await? {
        // Printed to standard output for the operator; the token is stored hashed, works
        // once and expires. A restart prints a new one and kills the old.
        println!(
            "\nNo admin exists yet. Open this one-time link to create the first admin (valid 24 hours):\n\n    {public_url}/setup?token={token}\n"
        );
    }
    let state = seva_web::AppState::new(
        app.clone(),
        seva_web::WebConfig {
            public_url: public_url.clone(),
        },
    );
    // The web state gives the app its survey writer: jobs use that app too.
    let app = state.app.clone();
    let router = seva_web::router(state);
    tracing::info!(url = %public_url, listen = %local, "Seva is serving");
    println!("Seva is serving at {public_url}");
    let (stop_jobs, jobs_stop) = tokio::sync::watch::channel(false);
    let jobs = seva_jobs::spawn_all(&app, &jobs_stop);
    let live = app.clone();
    // Peer addresses for the public pages' rate limits.
    let router = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Open event streams never finish by themselves; end them so the server can stop.
            live.close_live();
        })
        .await?;
    stop_jobs.send_replace(true);
    for job in jobs {
        if let Err(e) = job.await {
            tracing::error!(error = %e, "a background job ended badly");
        }
    }
    app.store.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM; requests in flight then finish before the server stops.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn admin(app: &App, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser {
            email,
            name,
            role,
            password_stdin,
            language,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let password = if password_stdin {
                let mut input = String::new();
                std::io::stdin()
                    .read_to_string(&mut input)
                    .context("cannot read the password from standard input")?;
                let line = input.lines().next().unwrap_or("").to_owned();
                Some(line)
            } else {
                None
            };
            let user = app
                .create_user(
                    &email,
                    &name,
                    role,
                    password.as_deref(),
                    language.as_deref(),
                )
                .await?;
            println!(
                "Created {} user {} <{}> (id {}).",
                user.role, user.name, user.email, user.id
            );
            Ok(())
        }
        AdminCommand::CreateToken { email, label } => {
            let token = app.create_token(&email, &label).await?;
            println!("{token}");
            Ok(())
        }
    }
}
