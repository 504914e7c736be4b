//! The bench matrix in one command: every stack × strategy, each on a release binary
//! started here over fresh stores (MariaDB, PostgreSQL and Redis must run; RocketMQ
//! too for its stack: `scripts/rocketmq.sh start`), `/healthz` measured on the same
//! server just before each strategy, the invariants checked on the rows after each,
//! and the medians of all runs written as a Markdown table.
//!
//! ```sh
//! cargo build --release -p flash-sale -p flash-sale-tests
//! target/release/flash-sale-bench --matrix --runs 3 --write docs/BENCHMARKS.md
//! ```

use std::fmt::Write as _;
use std::path::Path;

use flash_sale_domain::Strategy;
use flash_sale_tests::Backend;
use flash_sale_tests::node::NodeStores;

use super::cpu::{Group, Use};
use super::{Args, Bench, Load};

/// A stack the matrix runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stack {
    Sqlite,
    MariadbRedis,
    PostgresRedis,
    MariadbRedisRocketmq,
}

impl Stack {
    fn backend(self) -> Backend {
        match self {
            Self::Sqlite => Backend::Sqlite,
            Self::MariadbRedis => Backend::MariaDbRedis,
            Self::PostgresRedis => Backend::PostgresRedis,
            Self::MariadbRedisRocketmq => Backend::MariaDbRedisRocketmq,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite (embedded)",
            Self::MariadbRedis => "MariaDB + Redis",
            Self::PostgresRedis => "PostgreSQL + Redis",
            Self::MariadbRedisRocketmq => "MariaDB + Redis + RocketMQ",
        }
    }

    /// The strategies worth measuring here (RocketMQ only changes `async`).
    fn strategies(self) -> &'static [Strategy] {
        match self {
            Self::MariadbRedisRocketmq => &[Strategy::Async],
            _ => &[Strategy::Sync, Strategy::Buckets, Strategy::Async],
        }
    }
}

/// Buckets of a `buckets` product in the matrix.
const BUCKETS: u32 = 32;
/// Units of the sell-out product: sold in a blink, the rest of the run is the storm.
const STORM_STOCK: i64 = 100;

/// One stack × strategy of one run.
#[derive(Debug, Clone, Default)]
struct Cell {
    healthz: f64,
    orders: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    shed: u64,
    persisted: Option<f64>,
    storm: f64,
    browse: f64,
    invariants: Vec<String>,
    /// Where the CPU went in `/healthz`, `order`, the sell-out run and reads.
    cpu: [Use; 4],
}

/// The scenarios of [`Cell::cpu`], in order.
const CPU_SCENARIOS: [&str; 4] = ["`/healthz`", "order", "sell-out + storm", "product read"];

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The invariants of DESIGN §3 on the product's rows; what is broken, if anything.
async fn broken_invariants(stores: &NodeStores, product: i64) -> Vec<String> {
    let s = stores.db.snapshot(product).await;
    let mut broken = Vec::new();
    if s.held() > s.stock_total {
        broken.push(format!("oversold: {} > {}", s.held(), s.stock_total));
    }
    if s.ledger_sum() != s.db_available() {
        broken.push(format!(
            "ledger {} ≠ available {}",
            s.ledger_sum(),
            s.db_available()
        ));
    }
    if s.db_available() + s.held() != s.stock_total {
        broken.push(format!(
            "units not conserved: {} + {} ≠ {}",
            s.db_available(),
            s.held(),
            s.stock_total
        ));
    }
    broken
}

