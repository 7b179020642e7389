//! `template.yaml` against the code: the table the code creates, the routes it serves, and the
//! binaries it builds are the ones the deployment declares.

use registry_shared::adapters::aws::TableSchema;
use registry_shared::api::{Route, route_of};
use serde_norway::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    serde_norway::from_str(&text).expect("template.yaml parses")
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("a string, not {value:?}"))
}

fn list(value: &Value) -> &Vec<Value> {
    value.as_sequence().unwrap_or_else(|| panic!("a list, not {value:?}"))
}

#[test]
fn the_table_in_the_template_is_the_table_the_code_creates() {
    let template = template();
    let table = &template["Resources"]["RegistryTable"]["Properties"];
    assert_eq!(text(&table["BillingMode"]), "PAY_PER_REQUEST", "the code creates on-demand tables");

    let mut attributes: Vec<(&str, &str)> = list(&table["AttributeDefinitions"])
        .iter()
        .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
        .collect();
    attributes.sort();
    let mut expected: Vec<(&str, &str)> = TableSchema::key_attributes().into_iter().map(|name| (name, "S")).collect();
    expected.sort();
    assert_eq!(attributes, expected);

    let key: Vec<(&str, &str)> =
        list(&table["KeySchema"]).iter().map(|k| (text(&k["AttributeName"]), text(&k["KeyType"]))).collect();
    assert_eq!(key, [(TableSchema::PARTITION_KEY, "HASH")]);

    let indexes: Vec<(String, String, String, String)> = list(&table["GlobalSecondaryIndexes"])
        .iter()
        .map(|index| {
            let keys = list(&index["KeySchema"]);
            assert_eq!(text(&keys[0]["KeyType"]), "HASH");
            assert_eq!(text(&keys[1]["KeyType"]), "RANGE");
            (
                text(&index["IndexName"]).to_owned(),
                text(&keys[0]["AttributeName"]).to_owned(),
                text(&keys[1]["AttributeName"]).to_owned(),
                text(&index["Projection"]["ProjectionType"]).to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, String)> = TableSchema::INDEXES
        .iter()
        .map(|(name, hash, range)| (name.to_string(), hash.to_string(), range.to_string(), "ALL".to_owned()))
        .collect();
    assert_eq!(indexes, expected);
}

#[test]
fn every_function_serves_the_route_its_handler_is_for() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut seen = Vec::new();
    for (name, resource) in resources {
        if text(&resource["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        let binary = text(&resource["Metadata"]["BuildProperties"]["Binary"]);
        assert_eq!(text(&resource["Metadata"]["BuildMethod"]), "rust-cargolambda");
        let manifest = format!("{}/../functions/{binary}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        assert!(std::path::Path::new(&manifest).exists(), "{name:?}: no crate functions/{binary}");
        let events = resource["Properties"]["Events"].as_mapping().unwrap();
        for event in events.values() {
            assert_eq!(text(&event["Type"]), "HttpApi");
            let method = text(&event["Properties"]["Method"]).parse().unwrap();
            let path = text(&event["Properties"]["Path"]).replace("{connector_id}", "kafka-connector-1.0.0");
            let route = route_of(&method, &path).unwrap_or_else(|| panic!("{method} {path} is not a route"));
            let expected = match binary {
                "register" => Route::Register,
                "read" => Route::Read,
                "list" => Route::List,
                other => panic!("unknown function {other}"),
            };
            assert_eq!(route, expected, "{binary} serves {method} {path}");
            seen.push(route);
        }
    }
    seen.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(seen, [Route::List, Route::Read, Route::Register], "every route is deployed once");
}
