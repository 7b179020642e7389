//! Load for a running registry (`benchmarks/scripts/load` and `benchmarks/scripts/read-list` drive it):
//!
//!   load seed URL                   registers the benchmark catalog (200 rows, 80 Live)
//!   load seed-large URL GROUPS      registers GROUPS x 12 connectors in four versions each
//!                                   (GROUPS 209: 10,032 rows), 12 connectors a package
//!   load first-layout TABLE GROUPS  writes the rows seed-large registers straight into a new
//!                                   DynamoDB table of the first layout (for migrate-table)
//!   load mixed URL SECONDS READERS WRITERS
//!                                   readers read and list, writers register new versions of a
//!                                   few shared connectors, all at once; then checks the rows
//!
//! `mixed` prints one JSON summary and exits with 1 on any failed request, lost row, or a
//! connector without exactly one Live version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use registry_shared::test_support::{Package, realistic_catalog, realistic_package, realistic_tenants};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Connectors the writers share, so that their registrations race for the Live version.
const CONTESTED: usize = 5;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["seed", url] => seed(url).await,
        ["seed-large", url, groups] => match groups.parse::<usize>() {
            Ok(groups) => seed_large(url, groups).await,
            Err(e) => Err(format!("{groups}: {e}")),
        },
        ["first-layout", table, groups] => match groups.parse::<usize>() {
            Ok(groups) => first_layout(table, groups).await,
            Err(e) => Err(format!("{groups}: {e}")),
        },
        ["mixed", url, seconds, readers, writers] => {
            let parse = |s: &str| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
            match (parse(seconds), parse(readers), parse(writers)) {
                (Ok(s), Ok(r), Ok(w)) => mixed(url, Duration::from_secs(s), r as usize, w as usize).await,
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        _ => {
            Err("usage: load seed URL | load seed-large URL GROUPS | load mixed URL SECONDS READERS WRITERS".to_owned())
        }
    };
    if let Err(e) = outcome {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("HTTP client")
}

async fn register(client: &reqwest::Client, url: &str, package: &Package) -> Result<(), String> {
    let form = Form::new().part("file", Part::bytes(package.tar_gz()).file_name("connector.tar.gz"));
    let response = client.post(format!("{url}/v2/connector/register")).multipart(form).send().await;
    check(response, "register").await.map(drop)
}

async fn check(response: reqwest::Result<reqwest::Response>, what: &str) -> Result<Value, String> {
    let response = response.map_err(|e| format!("{what}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| format!("{what}: {status}, body not JSON: {e}"))?;
    if status.is_success() { Ok(body) } else { Err(format!("{what}: {status} {}", body["error"])) }
}

async fn seed(url: &str) -> Result<(), String> {
    let client = client();
    let catalog = realistic_catalog();
    for package in &catalog {
        register(&client, url, package).await?;
    }
    println!("registered {} packages", catalog.len());
    Ok(())
}

async fn seed_large(url: &str, groups: usize) -> Result<(), String> {
    let client = client();
    for version in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
        for group in 0..groups {
            register(&client, url, &realistic_tenants(group, version)).await?;
        }
    }
    println!("registered {} rows", groups * 12 * 4);
    Ok(())
}

async fn first_layout(table: &str, groups: usize) -> Result<(), String> {
    use registry_shared::distribution::{build_rows, read_distribution};
    use registry_shared::domain::{Status, Timestamp};
    let versions = ["1.0.0", "1.1.0", "1.2.0", "2.0.0"];
    let mut rows = Vec::new();
    for (v, version) in versions.iter().enumerate() {
        for group in 0..groups {
            let archive = realistic_tenants(group, version).tar_gz();
            let distribution = read_distribution(&mut std::io::Cursor::new(archive), &Default::default())
                .map_err(|e| format!("{e:?}"))?;
            let mut built = build_rows(&distribution, &format!("bench.tar_{group:06}.gz"), Timestamp::now())
                .map_err(|e| e.to_string())?;
            if v + 1 < versions.len() {
                built.iter_mut().for_each(|row| row.status = Status::Retired);
            }
            rows.extend(built);
        }
    }
    let sdk = registry_shared::adapters::aws::sdk_config().await;
    registry_shared::test_support::aws::first_layout_table(&sdk, table, &rows).await;
    println!("wrote {} rows into {table}", rows.len());
    Ok(())
}

/// Every row, paging through list.
async fn all_rows(client: &reqwest::Client, url: &str) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = json!({"filters": {}, "limit": 100});
        if let Some(cursor) = &cursor {
            request["cursor"] = json!(cursor);
        }
        let body = json!({"id": "api.connectors.list", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00",
                          "params": {"msgid": "load"}, "request": request});
        let page = check(client.post(format!("{url}/v2/connectors/list")).json(&body).send().await, "list").await?;
        rows.extend(page["result"]["data"].as_array().cloned().unwrap_or_default());
        match page["result"]["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(rows),
        }
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    first_failures: Vec<String>,
    latencies_us: Vec<u64>,
}

impl Tally {
    fn record(&mut self, started: Instant, outcome: Result<(), String>) {
        self.latencies_us.push(started.elapsed().as_micros() as u64);
        match outcome {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.failed += 1;
                if self.first_failures.len() < 5 {
                    self.first_failures.push(e);
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.first_failures.extend(other.first_failures);
        self.first_failures.truncate(5);
        self.latencies_us.extend(other.latencies_us);
    }

    fn summary(&mut self, elapsed: Duration) -> Value {
        self.latencies_us.sort_unstable();
        let at = |q: f64| {
            let n = self.latencies_us.len();
            if n == 0 { 0.0 } else { self.latencies_us[((n - 1) as f64 * q) as usize] as f64 / 1000.0 }
        };
        json!({
            "ok": self.ok, "failed": self.failed, "per_second": (self.ok as f64 / elapsed.as_secs_f64()).round(),
            "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0), "first_failures": self.first_failures,
        })
    }
}

async fn mixed(url: &str, duration: Duration, readers: usize, writers: usize) -> Result<(), String> {
    let client = client();
    let before = all_rows(&client, url).await?;
    let readable: Arc<Vec<String>> = Arc::new(
        before.iter().filter(|r| r["status"] == "Live").filter_map(|r| r["id"].as_str().map(str::to_owned)).collect(),
    );
    if readable.is_empty() {
        return Err("no Live rows to read: run `load seed` first".to_owned());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let registered = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();

    let reader_tasks: Vec<_> = (0..readers)
        .map(|n| {
            let (client, url, readable, stop) = (client.clone(), url.to_owned(), readable.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let outcome = if i % 4 == 3 {
                        let body = json!({"id": "api.connectors.list", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00",
                            "params": {"msgid": "load"}, "request": {"filters": {"status": ["Live"]}}});
                        check(client.post(format!("{url}/v2/connectors/list")).json(&body).send().await, "list").await
                    } else {
                        let id = &readable[i % readable.len()];
                        check(client.get(format!("{url}/v2/connectors/read/{id}")).send().await, "read").await
                    };
                    tally.record(t, outcome.map(drop));
                    i += 7;
                }
                tally
            })
        })
        .collect();

    let writer_tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (client, url, stop, registered) = (client.clone(), url.to_owned(), stop.clone(), registered.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let connector = 90 + w % CONTESTED;
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    let version = format!("3.{round}.{w}");
                    let package = realistic_package(connector, &version);
                    let t = Instant::now();
                    let outcome = register(&client, &url, &package).await;
                    if outcome.is_ok() {
                        registered.lock().await.push(format!("bench-{connector:02}-connector-{version}"));
                    }
                    tally.record(t, outcome);
                    round += 1;
                }
                tally
            })
        })
        .collect();

    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let (mut reads, mut writes) = (Tally::default(), Tally::default());
    for task in reader_tasks {
        reads.merge(task.await.map_err(|e| e.to_string())?);
    }
    for task in writer_tasks {
        writes.merge(task.await.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed();

    // What the registry holds now: every row from before, every registration that succeeded,
    // and exactly one Live version of each connector.
    let after = all_rows(&client, url).await?;
    let ids: BTreeSet<&str> = after.iter().filter_map(|r| r["id"].as_str()).collect();
    let registered = registered.lock().await;
    let lost: Vec<&str> = before
        .iter()
        .filter_map(|r| r["id"].as_str())
        .chain(registered.iter().map(String::as_str))
        .filter(|id| !ids.contains(id))
        .collect();
    let mut live_per_connector: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &after {
        let connector = row["connector_id"].as_str().unwrap_or_default();
        *live_per_connector.entry(connector).or_default() += usize::from(row["status"] == "Live");
    }
    let not_one_live: Vec<_> = live_per_connector.iter().filter(|(_, n)| **n != 1).collect();

    let summary = json!({
        "seconds": elapsed.as_secs_f64(), "readers": readers, "writers": writers,
        "reads": reads.summary(elapsed), "registrations": writes.summary(elapsed),
        "rows_before": before.len(), "rows_after": after.len(), "lost_rows": lost,
        "connectors": live_per_connector.len(), "connectors_without_exactly_one_live": not_one_live,
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    if reads.failed + writes.failed > 0 || !lost.is_empty() || !not_one_live.is_empty() {
        return Err("the registry failed under load (see the summary)".to_owned());
    }
    Ok(())
}
