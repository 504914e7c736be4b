//! End-to-end tests: the real service in-process on port 0, driven over HTTP through
//! the `flash-sale-client` crate. Each scenario runs on SQLite; the same scenario on
//! MariaDB and PostgreSQL is `#[ignore]`d so that plain `cargo test` needs no server,
//! and runs with `scripts/test-all.sh` (`--include-ignored`).

// A scenario reads best as one story, however long.
#![allow(clippy::too_many_lines)]

mod browser;
mod buckets;
mod cache;
mod catalogue;
mod connections;
mod console;
mod errors;
mod faults;
mod grafana;
mod group_commit;
mod ops;
mod orders;
mod placements;
mod races;
mod recorded;
mod switching;
mod validation;

/// Runs each listed `async fn name(backend: Backend)` on the three databases and on
/// both databases with Redis: five tests.
#[macro_export]
macro_rules! on_every_stack {
    ($($name:ident),* $(,)?) => {
        $crate::on_every_backend!($($name),*);
        mod mariadb_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs MariaDB on 127.0.0.1:3306 and Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::MariaDbRedis).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::PostgresRedis).await;
                }
            )*
        }
    };
}

/// Runs each listed `async fn name(backend: Backend)` on the two stacks with Redis and
/// RocketMQ.
#[macro_export]
macro_rules! on_rocketmq_stacks {
    ($($name:ident),* $(,)?) => {
        mod mariadb_redis_rocketmq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs MariaDB, Redis and RocketMQ (scripts/rocketmq.sh start); run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::MariaDbRedisRocketmq).await;
                }
            )*
        }
        mod postgres_redis_rocketmq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL, Redis and RocketMQ (scripts/rocketmq.sh start); run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::PostgresRedisRocketmq).await;
                }
            )*
        }
    };
}

/// Runs each listed `async fn name(backend: Backend)` on the two stacks with Redis.
#[macro_export]
macro_rules! on_redis_stacks {
    ($($name:ident),* $(,)?) => {
        mod mariadb_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs MariaDB on 127.0.0.1:3306 and Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::MariaDbRedis).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::PostgresRedis).await;
                }
            )*
        }
    };
}

/// Runs each listed `async fn name(backend: Backend)` as three tests, one per backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::Sqlite).await;
                }
            )*
        }
        mod mariadb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs MariaDB on 127.0.0.1:3306; run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::MariaDb).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL on 127.0.0.1:5432; run scripts/test-all.sh"]
                async fn $name() {
                    super::$name(flash_sale_tests::Backend::Postgres).await;
                }
            )*
        }
    };
}