/// One strategy on a running node.
async fn measure(stores: &NodeStores, load: Load) -> anyhow::Result<Cell> {
    let bench = Bench::new(load.clone(), stores.auth().clone())?;
    let healthz = bench.healthz().await;
    let (order, order_product) = bench.order().await?;
    let (storm, storm_product) = Bench::new(
        Load {
            sellout_stock: STORM_STOCK,
            ..load
        },
        stores.auth().clone(),
    )?
    .sellout()
    .await?;
    let browse = bench.browse().await?;
    let mut invariants = broken_invariants(stores, order_product).await;
    invariants.extend(broken_invariants(stores, storm_product).await);
    let base = healthz.rps();
    Ok(Cell {
        healthz: base,
        orders: order.ok as f64 / order.elapsed.as_secs_f64(),
        p50_ms: ms(order.percentile(0.5)),
        p99_ms: ms(order.percentile(0.99)),
        errors: order.errors,
        shed: order.shed,
        persisted: order.persisted,
        storm: storm.storm.unwrap_or(0.0) / base,
        browse: browse.rps() / base,
        invariants,
        cpu: [healthz.cpu, order.cpu, storm.cpu, browse.cpu],
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

/// Runs the matrix and prints (and writes, with `--write`) its table.
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let mut cells: Vec<((Stack, Strategy), Vec<Cell>)> = Vec::new();
    for run in 1..=args.runs {
        for &stack in &args.stacks {
            let mut stores = NodeStores::create(stack.backend()).await;
            stores.set("ordering.bucket_count", &BUCKETS.to_string());
            let node = stores.start().await;
            for &strategy in stack.strategies() {
                let profile = args.profile.clone().map(|dir| {
                    let prefix = format!("run{run}-{stack:?}-{}-", strategy.as_str());
                    (dir, prefix.to_lowercase())
                });
                let load = Load {
                    url: node.base_url.clone(),
                    concurrency: args.concurrency,
                    duration: args.duration,
                    strategy,
                    buckets: (strategy == Strategy::Buckets).then_some(BUCKETS),
                    sellout_stock: STORM_STOCK,
                    product: None,
                    server_pid: node.pid(),
                    profile,
                };
                let cell = measure(&stores, load).await?;
                eprintln!(
                    "run {run} {} {}: {:.0} orders/s ({:.3}× healthz {:.0}), p99 {:.0} ms{}",
                    stack.title(),
                    strategy.as_str(),
                    cell.orders,
                    cell.orders / cell.healthz,
                    cell.healthz,
                    cell.p99_ms,
                    if cell.invariants.is_empty() {
                        String::new()
                    } else {
                        format!(", BROKEN: {}", cell.invariants.join("; "))
                    }
                );
                match cells.iter_mut().find(|(k, _)| *k == (stack, strategy)) {
                    Some((_, runs)) => runs.push(cell),
                    None => cells.push(((stack, strategy), vec![cell])),
                }
            }
            node.kill().await;
        }
    }
    let table = format!("{}\n{}", table(args, &cells), cpu_table(&cells));
    println!("{table}");
    if let Some(path) = &args.write {
        write_between_markers(path, &table)?;
        eprintln!("written to {}", path.display());
    }
    anyhow::ensure!(
        cells
            .iter()
            .all(|(_, runs)| runs.iter().all(|c| c.invariants.is_empty())),
        "an invariant was broken (see above)"
    );
    Ok(())
}

fn table(args: &Args, cells: &[((Stack, Strategy), Vec<Cell>)]) -> String {
    let mut out = format!(
        "Medians of {} runs, {} connections, {} per scenario, {}.\n\n\
         | stack | strategy | orders/s | × healthz | p50 | p99 | persisted/s | \
         sold-out storm × healthz | product reads × healthz | `/healthz` req/s | \
         invariants |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        args.runs,
        args.concurrency,
        humantime::format_duration(args.duration),
        chrono::Utc::now().format("%Y-%m-%d"),
    );
    for ((stack, strategy), runs) in cells {
        let m = |f: fn(&Cell) -> f64| median(runs.iter().map(f).collect());
        let persisted = if runs.iter().all(|c| c.persisted.is_some()) {
            format!(
                "{:.0}",
                median(runs.iter().filter_map(|c| c.persisted).collect())
            )
        } else {
            "= orders/s (201 after commit)".to_owned()
        };
        let broken: Vec<&String> = runs.iter().flat_map(|c| &c.invariants).collect();
        let errors: u64 = runs.iter().map(|c| c.errors).sum();
        let mut invariants = if broken.is_empty() {
            "no oversell, ledger balanced, units conserved".to_owned()
        } else {
            format!(
                "**BROKEN**: {}",
                broken
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        if errors > 0 {
            let _ = write!(invariants, "; {errors} failed requests");
        }
        let shed = median(runs.iter().map(|c| c.shed as f64).collect());
        if shed > 0.0 {
            let _ = write!(
                invariants,
                "; {shed:.0} placements shed (503, queue behind)"
            );
        }
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.3} | {:.0} ms | {:.0} ms | {persisted} | {:.2} | {:.2} | {:.0} | {invariants} |",
            stack.title(),
            strategy.as_str(),
            m(|c| c.orders),
            m(|c| c.orders / c.healthz),
            m(|c| c.p50_ms),
            m(|c| c.p99_ms),
            m(|c| c.storm),
            m(|c| c.browse),
            m(|c| c.healthz),
        );
    }
    out
}

/// Where the CPU went, per request: the order scenario of every stack × strategy,
/// and `/healthz`, the sell-out run and reads on each stack's first strategy.
fn cpu_table(cells: &[((Stack, Strategy), Vec<Cell>)]) -> String {
    let mut out = String::from(
        "CPU per request, µs (medians; all processes on the machine, from `/proc`; \
         the load tool shares the two cores):\n\n\
         | stack | strategy | scenario | service | load tool | database | Redis | broker | \
         other | total | idle |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut seen: Vec<Stack> = Vec::new();
    for ((stack, strategy), runs) in cells {
        let first = !seen.contains(stack);
        seen.push(*stack);
        for (i, scenario) in CPU_SCENARIOS.iter().enumerate() {
            if i != 1 && !first {
                continue;
            }
            let m = |f: &dyn Fn(&Use) -> f64| median(runs.iter().map(|c| f(&c.cpu[i])).collect());
            let _ = write!(
                out,
                "| {} | {} | {scenario} |",
                stack.title(),
                if i == 1 { strategy.as_str() } else { "" }
            );
            for group in Group::ALL {
                let _ = write!(out, " {:.0} |", m(&|u| u.of(group)));
            }
            let _ = writeln!(
                out,
                " {:.0} | {:.0} | {:.0}% |",
                m(&|u| u.other_us),
                m(&Use::total_us),
                m(&|u| u.idle * 100.0)
            );
        }
    }
    out
}

const START: &str = "<!-- bench:matrix:start -->";
const END: &str = "<!-- bench:matrix:end -->";

/// Puts `table` between the markers of `path` (made, with the markers, if absent).
fn write_between_markers(path: &Path, table: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{START}\n{table}{END}");
    let text = match (text.find(START), text.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{block}{}", &text[..start], &text[end + END.len()..])
        }
        _ => format!("{text}\n{block}\n"),
    };
    std::fs::write(path, text)?;
    Ok(())
}
