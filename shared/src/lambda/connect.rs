//! The store connections a function's first request needs, opened at init when
//! `REGISTRY_CONNECT_AT_INIT=true`.
//!
//! A cold request is init plus the first invocation, and the first invocation opens the connection
//! to each store it calls: TCP, the TLS client configuration, the handshake, and the first run of
//! the SDK's request path. Opened at init, that work moves and one request more (whose answer is
//! thrown away) is made: measured under Lambda's CPU share, a cold request then takes longer, not
//! less, so it is off by default. Where init runs before any request arrives (provisioned
//! concurrency), the request gains what init took over: 3 to 10 ms of a first read
//! (docs/performance.md, "The cold request").

use std::time::Instant;

use super::Settings;
use crate::adapters::aws::Connect;

/// Opens every store's connection at once, when `REGISTRY_CONNECT_AT_INIT=true`. Never fails:
/// a store that cannot be reached now is logged, and the first request tries again as it would
/// have anyway. Each attempt is one request, bounded by the connect timeout.
pub async fn connect_at_init(settings: &Settings, stores: &[&dyn Connect]) {
    if !settings.connect_at_init {
        return;
    }
    let started = Instant::now();
    let outcomes = futures_util::future::join_all(stores.iter().map(|store| store.connect())).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    for (store, outcome) in stores.iter().zip(outcomes) {
        match outcome {
            Ok(()) => tracing::debug!(service = store.service(), elapsed_ms, "connection opened at init"),
            Err(e) => tracing::warn!(
                service = store.service(),
                error = %crate::error::error_chain(&e),
                "the connection could not be opened at init; the first request will open it"
            ),
        }
    }
}
