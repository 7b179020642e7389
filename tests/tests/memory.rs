//! Archives with adversarial headers, registered through the server over HTTP, must not make it
//! grow: each is refused (or read) within a small, fixed amount of memory, whatever its headers
//! claim. A test binary of its own, so that no other test's memory counts; Linux only (it reads
//! and resets the process's peak RSS in /proc).

use registry_shared::test_support::{EntryType, gzip_huge_header, gzip_many_global_headers, gzip_many_pax_paths};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use registry_tests::*;
use reqwest::StatusCode;

/// How much the server's peak RSS may grow over all the registrations below. A reader that
/// buffered the headers would grow by more than a gigabyte.
const MAX_GROWTH_BYTES: u64 = 32 << 20;

fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// Resets the peak RSS to the current RSS (Linux 4.0 and later).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_headers_keep_the_server_within_a_small_bound() {
    // The 64 MiB uncompressed limit, so that 128 MiB of global headers break it.
    let app =
        TestApp::spawn_with(BackendKind::Embedded, |config| config.limits.max_uncompressed_bytes = 64 << 20).await;
    // Built before measuring: each is a few MB at most, however much its headers claim.
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("a 1 GiB PAX record", gzip_huge_header(EntryType::XHeader, 1 << 30)),
        ("a 64 MiB GNU long name", gzip_huge_header(EntryType::GNULongName, 64 << 20)),
        ("a 64 MiB GNU long link name", gzip_huge_header(EntryType::GNULongLink, 64 << 20)),
        ("a 64 MiB PAX global header", gzip_huge_header(EntryType::XGlobalHeader, 64 << 20)),
        ("1000 PAX paths of 128 KiB", gzip_many_pax_paths(1000, 128 << 10)),
        ("128 MiB of PAX global headers", gzip_many_global_headers(2200, 60 << 10)),
        ("100,000 PAX global headers", gzip_many_global_headers(100_000, 8)),
    ];
    for (what, bytes) in &hostile {
        assert!(bytes.len() < 8 << 20, "{what}: {} bytes", bytes.len());
    }
    // One ordinary registration first, so that what every registration allocates once (the
    // database's pages, the connection) is in the baseline.
    assert_eq!(
        app.register("k.tar.gz", Package::single_tenant("kafka-connector", "1.0.0").tar_gz()).await.status,
        StatusCode::OK
    );
    let rows_before = app.all_rows().await;
    let (Some(_), true) = (status_field("VmHWM:"), reset_peak()) else {
        eprintln!("no /proc peak RSS to measure on this system: skipped");
        return;
    };
    let baseline = status_field("VmHWM:").expect("peak RSS");
    // The kernel's peak misses memory handed back without unmapping it (the server trims its
    // heap), so the RSS is sampled as well.
    let sampled = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (sampled, done) = (Arc::clone(&sampled), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                sampled.fetch_max(status_field("VmRSS:").unwrap_or(0), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let peak = || status_field("VmHWM:").unwrap_or(0).max(sampled.load(Ordering::Relaxed));

    for (what, bytes) in hostile {
        let answer = app.register("hostile.tar.gz", bytes).await;
        assert!(answer.status.is_client_error(), "{what}: {} {}", answer.status, answer.text);
        assert_eq!(answer.body["error"]["code"], "FAILED_TO_REGISTER_CONNECTOR", "{what}");
        let growth = peak().saturating_sub(baseline);
        eprintln!("{what}: {}, peak RSS growth so far {:.1} MB", answer.status, growth as f64 / 1e6);
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let growth = peak().saturating_sub(baseline);
    assert!(growth <= MAX_GROWTH_BYTES, "the peak RSS grew by {growth} bytes");
    assert_eq!(app.all_rows().await, rows_before, "nothing was written");
    assert_eq!(app.stored_archives().await.len(), 1, "no archive was stored");
}
