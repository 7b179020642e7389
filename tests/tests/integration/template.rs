//! `template.yaml` against the code: the table and bucket the code creates, the routes it serves,
//! and the binaries it builds are the ones the deployment declares.

use registry_shared::adapters::aws::{BucketSchema, LifecycleRule, TableSchema};
use registry_shared::api::{Route, route_of};
use registry_shared::registry::{ARCHIVE_PREFIX, UPLOAD_PREFIX};
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
    let known = [
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "StreamSpecification",
        "SSESpecification",
        "PointInTimeRecoverySpecification",
    ];
    for (name, _) in table.as_mapping().unwrap() {
        assert!(known.contains(&text(name)), "RegistryTable.{}: compare it with what the code creates", text(name));
    }
    assert_eq!(text(&table["BillingMode"]), TableSchema::BILLING_MODE);
    assert_eq!(text(&table["StreamSpecification"]["StreamViewType"]), TableSchema::STREAM_VIEW_TYPE);
    let sse = &table["SSESpecification"];
    assert_eq!(sse["SSEEnabled"].as_bool(), Some(true));
    assert_eq!(text(&sse["SSEType"]), TableSchema::SSE_TYPE);
    // Which KMS key is the deployment's choice (TableKmsKeyArn); the code's tables use the AWS
    // managed one, as the template does without it.
    let Value::Tagged(key) = &sse["KMSMasterKeyId"] else { panic!("KMSMasterKeyId is an !If") };
    assert_eq!(key.tag, "!If");
    assert_eq!(text(&list(&key.value)[0]), "TableKeyGiven");
    assert_eq!(intrinsic(&list(&key.value)[2], "!Ref"), "AWS::NoValue");
    assert_eq!(TableSchema::TIME_TO_LIVE_ATTRIBUTE, None);
    assert!(table["TimeToLiveSpecification"].is_null(), "no item expires: the code sets no TTL attribute");
    assert!(table["LocalSecondaryIndexes"].is_null());
    // Point-in-time recovery is the deployment's backup (docs/operations.md, Recovering the
    // table): tables the code creates for a local server or the tests do without it.
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));

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

/// A number, or a parameter's default through `!Ref`.
fn days(template: &Value, value: &Value) -> i32 {
    let value = match value {
        Value::Tagged(_) => &template["Parameters"][intrinsic(value, "!Ref")]["Default"],
        plain => plain,
    };
    value
        .as_i64()
        .and_then(|days| i32::try_from(days).ok())
        .unwrap_or_else(|| panic!("a number of days, not {value:?}"))
}

