//! Lists of 10,000 rows (2,500 connectors with four versions each) through the list function's
//! handler, as Lambda runs it: an unpaged list is far over a synchronous Lambda response's 6 MB,
//! so the function answers gzip when the client accepts it, and otherwise the first rows that fit
//! with a cursor; following the cursors yields every row once.

use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use registry_shared::adapters::embedded::open_stores;
use registry_shared::api::{self, LAMBDA_RESPONSE_BYTES, Route};
use registry_shared::auth::Authenticator;
use registry_shared::domain::Status;
use registry_shared::domain::Versions;
use registry_shared::lambda;
use registry_shared::registry::{Catalog, RowStore};
use registry_shared::test_support::conformance::{self, at, row};
use serde_json::{Value, json};

const CONNECTORS: usize = 2500;
const VERSIONS: [&str; 4] = ["1.0.0", "1.1.0", "1.2.0", "2.0.0"];
/// A synchronous Lambda response, whole, as the runtime posts it.
const LAMBDA_LIMIT: usize = 6 * 1024 * 1024;

async fn ten_thousand_rows(rows: &dyn RowStore) {
    // A ~3 KB icon per connector, different for each, as real icons are.
    let icon = |c: usize| {
        let svg: String =
            (0..40).map(|i| format!("<path d=\"M{c} {i}L{} {}Z\"/>", c * 7 + i, c * 13 + i * 3)).collect();
        format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg))
    };
    for (v, version) in VERSIONS.iter().enumerate() {
        let now = at(v as i64);
        let all: Vec<_> = (0..CONNECTORS)
            .map(|c| {
                let mut r = row(&format!("conn-{c:04}"), version, if c % 2 == 0 { "stream" } else { "batch" }, now);
                r.iconurl = Some(icon(c));
                r
            })
            .collect();
        for package in all.chunks(12) {
            rows.commit_registration(package, now, &conformance::draft(), Versions::Immutable).await.unwrap();
        }
    }
}

fn list_event(request: Value, gzip: bool) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/list-v2.json")).expect("the list fixture");
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    body["request"] = request;
    event["body"] = json!(body.to_string());
    event["requestContext"]["authorizer"]["jwt"]["claims"]["roles"] = json!("[viewer]");
    if gzip {
        event["headers"]["accept-encoding"] = json!("gzip, deflate, br");
    }
    event
}

async fn invoke(catalog: &Arc<Catalog>, event: Value) -> (Value, usize, bool) {
    let catalog = catalog.clone();
    let response = lambda::invoke(
        Route::List,
        Authenticator::GatewayClaims(Default::default()),
        move |request| {
            let catalog = catalog.clone();
            async move { api::list_within(&catalog, request, Some(LAMBDA_RESPONSE_BYTES)).await }
        },
        event,
    )
    .await;
    let sent = serde_json::to_vec(&response).unwrap().len();
    assert_eq!(response["statusCode"], 200, "{}", &response.to_string()[..300.min(response.to_string().len())]);
    let body = response["body"].as_str().unwrap();
    let gzipped = response["isBase64Encoded"] == true;
    let text = if gzipped {
        assert_eq!(response["headers"]["content-encoding"], "gzip");
        let compressed = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut text).unwrap();
        text
    } else {
        body.to_owned()
    };
    (serde_json::from_str(&text).unwrap(), sent, gzipped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaged_lists_of_ten_thousand_rows_fit_a_lambda_response() {
    let data = tempfile::tempdir().unwrap();
    let (_, rows) = open_stores(data.path(), "http://127.0.0.1:3000").unwrap();
    ten_thousand_rows(&*rows).await;
    let catalog = Arc::new(Catalog::new(rows));

    // Without gzip: the first rows that fit, then the rest through the cursors.
    let mut seen: Vec<String> = Vec::new();
    let mut request = json!({});
    let mut answers = 0;
    loop {
        let (answer, sent, gzipped) = invoke(&catalog, list_event(request.clone(), false)).await;
        assert!(!gzipped);
        assert!(sent <= LAMBDA_LIMIT, "{sent} bytes");
        answers += 1;
        let data = answer["result"]["data"].as_array().unwrap();
        assert_eq!(answer["result"]["count"], data.len());
        seen.extend(data.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match answer["result"]["cursor"].as_str() {
            Some(cursor) => request = json!({"cursor": cursor}),
            None => break,
        }
    }
    assert!(answers > 1, "10,000 rows are over one Lambda response");
    let mut expected: Vec<String> =
        (0..CONNECTORS).flat_map(|c| VERSIONS.iter().map(move |v| format!("conn-{c:04}-{v}"))).collect();
    expected.sort();
    assert_eq!(seen, expected, "every row once, in id order");

    // With gzip: as many rows as fit compressed, and the same rows in all.
    let (answer, sent, gzipped) = invoke(&catalog, list_event(json!({}), true)).await;
    assert!(gzipped && sent <= LAMBDA_LIMIT, "{sent} bytes");
    let count = answer["result"]["count"].as_u64().unwrap() as usize;
    assert!(count > seen.len() / answers, "compression carries more rows than plain JSON");
    let data = answer["result"]["data"].as_array().unwrap();
    assert_eq!(data[0]["id"], expected[0].as_str());

    // A filtered page is an ordinary answer.
    let live = json!({"filters": {"status": ["Live"]}, "limit": 100});
    let (answer, _, gzipped) = invoke(&catalog, list_event(live, true)).await;
    assert!(!gzipped, "small answers are not compressed");
    assert_eq!(answer["result"]["count"], 100);
    assert!(answer["result"]["data"].as_array().unwrap().iter().all(|r| r["status"] == Status::Live.as_str()));
}
