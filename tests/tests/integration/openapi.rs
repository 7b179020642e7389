//! `openapi.yaml` describes exactly the routes the server has, and the server serves it.

use std::collections::BTreeSet;

use registry_shared::api::Route;
use registry_tests::{BackendKind, TestApp};
use serde_norway::Value;

/// Routes the server has beyond the API's: the document itself and the embedded store's URLs.
const SERVER_ROUTES: [(&str, &str); 3] = [
    ("GET", "/openapi.yaml"),
    ("PUT", "/files/connector-registry-uploads/{stored_name}"),
    ("GET", "/files/connector-registry/{stored_name}"),
];

#[test]
fn the_document_names_exactly_the_routes_the_server_has() {
    let document: Value = serde_norway::from_str(registry_server::OPENAPI).expect("openapi.yaml parses");
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method != "parameters" {
                documented.insert((method.to_ascii_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = Route::ALL
        .iter()
        .map(|route| (route.method().to_string(), route.path().to_owned()))
        .chain(SERVER_ROUTES.iter().map(|(method, path)| ((*method).to_owned(), (*path).to_owned())))
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn every_reference_resolves() {
    let document: Value = serde_norway::from_str(registry_server::OPENAPI).unwrap();
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let pointer = reference.strip_prefix('#').expect("local reference");
        let mut node = &document;
        for part in pointer.trim_start_matches('/').split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "{reference} resolves");
    }
}

fn collect_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                if key.as_str() == Some("$ref") {
                    found.push(child.as_str().unwrap().to_owned());
                } else {
                    collect_references(child, found);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| collect_references(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_server_serves_the_document() {
    let app = TestApp::spawn(BackendKind::Embedded).await;
    let response = app.client.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    assert_eq!(response.text().await.unwrap(), registry_server::OPENAPI);
}