#[test]
fn the_bucket_in_the_template_is_the_bucket_the_code_creates() {
    let template = template();
    let resource = &template["Resources"]["ArchiveBucket"];
    assert_eq!(text(&resource["DeletionPolicy"]), "Retain");
    let bucket = &resource["Properties"];
    let versioned = text(&bucket["VersioningConfiguration"]["Status"]) == "Enabled";
    assert_eq!(versioned, BucketSchema::VERSIONED);

    // SSE-S3 as the code sets it, unless the deployment gives its own key (ArchiveKmsKeyArn).
    let rules = list(&bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]);
    assert_eq!(rules.len(), 1);
    let Value::Tagged(by_default) = &rules[0]["ServerSideEncryptionByDefault"] else { panic!("an !If") };
    let branches = list(&by_default.value);
    assert_eq!(text(&branches[0]), "ArchiveKeyGiven");
    assert_eq!(text(&branches[1]["SSEAlgorithm"]), "aws:kms");
    assert_eq!(text(&branches[2]["SSEAlgorithm"]), BucketSchema::ENCRYPTION);

    let public = &bucket["PublicAccessBlockConfiguration"];
    for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(public[setting].as_bool(), Some(BucketSchema::BLOCK_PUBLIC_ACCESS), "{setting}");
    }
    // S3 makes every new bucket BucketOwnerEnforced (ACLs off); the template says it outright.
    assert_eq!(text(&bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"]), "BucketOwnerEnforced");

    let lifecycle: Vec<LifecycleRule> = list(&bucket["LifecycleConfiguration"]["Rules"])
        .iter()
        .map(|rule| {
            let rule = rule.as_mapping().unwrap();
            let id = text(&rule["Id"]);
            let mut parsed = LifecycleRule {
                id: BucketSchema::lifecycle_rules("")
                    .into_iter()
                    .map(|r| r.id)
                    .find(|known| *known == id)
                    .unwrap_or_else(|| panic!("the code makes no lifecycle rule {id}")),
                prefix: None,
                expiration_days: None,
                noncurrent_days: None,
                abort_incomplete_upload_days: None,
                expired_object_delete_marker: false,
            };
            for (name, value) in rule {
                match text(name) {
                    "Id" => {}
                    "Status" => assert_eq!(text(value), "Enabled", "{id}"),
                    "Prefix" => parsed.prefix = Some(text(value).to_owned()),
                    "ExpirationInDays" => parsed.expiration_days = Some(days(&template, value)),
                    "NoncurrentVersionExpiration" => {
                        parsed.noncurrent_days = Some(days(&template, &value["NoncurrentDays"]));
                    }
                    "AbortIncompleteMultipartUpload" => {
                        parsed.abort_incomplete_upload_days = Some(days(&template, &value["DaysAfterInitiation"]));
                    }
                    "ExpiredObjectDeleteMarker" => parsed.expired_object_delete_marker = value.as_bool().unwrap(),
                    other => panic!("{id}.{other}: compare it with the code's lifecycle rules"),
                }
            }
            parsed
        })
        .collect();
    assert_eq!(lifecycle, BucketSchema::lifecycle_rules(""), "the functions store archives with no key prefix");

    // The uploads the S3 events register are where the lifecycle expects them.
    let upload = &template["Resources"]["RegisterUploadFunction"]["Properties"];
    assert_eq!(text(&upload["Environment"]["Variables"]["REGISTRY_INCOMING_PREFIX"]), BucketSchema::INCOMING_PREFIX);
    let rule = &list(&upload["Events"]["Upload"]["Properties"]["Filter"]["S3Key"]["Rules"])[0];
    assert_eq!(text(&rule["Value"]), BucketSchema::INCOMING_PREFIX);
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
        // The alias: what CodeDeploy shifts from version to version.
        let uri = intrinsic(&integration["Properties"]["IntegrationUri"], "!Sub");
        let function = uri
            .strip_prefix("arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${")
            .and_then(|rest| rest.strip_suffix("}:live"))
            .unwrap_or_else(|| panic!("{name:?}: {uri} does not invoke a function's alias"));
        let permission = resources
            .values()
            .find(|r| {
                text(&r["Type"]) == "AWS::Lambda::Permission"
                    && r["Properties"]["Principal"] == "apigateway.amazonaws.com"
                    && matches!(r["Properties"]["FunctionName"], Value::Tagged(_))
                    && intrinsic(&r["Properties"]["FunctionName"], "!Ref") == format!("{function}.Alias")
            })
            .unwrap_or_else(|| panic!("{name:?}: no permission for API Gateway to invoke {function}.Alias"));
        assert!(intrinsic(&permission["Properties"]["SourceArn"], "!Sub").contains("${RegistryApi}"));
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
            "status-transition" => Route::StatusTransition,
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
    let mut once_each_way: Vec<(Route, String)> =
        [Route::GenerateUrl, Route::List, Route::Read, Route::Register, Route::StatusTransition]
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
    let Value::Tagged(uri) = &properties["AuthorizerUri"] else { panic!("AuthorizerUri is a !Sub") };
    assert!(text(&list(&uri.value)[0]).ends_with("/functions/${Alias}/invocations"));
    assert_eq!(intrinsic(&list(&uri.value)[1]["Alias"], "!Ref"), "AuthorizerFunction.Alias", "the alias is invoked");
    let function = &template["Resources"]["AuthorizerFunction"];
    assert_eq!(text(&function["Condition"]), "TokenAuth");
    let binary = text(&function["Metadata"]["BuildProperties"]["Binary"]);
    let manifest = format!("{}/../functions/{binary}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    assert!(std::path::Path::new(&manifest).exists(), "no crate functions/{binary}");
    assert!(function["Properties"].get("Policies").is_none(), "least privilege: no AWS permission at all");
    let permission = &template["Resources"]["AuthorizerInvokePermission"];
    assert_eq!(text(&permission["Properties"]["Principal"]), "apigateway.amazonaws.com");
    assert_eq!(intrinsic(&permission["Properties"]["FunctionName"], "!Ref"), "AuthorizerFunction.Alias");
    assert!(intrinsic(&permission["Properties"]["SourceArn"], "!Sub").ends_with("/authorizers/${TokenAuthorizer}"));
}

/// Every function of the template, by logical id.
fn functions(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::Serverless::Function")
        .map(|(name, r)| (text(name).to_owned(), r))
        .collect()
}

#[test]
fn every_function_is_traced_and_published_behind_an_alias() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(text(&globals["Tracing"]), "Active", "X-Ray traces of every function");
    assert_eq!(text(&globals["AutoPublishAlias"]), "live");
    for (name, function) in functions(&template) {
        assert!(function["Properties"].get("Tracing").is_none(), "{name}: the global tracing holds");
        assert!(function["Properties"].get("AutoPublishAlias").is_none(), "{name}: the global alias holds");
    }
}

#[test]
fn every_function_logs_json_to_its_own_group_kept_as_long_as_the_parameter_says() {
    let template = template();
    let retention = &template["Parameters"]["LogRetentionDays"];
    assert_eq!(retention["Default"].as_u64(), Some(30));
    assert!(list(&retention["AllowedValues"]).iter().all(|days| days.as_u64().is_some()));
    let mut groups = Vec::new();
    for (name, function) in functions(&template) {
        let logging = &function["Properties"]["LoggingConfig"];
        assert_eq!(text(&logging["LogFormat"]), "JSON", "{name}");
        let group_name = intrinsic(&logging["LogGroup"], "!Ref");
        let group = &template["Resources"][group_name];
        assert_eq!(text(&group["Type"]), "AWS::Logs::LogGroup", "{name}");
        assert_eq!(group["Condition"], function["Condition"], "{name}: its group exists exactly when it does");
        assert_eq!(intrinsic(&group["Properties"]["RetentionInDays"], "!Ref"), "LogRetentionDays", "{name}");
        let binary = text(&function["Metadata"]["BuildProperties"]["Binary"]);
        let log_group_name = intrinsic(&group["Properties"]["LogGroupName"], "!Sub");
        assert_eq!(log_group_name, format!("/aws/lambda/connector-registry-${{Stage}}-{binary}"), "{name}");
        groups.push(group_name);
    }
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), functions(&template).len(), "one group per function");
}

