//! Read and list through the very handlers the functions and the server run, over the embedded
//! store holding the benchmark catalog (200 realistic rows, 80 Live), so that a regression in
//! the request path shows. Also the archive reader over one realistic package.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::Body;
use registry_shared::adapters::embedded::open_stores;
use registry_shared::api;
use registry_shared::distribution::{Limits, read_distribution};
use registry_shared::registry::{Catalog, Registrar, StagedUpload};
use registry_shared::test_support::{conformance, realistic_catalog, realistic_package};
use tempfile::NamedTempFile;

fn list_request(filters: serde_json::Value) -> lambda_http::Request {
    let body = serde_json::json!({"id": "api.connectors.list", "ver": "v2", "ts": "2024-04-10T16:10:50+05:30",
        "params": {"msgid": "4a7f14c3-d61e-4d4f-be78-181834eeff6d"}, "request": {"filters": filters}});
    http::Request::post("/v2/connectors/list")
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("request")
}

fn handlers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let data = tempfile::tempdir().expect("data folder");
    let (archives, rows) = open_stores(data.path(), "http://127.0.0.1:3000").expect("stores");
    let registrar = Registrar::new(archives, rows.clone(), Limits::default());
    runtime.block_on(async {
        for package in realistic_catalog() {
            let mut file = NamedTempFile::new_in(registrar.staging_dir()).expect("staging file");
            file.write_all(&package.tar_gz()).expect("write");
            let upload = StagedUpload { file, file_name: "connector.tar.gz".to_owned() };
            registrar.register(upload, &conformance::draft_origin()).await.expect("register");
        }
    });
    let catalog = Catalog::new(rows);

    let read =
        || http::Request::get("/v2/connectors/read/bench-07-connector-2.0.0").body(Body::Empty).expect("request");
    let answer = runtime.block_on(api::read(&catalog, read()));
    assert_eq!(answer.status(), 200, "the benchmark reads a row that exists");
    c.bench_function("read one row", |b| {
        b.iter(|| black_box(runtime.block_on(api::read(&catalog, read()))));
    });

    let live = serde_json::json!({"status": ["Live"]});
    let answer = runtime.block_on(api::list(&catalog, list_request(live.clone())));
    assert!(answer.body().len() > 80 * 3000, "80 Live rows of realistic size");
    c.bench_function("list 80 Live rows", |b| {
        b.iter(|| black_box(runtime.block_on(api::list(&catalog, list_request(live.clone())))));
    });
    c.bench_function("list all 200 rows", |b| {
        b.iter(|| black_box(runtime.block_on(api::list(&catalog, list_request(serde_json::json!({}))))));
    });

    let package = realistic_package(1, "1.0.0").tar_gz();
    c.bench_function("read one realistic package", |b| {
        b.iter(|| {
            let distribution = read_distribution(&mut std::io::Cursor::new(&package), &Limits::default());
            black_box(distribution.expect("valid"))
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = handlers
}
criterion_main!(benches);
