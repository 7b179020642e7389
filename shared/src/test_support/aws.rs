//! Access to the local S3/DynamoDB stand-in the test command starts (`scripts/test`).

use aws_config::SdkConfig;

/// The SDK configuration for the stand-in, through the same `sdk_config` production uses (the
/// test command exports `AWS_ENDPOINT_URL` and dummy credentials). Without a stand-in the AWS
/// tests fail loudly, unless `REGISTRY_SKIP_AWS_TESTS=1` says to skip them.
pub async fn stand_in() -> Option<SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        if std::env::var("REGISTRY_SKIP_AWS_TESTS").as_deref() == Ok("1") {
            eprintln!("AWS tests skipped: REGISTRY_SKIP_AWS_TESTS=1");
            return None;
        }
        panic!(
            "the AWS tests need the local S3/DynamoDB stand-in: run them with scripts/test, \
             or set REGISTRY_SKIP_AWS_TESTS=1 to skip them"
        );
    }
    // Without credentials here the SDK would look for them off this machine (instance metadata).
    assert!(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        "the AWS tests need the stand-in's dummy credentials: run them with scripts/test"
    );
    Some(crate::adapters::aws::sdk_config().await)
}

/// A name no other test uses, for a table or a bucket.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// An SDK configuration with the production settings, pointed at `endpoint` with dummy
/// credentials: for tests against endpoints that misbehave on purpose.
pub async fn config_for_endpoint(endpoint: &str) -> SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests");
    crate::adapters::aws::config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// Read units and bytes that the documented stand-in (`scripts/stand-ins/dynamodb-as-documented`) metered
/// for one table since the test started; `None` when the tests run straight on moto.
pub struct Meter {
    endpoint: std::net::SocketAddr,
    table: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metered {
    pub read_units: f64,
    pub read_bytes: u64,
    pub calls: usize,
}

impl Meter {
    pub fn for_table(table: &str) -> Option<Self> {
        let url = std::env::var("AWS_ENDPOINT_URL").ok()?;
        let authority = url.strip_prefix("http://")?.trim_end_matches('/');
        let endpoint = std::net::ToSocketAddrs::to_socket_addrs(authority).ok()?.next()?;
        let meter = Self { endpoint, table: table.to_owned() };
        meter.calls().ok().map(|_| meter)
    }

    /// Everything metered for the table so far.
    pub fn read(&self) -> Metered {
        let calls = self.calls().expect("the meter answers");
        let mine = calls.iter().filter(|c| c["table"] == self.table.as_str());
        mine.fold(Metered::default(), |sum, call| Metered {
            read_units: sum.read_units + call["read_units"].as_f64().unwrap_or_default(),
            read_bytes: sum.read_bytes + call["read_bytes"].as_u64().unwrap_or_default(),
            calls: sum.calls + 1,
        })
    }

    /// What `during` cost the table.
    pub async fn cost<T>(&self, during: impl std::future::Future<Output = T>) -> (T, Metered) {
        let before = self.read();
        let value = during.await;
        let after = self.read();
        let cost = Metered {
            read_units: after.read_units - before.read_units,
            read_bytes: after.read_bytes - before.read_bytes,
            calls: after.calls - before.calls,
        };
        (value, cost)
    }

    fn calls(&self) -> std::io::Result<Vec<serde_json::Value>> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect_timeout(&self.endpoint, std::time::Duration::from_secs(2))?;
        stream.write_all(b"GET /__meter HTTP/1.0\r\nHost: meter\r\n\r\n")?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let body = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| &answer[at + 4..]).unwrap_or_default();
        let report: serde_json::Value = serde_json::from_slice(body).map_err(std::io::Error::other)?;
        Ok(report["calls"].as_array().cloned().unwrap_or_default())
    }
}

/// A table of the registry's first layout (partition key `pk` only; the indexes, which the copy
/// never reads, left out) holding `rows` and the heads of their Live rows, as that layout's code
/// wrote them: for the tests and the benchmark of `migrate-table`. The row JSON keeps whatever
/// status it had when it was written; the `status` attribute is the row's.
pub async fn first_layout_table(sdk: &SdkConfig, table: &str, rows: &[crate::domain::ConnectorRow]) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
        WriteRequest,
    };
    let client = aws_sdk_dynamodb::Client::new(sdk);
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .send()
        .await
        .expect("creating a first-layout table");
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut items = Vec::new();
    for row in rows {
        let mut json = serde_json::to_value(row).expect("a row");
        json["status"] = serde_json::json!("Live");
        items.push(std::collections::HashMap::from([
            ("pk".to_owned(), s(&format!("row#{}", row.id))),
            ("row_set".to_owned(), s("rows")),
            ("id".to_owned(), s(row.id.as_str())),
            ("connector_id".to_owned(), s(row.connector_id.as_str())),
            ("status".to_owned(), s(row.status.as_str())),
            ("category".to_owned(), s(row.category.as_str())),
            ("row".to_owned(), s(&json.to_string())),
        ]));
        if row.status == crate::domain::Status::Live {
            items.push(std::collections::HashMap::from([
                ("pk".to_owned(), s(&format!("connector#{}", row.connector_id))),
                ("live_id".to_owned(), s(row.id.as_str())),
            ]));
        }
    }
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item.clone())).build().unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        while !requests.is_empty() {
            let output = client.batch_write_item().request_items(table, requests).send().await.expect("writing");
            requests = output.unprocessed_items.and_then(|mut left| left.remove(table)).unwrap_or_default();
        }
    }
}
