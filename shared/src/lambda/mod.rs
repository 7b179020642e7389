//! The Lambda entry points, one module per event source: `http` (API Gateway requests to a
//! handler), `authorizer` (API Gateway's REQUEST authorizer), `s3_uploads` (archives put under the
//! incoming prefix), `audit_stream` (the table's stream to EventBridge), `obsrv_stream` (the
//! same stream to Obsrv's PostgreSQL table) and `gc_schedule` (a schedule's events, collecting
//! orphaned archives); `config` is the one typed configuration every function reads from its
//! environment. A function's `main` builds its state from `Settings` once and hands it to one of
//! these.

#[cfg(feature = "lambda-audit-events")]
pub mod audit_stream;
#[cfg(feature = "lambda-authorizer")]
pub mod authorizer;
pub mod config;
#[cfg(feature = "aws")]
mod connect;
#[cfg(feature = "lambda-gc-archives")]
pub mod gc_schedule;
mod http;
#[cfg(feature = "lambda-obsrv-mirror")]
pub mod obsrv_stream;
#[cfg(any(feature = "lambda-audit-events", feature = "lambda-obsrv-mirror"))]
mod outbox_stream;
#[cfg(feature = "lambda-s3-events")]
pub mod s3_uploads;

pub use lambda_http::Error;

pub use self::config::Settings;
#[cfg(feature = "aws")]
pub use self::connect::connect_at_init;
#[cfg(feature = "test-support")]
pub use self::http::invoke;
pub use self::http::run;

/// JSON log lines for CloudWatch, one object per line, with the invocation's request id and X-Ray
/// trace id (the runtime's span) on every line, and the metric lines (`crate::metrics`) beside
/// them. `RUST_LOG` sets the filter (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt;
    crate::metrics::enable();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    json_logs(filter, std::io::stdout).init();
}

/// The functions' log format, writing to `writer`. Events are flattened into the line, so an
/// event's field must not be named like a key of the line itself (`message`, `level`, `span`):
/// the line would carry the key twice.
fn json_logs<W>(filter: tracing_subscriber::EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .finish()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::api::{Route, error_response};
    use crate::error::RegistryError;

    /// Log lines captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every key once per line: strict JSON parsers and CloudWatch keep one of two equal keys.
    #[test]
    fn log_lines_of_refused_and_failed_requests_carry_each_key_once() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json_logs("info".into(), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            error_response(Route::Read, None, &RegistryError::ConnectorNotFound("kafka-connector-1.0.0".into()));
            error_response(Route::Read, None, &RegistryError::internal(anyhow::anyhow!("the disk is full")));
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in lines {
            let keys = json_keys(line);
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(keys.len(), unique.len(), "a key twice: {line}");
        }
        let refused: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(refused["message"], "request refused");
        assert_eq!(refused["reason"], "Connector not found: kafka-connector-1.0.0");
    }

    /// The runtime's span of an invocation puts its request id and X-Ray trace id on every line
    /// logged within it.
    #[test]
    fn log_lines_carry_the_request_id_and_the_trace_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json_logs("info".into(), move || writer.clone());
        let mut context = lambda_http::Context::default();
        context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
        context.xray_trace_id =
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
        tracing::subscriber::with_default(subscriber, || {
            let span = lambda_http::lambda_runtime::layers::trace::request_span(&context);
            let _entered = span.enter();
            error_response(Route::Read, None, &RegistryError::ConnectorNotFound("x-1".into()));
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["span"]["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd", "{text}");
        assert_eq!(line["span"]["xrayTraceId"], context.xray_trace_id.unwrap().as_str(), "{text}");
    }

    /// The top-level keys of a JSON object, repeats included (serde_json keeps only the last).
    fn json_keys(line: &str) -> Vec<String> {
        struct Keys(Vec<String>);
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
                while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    self.0.push(key);
                }
                Ok(self.0)
            }
        }
        use serde::Deserializer;
        serde_json::Deserializer::from_str(line).deserialize_map(Keys(Vec::new())).unwrap()
    }
}
