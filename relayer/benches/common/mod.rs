//! What both relayer benchmarks share: throwaway Postgres databases, medians and
//! the machine line printed beside the figures.

use std::time::Duration;

/// The server every benchmark database lives on: `DATABASE_URL` (as `make` sets
/// it), else the local default.
pub(crate) fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The URL of database `name` on the same server.
pub(crate) fn database_url(name: &str) -> String {
    let base = server_url();
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    format!("{server}/{name}")
}

/// A database created for one measurement and dropped (forcibly) with the handle.
pub(crate) struct TempDb {
    /// Its name.
    pub(crate) name: String,
    /// Its URL.
    pub(crate) url: String,
}

impl TempDb {
    /// Creates database `name` (dropping a leftover of the same name first), as a
    /// copy of `template` when given.
    pub(crate) async fn create(name: &str, template: Option<&str>) -> Self {
        let admin = sqlx::PgPool::connect(&server_url())
            .await
            .expect("postgres answers (make postgres)");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .expect("drop a leftover database");
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        sqlx::query(&sql)
            .execute(&admin)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        admin.close().await;
        Self {
            name: name.to_owned(),
            url: database_url(name),
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let url = server_url();
        let name = self.name.clone();
        // Dropping needs a runtime of its own: the caller's may be shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    assert!(n > 0, "median of nothing");
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Milliseconds, for printing.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `nproc` and the load averages, printed with the figures: the machines are shared.
pub(crate) fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("nproc {cpus}, load average {}", load.join(" "))
}