/// The alarm's metric: (namespace, metric name, dimensions as (name, value text)).
fn alarm_metric(alarm: &Value) -> (String, String, Vec<(String, String)>) {
    let properties = &alarm["Properties"];
    let dimensions = list(&properties["Dimensions"])
        .iter()
        .map(|d| {
            let value = match &d["Value"] {
                Value::Tagged(tagged) => format!("{} {}", tagged.tag, text(&tagged.value)),
                other => text(other).to_owned(),
            };
            (text(&d["Name"]).to_owned(), value)
        })
        .collect();
    (text(&properties["Namespace"]).to_owned(), text(&properties["MetricName"]).to_owned(), dimensions)
}

#[test]
fn alarms_watch_every_function_the_api_the_dead_letter_queues_and_the_table_and_notify_the_topic() {
    let template = template();
    let resources = &template["Resources"];
    let topic = &template["Parameters"]["AlarmTopicArn"];
    assert_eq!(text(&topic["Default"]), "", "no notification unless a topic is given");
    let alarms: Vec<(&str, &Value)> = resources
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::CloudWatch::Alarm")
        .map(|(name, r)| (text(name), r))
        .collect();
    for (name, alarm) in &alarms {
        let properties = &alarm["Properties"];
        for actions in ["AlarmActions", "OKActions"] {
            let Value::Tagged(when) = &properties[actions] else { panic!("{name}: {actions} is an !If") };
            assert!(when.tag == "!If", "{name}: {actions}");
            let branches = list(&when.value);
            assert_eq!(text(&branches[0]), "AlarmTopicGiven", "{name}");
            assert_eq!(intrinsic(&list(&branches[1])[0], "!Ref"), "AlarmTopicArn", "{name}");
            assert_eq!(intrinsic(&branches[2], "!Ref"), "AWS::NoValue", "{name}: no topic, no action");
        }
        assert_eq!(properties["Threshold"].as_f64(), Some(0.0), "{name}: the first occurrence counts");
        assert_eq!(text(&properties["ComparisonOperator"]), "GreaterThanThreshold", "{name}");
        assert_eq!(text(&properties["TreatMissingData"]), "notBreaching", "{name}: no data is no trouble");
        assert!(
            text(&properties["AlarmDescription"]).contains("docs/operations.md"),
            "{name}: the operations guide says what to do"
        );
    }
    let find = |namespace: &str, metric: &str, dimension: (&str, &str)| -> Vec<&str> {
        alarms
            .iter()
            .filter(|(_, alarm)| alarm["Properties"].get("Metrics").is_none())
            .filter(|(_, alarm)| {
                let (ns, name, dimensions) = alarm_metric(alarm);
                ns == namespace && name == metric && dimensions.contains(&(dimension.0.into(), dimension.1.into()))
            })
            .map(|(name, _)| *name)
            .collect()
    };
    for (name, function) in functions(&template) {
        for metric in ["Errors", "Throttles"] {
            let watching = find("AWS/Lambda", metric, ("FunctionName", &format!("!Ref {name}")));
            assert_eq!(watching.len(), 1, "{name}: one alarm on its {metric}: {watching:?}");
            assert_eq!(resources[watching[0]]["Condition"], function["Condition"], "{name}");
        }
    }
    assert_eq!(find("AWS/ApiGateway", "5xx", ("ApiId", "!Ref RegistryApi")), ["Api5xxAlarm"]);
    for queue in ["UploadDeadLetterQueue", "AuditDeadLetterQueue"] {
        let watching =
            find("AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", &format!("!GetAtt {queue}.QueueName")));
        assert_eq!(watching.len(), 1, "{queue}: an alarm on its depth");
    }
    let throttles = &resources["TableThrottlesAlarm"]["Properties"]["Metrics"];
    let watched: Vec<&str> = list(throttles)
        .iter()
        .filter_map(|m| m.get("MetricStat"))
        .map(|stat| {
            assert_eq!(intrinsic(&stat["Metric"]["Dimensions"][0]["Value"], "!Ref"), "RegistryTable");
            text(&stat["Metric"]["MetricName"])
        })
        .collect();
    assert_eq!(watched, ["ReadThrottleEvents", "WriteThrottleEvents"]);
}

