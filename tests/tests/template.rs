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
    assert_eq!(key, [(TableSchema::PARTITION_KEY, "HASH"), (TableSchema::SORT_KEY, "RANGE")]);
    assert!(table["GlobalSecondaryIndexes"].is_null(), "no index: lists read the base table, consistently");

    // A new key schema replaces the table: that deploys as a stack update only without a fixed
    // name, and must keep the old table (and its data) for the copy.
    assert!(table["TableName"].is_null());
    let resource = &template["Resources"]["RegistryTable"];
    assert_eq!(text(&resource["DeletionPolicy"]), "Retain");
    assert_eq!(text(&resource["UpdateReplacePolicy"]), "Retain");
}

/// The string inside a short-form intrinsic (`!Sub "..."`, `!GetAtt X.Arn`).
fn intrinsic<'a>(value: &'a Value, tag: &str) -> &'a str {
    match value {
        Value::Tagged(tagged) if tagged.tag == tag => text(&tagged.value),
        other => panic!("expected {tag}, found {other:?}"),
    }
}

#[test]
fn every_route_reaches_the_function_of_its_handler_behind_the_authorizer_of_the_auth_mode() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let resource = |name: &str| &template["Resources"][name];
    let mut seen = Vec::new();
    for (name, route) in resources {
        if text(&route["Type"]) != "AWS::ApiGatewayV2::Route" {
            continue;
        }
        let properties = &route["Properties"];
        let (method, path) = text(&properties["RouteKey"]).split_once(' ').unwrap();
        let integration = intrinsic(&properties["Target"], "!Sub").strip_prefix("integrations/${").unwrap();
        let integration = resource(integration.strip_suffix('}').unwrap());
        assert_eq!(text(&integration["Properties"]["PayloadFormatVersion"]), "2.0");
        let function = intrinsic(&integration["Properties"]["IntegrationUri"], "!GetAtt").strip_suffix(".Arn").unwrap();
        let function = resource(function);
        assert_eq!(text(&function["Metadata"]["BuildMethod"]), "rust-cargolambda");
        let binary = text(&function["Metadata"]["BuildProperties"]["Binary"]);
        let manifest = format!("{}/../functions/{binary}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        assert!(std::path::Path::new(&manifest).exists(), "{name:?}: no crate functions/{binary}");

        let path = path.replace("{connector_id}", "kafka-connector-1.0.0");
        let route_found = route_of(&method.parse().unwrap(), &path).unwrap_or_else(|| panic!("{method} {path}"));
        let expected = match binary {
            "register" => Route::Register,
            "read" => Route::Read,
            "list" => Route::List,
            "generate-url" => Route::GenerateUrl,
            "url-access" => Route::UrlAccess,
            other => panic!("unknown function {other}"),
        };
        assert_eq!(route_found, expected, "{binary} serves {method} {path}");

        // The system route has no users: IAM authorization, whatever AuthMode is.
        if route_found == Route::UrlAccess {
            assert!(route.get("Condition").is_none(), "{name:?}");
            assert_eq!(text(&properties["AuthorizationType"]), "AWS_IAM", "{name:?}");
            seen.push((route_found, "AWS_IAM".to_owned()));
            continue;
        }

        // Each route is there behind each authorizer and open, one of them by AuthMode.
        let (authorization, authorizer) = match text(&route["Condition"]) {
            "JwtAuth" => ("JWT", Some("JwtAuthorizer")),
            "TokenAuth" => ("CUSTOM", Some("TokenAuthorizer")),
            "AuthDisabled" => ("NONE", None),
            other => panic!("{name:?}: a route must depend on AuthMode, not {other:?}"),
        };
        assert_eq!(text(&properties["AuthorizationType"]), authorization, "{name:?}");
        match authorizer {
            Some(authorizer) => assert_eq!(intrinsic(&properties["AuthorizerId"], "!Ref"), authorizer, "{name:?}"),
            None => assert!(properties.get("AuthorizerId").is_none(), "{name:?}"),
        }
        let guarded = authorization.to_owned();
        seen.push((route_found, guarded));
    }
    seen.sort_by_key(|r| format!("{r:?}"));
    let mut once_each_way: Vec<(Route, String)> = [Route::GenerateUrl, Route::List, Route::Read, Route::Register]
        .into_iter()
        .flat_map(|r| ["JWT", "CUSTOM", "NONE"].map(|way| (r, way.to_owned())))
        .collect();
    once_each_way.push((Route::UrlAccess, "AWS_IAM".to_owned()));
    once_each_way.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(seen, once_each_way, "every route is deployed once behind each authorizer and once open");
}

#[test]
fn the_token_authorizer_is_this_workspace_s_function_with_no_permissions_and_cached_answers() {
    let template = template();
    let authorizer = &template["Resources"]["TokenAuthorizer"];
    assert_eq!(text(&authorizer["Condition"]), "TokenAuth");
    let properties = &authorizer["Properties"];
    assert_eq!(text(&properties["AuthorizerType"]), "REQUEST");
    assert_eq!(text(&properties["AuthorizerPayloadFormatVersion"]), "2.0");
    assert_eq!(properties["EnableSimpleResponses"].as_bool(), Some(true), "the answer shape the function gives");
    assert!(properties["AuthorizerResultTtlInSeconds"].as_u64().is_some_and(|ttl| ttl > 0 && ttl <= 300));
    assert!(intrinsic(&properties["AuthorizerUri"], "!Sub").contains("${AuthorizerFunction.Arn}"));
    let function = &template["Resources"]["AuthorizerFunction"];
    assert_eq!(text(&function["Condition"]), "TokenAuth");
    let binary = text(&function["Metadata"]["BuildProperties"]["Binary"]);
    let manifest = format!("{}/../functions/{binary}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    assert!(std::path::Path::new(&manifest).exists(), "no crate functions/{binary}");
    assert!(function["Properties"].get("Policies").is_none(), "least privilege: no AWS permission at all");
    let permission = &template["Resources"]["AuthorizerInvokePermission"];
    assert_eq!(text(&permission["Properties"]["Principal"]), "apigateway.amazonaws.com");
    assert!(intrinsic(&permission["Properties"]["SourceArn"], "!Sub").ends_with("/authorizers/${TokenAuthorizer}"));
}
