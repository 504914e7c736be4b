//! `flash-sale-bench`: the load tool.
//!
//! Runs scenarios one after another against one running server and reports each as
//! requests per second and latency percentiles, and as a ratio to `/healthz` measured
//! on the same server in the same run — on a shared, noisy machine the ratio is the
//! figure to compare, not the absolute rate.
//!
//! Scenarios: `healthz` (the baseline: routing, no work), `browse` (a buyer reading a
//! product through the catalogue cache), `order` (each request a new buyer placing one
//! order of a product with plenty of stock: accepted placements per second), and
//! `sellout` (thousands of buyers racing for a small stock: how fast it sells out and
//! how fast the sold-out storm is answered afterwards).
//!
//! ```sh
//! cargo run --release &                       # the server, embedded
//! cargo run --release -p flash-sale-tests --bin flash-sale-bench -- --duration 10s
//! ```
//!
//! `--matrix` runs every stack × strategy itself instead (see [`matrix`]): it starts
//! the release binary on each stack, measures, checks the invariants on the rows, and
//! writes the medians to `docs/BENCHMARKS.md`.
#![forbid(unsafe_code)]
#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rates and percentiles of request counts"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use flash_sale_adapter::auth::{DEVELOPMENT_SECRET, JwtAuth};
use flash_sale_app::Role;
use flash_sale_client::{
    AdminOrderListQry, EventCreateCmd, FlashSaleClient, OrderPlaceCmd, ProductCreateCmd,
};
use flash_sale_domain::Strategy;
use futures::StreamExt;
use secrecy::SecretString;

use crate::buyers::Buyers;

mod buyers;
mod cpu;
mod matrix;
mod profile;

/// The load tool shares the cores with what it measures: the less it spends, the
/// truer the figures (see [`cpu`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load tool for a running flash-sale server.
#[derive(Debug, Parser)]
#[command(name = "flash-sale-bench", version, about)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's `auth.jwt_secret` (default: the development secret).
    #[arg(long, env = "FLASH_SALE__AUTH__JWT_SECRET")]
    secret: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// How long each timed scenario runs.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Scenarios to run, comma-separated: healthz, browse, order, sellout.
    #[arg(
        long,
        default_value = "healthz,browse,order,sellout",
        value_delimiter = ','
    )]
    scenarios: Vec<String>,
    /// The events' ordering strategy (`sync`, `async`, `buckets`).
    #[arg(long, default_value = "sync", value_parser = clap::value_parser!(Strategy))]
    strategy: Strategy,
    /// Buckets per product (default: the server's choice).
    #[arg(long)]
    buckets: Option<u32>,
    /// Units of the `sellout` product.
    #[arg(long, default_value_t = 5_000)]
    sellout_stock: i64,
    /// Order an existing product (one made in the console, say) in the `order` and
    /// `sellout` scenarios instead of creating one: `sellout` then sells what it has
    /// left, and `--strategy`, `--buckets` and `--sellout-stock` do not apply.
    #[arg(long)]
    product: Option<i64>,
    /// The server's process id: with it each scenario tells where the CPU went.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Record a `perf` profile of the server (needs its process id) during each
    /// timed scenario into this directory, with a summary of each.
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
    /// Print one JSON object per scenario instead of a table.
    #[arg(long)]
    json: bool,
    /// Run the whole matrix (every stack × strategy, servers started here) instead of
    /// scenarios against `--url`.
    #[arg(long)]
    matrix: bool,
    /// The matrix's stacks, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sqlite,mariadb-redis,postgres-redis,mariadb-redis-rocketmq"
    )]
    stacks: Vec<matrix::Stack>,
    /// Runs of the matrix (each row reports the medians).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the matrix's table goes (between its markers; the file is made if absent).
    #[arg(long)]
    write: Option<std::path::PathBuf>,
}

/// Orders of one unit of a product, each by a new buyer: made before the clock starts
/// (the body serialised once, the buyers' tokens signed), sent while it runs.
struct OneUnitOrders {
    url: String,
    body: bytes::Bytes,
    buyers: Buyers,
}

/// How one server is loaded: where, how hard, how long, and how its products sell.
#[derive(Debug, Clone)]
struct Load {
    url: String,
    concurrency: usize,
    duration: Duration,
    strategy: Strategy,
    buckets: Option<u32>,
    sellout_stock: i64,
    /// An existing product to order, instead of one made per scenario.
    product: Option<i64>,
    /// The server's process id, when known (CPU accounting, profiles).
    server_pid: Option<u32>,
    /// Where profiles go, and the prefix of their names.
    profile: Option<(std::path::PathBuf, String)>,
}

