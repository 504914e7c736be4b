//! `flash-sale`: `serve` (default), `migrate`, `token`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use flash_sale::{Settings, launch, telemetry};
use flash_sale_adapter::auth::JwtAuth;
use flash_sale_app::Role;
use flash_sale_infrastructure::db::Database;

/// glibc's allocator took 28–36 % of the service's `perf` samples on the order paths
/// under load (docs/BENCHMARKS.md): mimalloc instead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A flash-sale (seckill) backend.
#[derive(Debug, Parser)]
#[command(name = "flash-sale", version, about)]
struct Cli {
    /// TOML configuration file (env vars FLASH_SALE__SECTION__KEY win over it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a signed JWT.
    Token {
        /// User id (1–64 characters).
        #[arg(long)]
        sub: String,
        /// Role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Lifetime, e.g. `1h`, `30m`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Buyer,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(&settings.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(&settings).await,
            Command::Token { sub, role, ttl } => token(&settings, &sub, role, ttl),
        }
    });
    // Whatever a task still holds (a blocked driver thread) does not keep the process.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&settings.server.bind)
        .await
        .with_context(|| format!("binding {}", settings.server.bind))?;
    let drain = settings.server.shutdown_timeout.0;
    let app = launch(settings, listener).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    app.shutdown(drain).await
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let db = Database::connect(
        settings.database.url.expose(),
        &flash_sale_infrastructure::db::PoolSettings {
            max_connections: 2,
            ..settings.database.pool()
        },
    )
    .await
    .context("connecting to the database")?;
    db.migrate().await.context("migrating")?;
    tracing::info!("migrations applied");
    db.close().await?;
    Ok(())
}

fn token(settings: &Settings, sub: &str, role: RoleArg, ttl: Duration) -> anyhow::Result<()> {
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Buyer => Role::Buyer,
    };
    anyhow::ensure!(
        (1..=64).contains(&sub.chars().count()),
        "--sub must be 1 to 64 characters"
    );
    let max = settings.auth.max_token_lifetime.0;
    anyhow::ensure!(
        ttl <= max,
        "--ttl {} is longer than auth.max_token_lifetime ({}): the service would refuse the token",
        humantime::format_duration(ttl),
        humantime::format_duration(max)
    );
    let auth = JwtAuth::new(&flash_sale::launch_secret(settings)).context("auth.jwt_secret")?;
    println!("{}", auth.issue(sub, role, ttl).context("signing")?);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