#[test]
fn deployments_shift_the_alias_by_canary_and_roll_back_on_the_function_s_alarms() {
    let template = template();
    let kind = &template["Parameters"]["DeploymentType"];
    assert!(text(&kind["Default"]).starts_with("Canary"), "a canary by default");
    for (name, function) in functions(&template) {
        let preference = &function["Properties"]["DeploymentPreference"];
        assert_eq!(intrinsic(&preference["Type"], "!Ref"), "DeploymentType", "{name}");
        let alarms: Vec<&str> = list(&preference["Alarms"]).iter().map(|a| intrinsic(a, "!Ref")).collect();
        let stem = name.strip_suffix("Function").unwrap();
        assert!(alarms.contains(&format!("{stem}ErrorsAlarm").as_str()), "{name}: {alarms:?}");
        assert!(alarms.contains(&format!("{stem}ThrottlesAlarm").as_str()), "{name}: {alarms:?}");
        for alarm in alarms {
            assert_eq!(text(&template["Resources"][alarm]["Type"]), "AWS::CloudWatch::Alarm", "{name}: {alarm}");
        }
    }
}

#[test]
fn the_audit_events_function_reads_only_the_outbox_items_of_the_stream_and_may_only_put_and_remove_them() {
    let template = template();
    let table = &template["Resources"]["RegistryTable"]["Properties"];
    assert_eq!(text(&table["StreamSpecification"]["StreamViewType"]), "NEW_IMAGE", "the event is in the new image");
    let function = &template["Resources"]["AuditEventsFunction"];
    assert_eq!(text(&function["Metadata"]["BuildProperties"]["Binary"]), "audit-events");
    let properties = &function["Properties"];
    assert_eq!(intrinsic(&properties["Environment"]["Variables"]["REGISTRY_EVENT_BUS"], "!Ref"), "EventBusName");
    let events = properties["Events"].as_mapping().unwrap();
    assert_eq!(events.len(), 1);
    let source = events.values().next().unwrap();
    assert_eq!(text(&source["Type"]), "DynamoDB");
    let source = &source["Properties"];
    assert_eq!(intrinsic(&source["Stream"], "!GetAtt"), "RegistryTable.StreamArn");
    assert_eq!(list(&source["FunctionResponseTypes"]), &[Value::from("ReportBatchItemFailures")]);
    assert_eq!(source["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert_eq!(text(&source["DestinationConfig"]["OnFailure"]["Type"]), "SQS");
    assert_eq!(
        intrinsic(&source["DestinationConfig"]["OnFailure"]["Destination"], "!GetAtt"),
        "AuditDeadLetterQueue.Arn"
    );
    let filters = list(&source["FilterCriteria"]["Filters"]);
    assert_eq!(filters.len(), 1);
    let pattern: serde_json::Value = serde_json::from_str(text(&filters[0]["Pattern"])).unwrap();
    assert_eq!(pattern["eventName"], serde_json::json!(["INSERT"]), "new events only, not their removal");
    assert_eq!(
        pattern["dynamodb"]["Keys"][TableSchema::PARTITION_KEY]["S"],
        serde_json::json!([TableSchema::AUDIT_PARTITION]),
        "the outbox's items, as the code keys them"
    );

    let statements = list(&properties["Policies"][0]["Statement"]);
    let actions: Vec<&str> = statements.iter().map(|s| text(&s["Action"])).collect();
    assert_eq!(actions, ["events:PutEvents", "dynamodb:DeleteItem"], "least privilege");
    assert!(intrinsic(&statements[0]["Resource"], "!Sub").ends_with(":event-bus/${EventBusName}"));
    let leading = &statements[1]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"];
    assert_eq!(list(leading), &[Value::from(TableSchema::AUDIT_PARTITION)], "it removes outbox items only");
}

#[test]
fn the_archive_collector_runs_daily_and_may_only_list_and_remove_under_the_registry_s_prefixes_and_read_rows() {
    let template = template();
    let function = &template["Resources"]["GcArchivesFunction"];
    assert!(function.get("Condition").is_none(), "every stack collects");
    assert_eq!(text(&function["Metadata"]["BuildProperties"]["Binary"]), "gc-archives");
    let properties = &function["Properties"];
    let variables = &properties["Environment"]["Variables"];
    assert_eq!(intrinsic(&variables["REGISTRY_BUCKET"], "!Ref"), "ArchiveBucket");
    let grace: u64 = text(&variables["REGISTRY_GC_GRACE_SECONDS"]).parse().unwrap();
    assert_eq!(grace, registry_shared::registry::gc::DEFAULT_GRACE.as_secs(), "the documented grace period");
    let events = properties["Events"].as_mapping().unwrap();
    assert_eq!(events.len(), 1);
    let schedule = events.values().next().unwrap();
    assert_eq!(text(&schedule["Type"]), "Schedule");
    assert_eq!(text(&schedule["Properties"]["Schedule"]), "rate(1 day)");

    let policies = list(&properties["Policies"]);
    let statements: Vec<&Value> =
        policies.iter().filter(|p| p.get("Statement").is_some()).flat_map(|p| list(&p["Statement"])).collect();
    let actions = |s: &Value| -> Vec<String> {
        match &s["Action"] {
            Value::Sequence(actions) => actions.iter().map(|a| text(a).to_owned()).collect(),
            action => vec![text(action).to_owned()],
        }
    };
    let resources = |s: &Value| -> Vec<String> {
        let one = |r: &Value| match r {
            Value::Tagged(tagged) => format!("{} {}", tagged.tag, text(&tagged.value)),
            other => text(other).to_owned(),
        };
        match &s["Resource"] {
            Value::Sequence(resources) => resources.iter().map(one).collect(),
            resource => vec![one(resource)],
        }
    };
    let granted: Vec<(Vec<String>, Vec<String>)> = statements.iter().map(|s| (actions(s), resources(s))).collect();
    // The prefixes the code collects under.
    let prefixes = [ARCHIVE_PREFIX, UPLOAD_PREFIX].map(|prefix| format!("{prefix}/*"));
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        granted,
        [
            (strings(&["s3:ListBucket"]), strings(&["!GetAtt ArchiveBucket.Arn"])),
            (
                strings(&["s3:DeleteObject"]),
                prefixes.iter().map(|prefix| format!("!Sub ${{ArchiveBucket.Arn}}/{prefix}")).collect()
            ),
            (strings(&["dynamodb:GetItem", "dynamodb:Query"]), strings(&["!GetAtt RegistryTable.Arn"])),
        ],
        "least privilege: list and remove under the two prefixes, read the rows"
    );
    let listed: Vec<&str> = list(&statements[0]["Condition"]["StringLike"]["s3:prefix"]).iter().map(text).collect();
    assert_eq!(listed, prefixes);
}