/// What one scenario measured.
#[derive(Debug, Default)]
struct Report {
    name: String,
    requests: u64,
    ok: u64,
    rejected: u64,
    /// 503s: refused with nothing taken (an async queue that is behind sheds load).
    shed: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    note: String,
    /// Orders persisted per second (async).
    persisted: Option<f64>,
    /// Sold-out answers per second, over the whole sell-out run.
    storm: Option<f64>,
    /// Where the machine's CPU went.
    cpu: cpu::Use,
}

impl Report {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_micros(u64::from(self.latencies_us[index]))
    }
}

/// What one request came to.
enum Outcome {
    Ok,
    Rejected,
    Shed,
    Error,
}

struct Bench {
    load: Load,
    http: reqwest::Client,
    auth: JwtAuth,
    admin: FlashSaleClient,
}

impl Bench {
    /// A load tool for `load`'s server, signing tokens with `auth`.
    fn new(load: Load, auth: JwtAuth) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(load.concurrency)
            .timeout(Duration::from_secs(30))
            .build()?;
        let admin = FlashSaleClient::with_http(http.clone(), load.url.clone())
            .with_token(auth.issue("bench-admin", Role::Admin, Duration::from_hours(1))?);
        Ok(Self {
            load,
            http,
            auth,
            admin,
        })
    }

    /// Runs the scenario `name`.
    async fn scenario(&self, name: &str) -> anyhow::Result<Report> {
        Ok(match name.trim() {
            "healthz" => self.healthz().await,
            "browse" => self.browse().await?,
            "order" => self.order().await?.0,
            "sellout" => self.sellout().await?.0,
            other => anyhow::bail!("unknown scenario {other}"),
        })
    }

    fn buyer_token(&self, user: &str) -> String {
        self.auth
            .issue(user, Role::Buyer, Duration::from_hours(1))
            .expect("signs")
    }

    /// Runs `request(n)` with `concurrency` in flight for `duration`.
    async fn timed<F, Fut>(&self, name: &str, request: F) -> Report
    where
        F: Fn(u64) -> Fut + Sync,
        Fut: Future<Output = Outcome>,
    {
        let recording = match (&self.load.profile, self.load.server_pid) {
            (Some((dir, prefix)), Some(pid)) => Some(profile::start(
                dir,
                &format!("{prefix}{name}"),
                pid,
                self.load.duration,
            )),
            _ => None,
        };
        let before = cpu::Sample::take(self.load.server_pid);
        let deadline = Instant::now() + self.load.duration;
        let counter = AtomicU64::new(0);
        let started = Instant::now();
        let results = futures::stream::iter(0..self.load.concurrency)
            .map(|_| async {
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let outcome = request(n).await;
                    mine.push((
                        u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX),
                        outcome,
                    ));
                }
                mine
            })
            .buffer_unordered(self.load.concurrency)
            .collect::<Vec<_>>()
            .await;
        let elapsed = started.elapsed();
        let after = cpu::Sample::take(self.load.server_pid);
        let requests = results.iter().map(Vec::len).sum::<usize>() as u64;
        let mut report = Report {
            name: name.to_owned(),
            elapsed,
            cpu: cpu::Use::between(&before, &after, requests),
            ..Report::default()
        };
        if let Some(recording) = recording {
            match async { recording?.finish().await }.await {
                Ok(summary) => eprintln!("profile of {name}: {}", summary.display()),
                Err(e) => eprintln!("no profile of {name}: {e:#}"),
            }
        }
        for (latency, outcome) in results.into_iter().flatten() {
            report.requests += 1;
            report.latencies_us.push(latency);
            match outcome {
                Outcome::Ok => report.ok += 1,
                Outcome::Rejected => report.rejected += 1,
                Outcome::Shed => report.shed += 1,
                Outcome::Error => report.errors += 1,
            }
        }
        report.latencies_us.sort_unstable();
        report
    }

    async fn product(&self, stock: i64, tag: &str) -> anyhow::Result<i64> {
        let now = chrono::Utc::now();
        let strategy = flash_sale_app::assembler::strategy_dto(self.load.strategy);
        let event = self
            .admin
            .create_event(&EventCreateCmd {
                title: format!("bench {tag} {}", now.timestamp_millis()),
                description: None,
                starts_at: now - chrono::Duration::minutes(1),
                ends_at: now + chrono::Duration::days(1),
                strategy: Some(strategy),
            })
            .await
            .context("creating the event (is the secret right?)")?;
        let product = self
            .admin
            .create_product(
                event.id,
                &ProductCreateCmd {
                    title: format!("bench {tag}"),
                    description: None,
                    original_price: 1_000,
                    flash_price: 500,
                    stock,
                    per_user_limit: Some(1),
                    bucket_count: self.load.buckets,
                },
            )
            .await?;
        self.admin.event_online(event.id).await?;
        Ok(product.id)
    }

    /// GETs `url` (with `token`, if any) for the scenario's duration.
    async fn get_ok(&self, name: &str, url: &str, token: Option<&str>) -> Report {
        self.timed(name, |_| {
            let mut request = self.http.get(url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        Outcome::Ok
                    }
                    _ => Outcome::Error,
                }
            }
        })
        .await
    }

    async fn healthz(&self) -> Report {
        self.get_ok("healthz", &format!("{}/healthz", self.load.url), None)
            .await
    }

    async fn browse(&self) -> anyhow::Result<Report> {
        let id = self.product(1_000, "browse").await?;
        let url = format!("{}/api/v1/products/{id}", self.load.url);
        let token = self.buyer_token("browser");
        Ok(self.get_ok("browse", &url, Some(&token)).await)
    }

    /// Orders of one unit of product `id`, each by a new buyer.
    fn one_unit_orders(&self, prefix: &str, id: i64) -> OneUnitOrders {
        let body = serde_json::to_vec(&OrderPlaceCmd {
            product_id: id,
            quantity: 1,
        })
        .expect("serialises");
        OneUnitOrders {
            url: format!("{}/api/v1/orders", self.load.url),
            body: body.into(),
            buyers: tokio::task::block_in_place(|| {
                Buyers::sign(&self.auth, prefix, self.load.duration)
            }),
        }
    }

    /// The `n`-th of `orders`.
    fn one_unit(&self, orders: &OneUnitOrders, n: u64) -> reqwest::RequestBuilder {
        self.http
            .post(&orders.url)
            .bearer_auth(orders.buyers.token(n))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(orders.body.clone())
    }

    /// The `order` scenario; with it the product's id.
    async fn order(&self) -> anyhow::Result<(Report, i64)> {
        let id = match self.load.product {
            Some(id) => id,
            None => self.product(10_000_000, "order").await?,
        };
        let run = chrono::Utc::now().timestamp_millis();
        let orders = self.one_unit_orders(&format!("o{run}"), id);
        let mut report = self
            .timed("order", |n| {
                let request = self.one_unit(&orders, n);
                async move { classify(request.send().await).await }
            })
            .await;
        report.note = "one new buyer per request, plenty of stock".into();
        if self.load.strategy.queues_orders() {
            let (note, rate) = self.persisted(id, report.ok, report.elapsed).await?;
            report.note = note;
            report.persisted = Some(rate);
        }
        Ok((report, id))
    }

    /// Waits until the consumer has written every accepted placement of product `id`
    /// and tells the rate at which orders were persisted (from the scenario's start).
    async fn persisted(
        &self,
        id: i64,
        accepted: u64,
        run: Duration,
    ) -> anyhow::Result<(String, f64)> {
        let started = Instant::now();
        loop {
            let page = self
                .admin
                .admin_orders(&AdminOrderListQry {
                    product_id: Some(id),
                    page_size: Some(1),
                    ..AdminOrderListQry::default()
                })
                .await?;
            let behind = started.elapsed();
            if page.total >= accepted || behind > Duration::from_mins(2) {
                let rate = page.total as f64 / (run + behind).as_secs_f64();
                return Ok((
                    format!(
                        "{} orders persisted {:.1}s after the run: {rate:.0} orders/s",
                        page.total,
                        behind.as_secs_f64(),
                    ),
                    rate,
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `sellout` scenario; with it the product's id.
    async fn sellout(&self) -> anyhow::Result<(Report, i64)> {
        let (stock, id) = match self.load.product {
            Some(id) => (self.admin.inventory(id).await?.cache_available, id),
            None => {
                let stock = self.load.sellout_stock;
                (stock, self.product(stock, "sellout").await?)
            }
        };
        let run = chrono::Utc::now().timestamp_millis();
        let orders = self.one_unit_orders(&format!("s{run}"), id);
        let sold = Arc::new(AtomicU64::new(0));
        let sold_out_at = Arc::new(std::sync::Mutex::new(None::<Duration>));
        let started = Instant::now();
        let mut report = self
            .timed("sellout", |n| {
                let request = self.one_unit(&orders, n);
                let (sold, sold_out_at) = (sold.clone(), sold_out_at.clone());
                async move {
                    let outcome = classify(request.send().await).await;
                    if matches!(outcome, Outcome::Ok)
                        && sold.fetch_add(1, Ordering::Relaxed) + 1 == stock as u64
                    {
                        *sold_out_at.lock().expect("lock") = Some(started.elapsed());
                    }
                    outcome
                }
            })
            .await;
        let sold = sold.load(Ordering::Relaxed);
        let at = *sold_out_at.lock().expect("lock");
        report.note = match at {
            Some(at) => format!(
                "{sold}/{stock} sold in {:.2}s; then {} sold-out answers",
                at.as_secs_f64(),
                report.rejected
            ),
            None => format!("{sold}/{stock} sold; not sold out within the run"),
        };
        anyhow::ensure!(sold <= stock as u64, "OVERSOLD: {sold} > {stock}");
        report.storm = Some(report.rejected as f64 / report.elapsed.as_secs_f64().max(1e-9));
        Ok((report, id))
    }
}

async fn classify(response: reqwest::Result<reqwest::Response>) -> Outcome {
    match response {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            match status {
                201 | 202 => Outcome::Ok,
                409 | 429 => Outcome::Rejected,
                503 => Outcome::Shed,
                _ => Outcome::Error,
            }
        }
        Err(_) => Outcome::Error,
    }
}

fn print_table(reports: &[Report]) {
    let baseline = reports
        .iter()
        .find(|r| r.name == "healthz")
        .map(Report::rps);
    println!(
        "{:<9} {:>9} {:>10} {:>8} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7}  note",
        "scenario", "requests", "req/s", "vs /hz", "p50", "p99", "ok", "409/429", "503", "errors"
    );
    for r in reports {
        let ratio = baseline.map_or_else(|| "-".to_owned(), |b| format!("{:.2}", r.rps() / b));
        println!(
            "{:<9} {:>9} {:>10.0} {:>8} {:>9.2?} {:>9.2?} {:>8} {:>8} {:>7} {:>7}  {}",
            r.name,
            r.requests,
            r.rps(),
            ratio,
            r.percentile(0.5),
            r.percentile(0.99),
            r.ok,
            r.rejected,
            r.shed,
            r.errors,
            r.note
        );
    }
}

fn print_json(reports: &[Report]) {
    let baseline = reports
        .iter()
        .find(|r| r.name == "healthz")
        .map(Report::rps);
    for r in reports {
        println!(
            "{}",
            serde_json::json!({
                "scenario": r.name,
                "requests": r.requests,
                "rps": r.rps(),
                "ratio_to_healthz": baseline.map(|b| r.rps() / b),
                "p50_ms": r.percentile(0.5).as_secs_f64() * 1e3,
                "p99_ms": r.percentile(0.99).as_secs_f64() * 1e3,
                "ok": r.ok,
                "rejected": r.rejected,
                "shed": r.shed,
                "errors": r.errors,
                "note": r.note,
                "cpu_us_per_request": cpu::Group::ALL
                    .iter()
                    .map(|&g| (g.title(), r.cpu.of(g)))
                    .chain([("other", r.cpu.other_us)])
                    .collect::<std::collections::BTreeMap<_, _>>(),
                "idle": r.cpu.idle,
            })
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.matrix {
        return matrix::run(&args).await;
    }
    let secret = SecretString::from(
        args.secret
            .clone()
            .unwrap_or_else(|| DEVELOPMENT_SECRET.to_owned()),
    );
    let load = Load {
        url: args.url.clone(),
        concurrency: args.concurrency,
        duration: args.duration,
        strategy: args.strategy,
        buckets: args.buckets,
        sellout_stock: args.sellout_stock,
        product: args.product,
        server_pid: args.server_pid,
        profile: args.profile.clone().map(|dir| (dir, String::new())),
    };
    let bench = Bench::new(load, JwtAuth::new(&secret)?)?;
    let mut reports = Vec::new();
    for scenario in &args.scenarios {
        let report = bench.scenario(scenario).await?;
        eprintln!(
            "{}: {:.0} req/s; {}",
            report.name,
            report.rps(),
            report.cpu.describe()
        );
        reports.push(report);
    }
    if args.json {
        print_json(&reports);
    } else {
        print_table(&reports);
    }
    Ok(())
}
