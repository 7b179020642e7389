//! Metrics as CloudWatch embedded metric format (EMF) lines: one JSON object per line on stdout,
//! which CloudWatch Logs turns into metrics, so that counting costs no API call. Every metric is in
//! one namespace with a `Route` dimension (the API route, or the way in of an upload); refusals
//! and failures add the Obsrv error code.
//!
//! Off unless a process turns it on (the Lambda functions do): the local server's log stays the
//! log.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The namespace of every metric.
pub const NAMESPACE: &str = "ConnectorRegistry";
/// The `Route` of uploads registered from S3 events.
pub const UPLOADS_ROUTE: &str = "s3:ObjectCreated";
/// The `Route` of uploads registered with `registry-server register-upload` (a re-drive).
pub const CLI_ROUTE: &str = "cli:register-upload";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The units CloudWatch documents (`MetricDatum.Unit`); EMF takes no others.
pub const CLOUDWATCH_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];
/// EMF's limits: metrics per directive, dimensions per dimension set.
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Bytes,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
}

impl Metric {
    pub fn count(name: &'static str) -> Self {
        Self { name, unit: Unit::Count, value: 1.0 }
    }
}

/// Writes the metric lines of this process to stdout from now on.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// One EMF line: the `_aws` metadata, then every dimension and metric as a member of the root.
/// Dimension names must not be metric names.
pub fn line(dimensions: &[(&str, &str)], metrics: &[Metric], timestamp_ms: i64) -> String {
    debug_assert!(metrics.len() <= MAX_METRICS && dimensions.len() <= MAX_DIMENSIONS);
    let mut root = serde_json::Map::new();
    root.insert(
        "_aws".to_owned(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|m| serde_json::json!({"Name": m.name, "Unit": m.unit.as_str()})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        root.insert((*name).to_owned(), serde_json::Value::from(*value));
    }
    for metric in metrics {
        root.insert(metric.name.to_owned(), serde_json::Value::from(metric.value));
    }
    serde_json::Value::Object(root).to_string()
}

/// Emits the metrics, when enabled: one line, written whole.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[Metric]) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let mut text = line(dimensions, metrics, chrono::Utc::now().timestamp_millis());
    text.push('\n');
    // A lost metric line is not worth failing a request for.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A registration committed: its count, how long it took and the archive's size.
pub fn registered(route: &str, took: Duration, archive_bytes: u64) {
    emit(
        &[("Route", route)],
        &[
            Metric::count("Registrations"),
            Metric { name: "RegistrationDuration", unit: Unit::Milliseconds, value: took.as_secs_f64() * 1000.0 },
            Metric { name: "ArchiveBytes", unit: Unit::Bytes, value: archive_bytes as f64 },
        ],
    );
}

/// A status transition committed (`Live`, `Retire` or `Delete`).
pub fn transitioned(route: &str, to: &str) {
    emit(&[("Route", route), ("Status", to)], &[Metric::count("StatusTransitions")]);
}

/// A request answered successfully.
pub fn answered(route: &str) {
    emit(&[("Route", route)], &[Metric::count("RequestsAnswered")]);
}

/// A request answered with an error: `Refusals` for the caller's fault (4xx), `Failures` for ours.
pub fn refused(route: &str, code: &str, server_error: bool) {
    let metric = Metric::count(if server_error { "Failures" } else { "Refusals" });
    emit(&[("Route", route), ("ErrorCode", code)], &[metric]);
}

/// What became of an upload under the incoming prefix: `UploadsRegistered`, `UploadsRejected`,
/// or `UploadsFailed` (a transient fault: Lambda retries the event, then dead-letters it).
pub fn upload(route: &str, metric: &'static str) {
    emit(&[("Route", route)], &[Metric::count(metric)]);
}

/// Rows copied into Obsrv's table, and how long the oldest of them had waited for it.
pub fn obsrv_mirrored(rows: usize, lag: Duration) {
    emit(
        &[("Mirror", "obsrv-postgres")],
        &[
            Metric { name: "ObsrvRowsMirrored", unit: Unit::Count, value: rows as f64 },
            Metric { name: "ObsrvMirrorLag", unit: Unit::Milliseconds, value: lag.as_secs_f64() * 1000.0 },
        ],
    );
}

/// An attempt to bring Obsrv's table up to date that failed (it is tried again).
pub fn obsrv_mirror_failed() {
    emit(&[("Mirror", "obsrv-postgres")], &[Metric::count("ObsrvMirrorFailures")]);
}

/// What a collection of orphaned archives removed (`registry::gc`): archives no row referenced,
/// their bytes, and uploads never registered. Written after every collection, nothing removed
/// included, so that a schedule that stopped running shows as missing data.
pub fn collected(archives: usize, archive_bytes: u64, uploads: usize) {
    emit(
        &[("Collector", "gc-archives")],
        &[
            Metric { name: "OrphanedArchivesRemoved", unit: Unit::Count, value: archives as f64 },
            Metric { name: "OrphanedArchiveBytesRemoved", unit: Unit::Bytes, value: archive_bytes as f64 },
            Metric { name: "StaleUploadsRemoved", unit: Unit::Count, value: uploads as f64 },
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The EMF specification's rules for one line, checked member by member.
    pub(crate) fn assert_emf(text: &str) {
        let root: Value = serde_json::from_str(text).expect("one JSON object");
        let root = root.as_object().expect("an object");
        let aws = root["_aws"].as_object().expect("_aws is an object");
        assert!(aws.keys().all(|k| k == "Timestamp" || k == "CloudWatchMetrics"), "{text}");
        let timestamp = aws["Timestamp"].as_i64().expect("Timestamp is a number");
        assert!(timestamp > 1_500_000_000_000, "Timestamp in milliseconds since the epoch: {timestamp}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics is an array");
        assert!(!directives.is_empty());
        for directive in directives {
            let directive = directive.as_object().unwrap();
            assert!(directive.keys().all(|k| ["Namespace", "Dimensions", "Metrics"].contains(&k.as_str())));
            let namespace = directive["Namespace"].as_str().expect("Namespace is a string");
            assert!(!namespace.is_empty() && namespace.len() <= 1024);
            for set in directive["Dimensions"].as_array().expect("Dimensions is an array of arrays") {
                let set = set.as_array().expect("a dimension set is an array");
                assert!(set.len() <= MAX_DIMENSIONS, "{text}");
                for dimension in set {
                    let name = dimension.as_str().expect("a dimension is named by a string");
                    assert!(root[name].is_string(), "dimension {name} is a top-level string member: {text}");
                }
            }
            let metrics = directive["Metrics"].as_array().expect("Metrics is an array");
            assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS, "{text}");
            for metric in metrics {
                let metric = metric.as_object().unwrap();
                assert!(metric.keys().all(|k| k == "Name" || k == "Unit"), "{text}");
                let name = metric["Name"].as_str().expect("Name is a string");
                assert!(!name.is_empty() && name.len() <= 1024);
                assert!(root[name].is_number(), "metric {name} is a top-level number member: {text}");
                let unit = metric["Unit"].as_str().expect("Unit is a string");
                assert!(CLOUDWATCH_UNITS.contains(&unit), "{unit} is a documented unit");
            }
        }
    }

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let text = line(
            &[("Route", "POST /v2/connector/register")],
            &[
                Metric::count("Registrations"),
                Metric { name: "RegistrationDuration", unit: Unit::Milliseconds, value: 12.5 },
                Metric { name: "ArchiveBytes", unit: Unit::Bytes, value: 2048.0 },
            ],
            1_767_225_600_000,
        );
        assert_emf(&text);
        let root: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(root["_aws"]["Timestamp"], 1_767_225_600_000_i64);
        assert_eq!(root["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(root["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Route"]]));
        assert_eq!(root["Route"], "POST /v2/connector/register");
        assert_eq!((root["Registrations"].as_f64(), root["ArchiveBytes"].as_f64()), (Some(1.0), Some(2048.0)));
        assert_eq!(
            root["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            serde_json::json!({"Name": "RegistrationDuration", "Unit": "Milliseconds"})
        );

        let refused = line(
            &[("Route", "GET /v2/connectors/read/{connector_id}"), ("ErrorCode", "CONNECTOR_NOT_FOUND")],
            &[Metric::count("Refusals")],
            1,
        );
        let root: Value = serde_json::from_str(&refused).unwrap();
        assert_eq!(root["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Route", "ErrorCode"]]));
        assert_eq!(root["ErrorCode"], "CONNECTOR_NOT_FOUND");
    }

    #[test]
    fn every_unit_used_is_a_documented_one() {
        for unit in [Unit::Count, Unit::Milliseconds, Unit::Bytes] {
            assert!(CLOUDWATCH_UNITS.contains(&unit.as_str()));
        }
    }

    #[test]
    fn the_checker_refuses_lines_that_break_the_specification() {
        let good = line(&[("Route", "r")], &[Metric::count("Registrations")], 1_767_225_600_000);
        let broken = [
            good.replace("1767225600000", "1767225600"),
            good.replace("\"Count\"", "\"Things\""),
            good.replace("\"Route\":\"r\"", "\"Other\":\"r\""),
            good.replace("\"Registrations\":1.0", "\"Registrations\":\"1\""),
        ];
        for text in broken {
            assert_ne!(text, good);
            assert!(std::panic::catch_unwind(|| assert_emf(&text)).is_err(), "accepted: {text}");
        }
    }
}
