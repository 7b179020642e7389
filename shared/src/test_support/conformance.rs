//! The behaviour every store adapter must have, as one suite each adapter's tests run unchanged.

use std::future::Future;
use std::sync::Arc;

use chrono::Duration;
use serde_json::value::RawValue;

use crate::domain::{
    Category, ConnectorId, ConnectorRow, RowId, SourceInfo, Status, StatusReason, Timestamp, Transition, Version,
    Versions,
};
use crate::error::StoreError;
use crate::registry::{
    ARCHIVE_PREFIX, ArchiveStore, AuditDraft, AuditOutbox, AuditRecord, AuditSink, Imported, ListQuery, ListedRow,
    Origin, RowStore, StoredName, StoredObject, UPLOAD_PREFIX, render_read_view,
};

/// A Live row as a registration would build it, at `now`.
pub fn row(connector: &str, version: &str, category: &str, now: Timestamp) -> ConnectorRow {
    let connector_id = ConnectorId::parse(connector).expect("connector id");
    let version = Version::parse(version).expect("version");
    ConnectorRow {
        id: RowId::new(&connector_id, &version),
        connector_id,
        name: format!("{connector} name"),
        category: Category::parse(category).expect("category"),
        version: version.clone(),
        description: None,
        technology: "scala".into(),
        runtime: "flink".into(),
        licence: "MIT".into(),
        owner: "Sunbird".into(),
        iconurl: Some("data:image/svg+xml;base64,PHN2Zy8+".into()),
        status: Status::Live,
        ui_spec: RawValue::from_string(r#"{"b":1,"a":{"z":[1,2]}}"#.into()).expect("raw"),
        source_url: "pkg.tar_abcdef.gz".into(),
        source: SourceInfo {
            source: format!("{connector}-{version}"),
            main_class: None,
            main_program: Some("x.jar".into()),
        },
        archive_sha256: "0".repeat(64),
        created_by: "SYSTEM".into(),
        updated_by: "SYSTEM".into(),
        created_date: now,
        updated_date: now,
        live_date: Some(now),
        status_reason: None,
    }
}

/// Commits the registration of one Live row of `connector` at `seconds` (see `at`).
async fn registered(store: &dyn RowStore, connector: &str, version: &str, category: &str, seconds: i64) {
    let now = at(seconds);
    store
        .commit_registration(&[row(connector, version, category, now)], now, &draft(), Versions::Immutable)
        .await
        .unwrap();
}

/// A test's caller, registering through the API.
pub fn draft_origin() -> Origin {
    Origin::new("tester", "POST /v2/connector/register")
}

/// The audit event of a registration by a test's caller.
pub fn draft() -> AuditDraft {
    AuditDraft::new(draft_origin(), &"0".repeat(64), "pkg.tar_abcdef.gz")
}

/// A time `seconds` after a fixed start, so tests can tell commits apart.
pub fn at(seconds: i64) -> Timestamp {
    let start = Timestamp::parse("2026-01-01T00:00:00Z").expect("timestamp").as_datetime();
    Timestamp::from(start + Duration::seconds(seconds))
}

async fn status_of(store: &dyn RowStore, id: &str) -> Option<Status> {
    for status in Status::ALL {
        if store.get(id, status).await.expect("get").is_some() {
            return Some(status);
        }
    }
    None
}

async fn all(store: &dyn RowStore) -> Vec<Arc<ListedRow>> {
    store.list(&ListQuery::default()).await.expect("list").rows
}

/// Runs every row-store case, each on a fresh store from `make`.
pub async fn row_store_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn RowStore>>,
{
    empty_store_has_nothing(&*make().await).await;
    a_committed_row_reads_back_whole(&*make().await).await;
    a_new_version_retires_the_live_one(&*make().await).await;
    re_registering_keeps_creation_fields(&*make().await).await;
    a_retired_version_can_come_back(&*make().await).await;
    a_package_commits_all_or_nothing(&*make().await).await;
    list_filters_orders_and_pages(&*make().await).await;
    every_list_follows_every_commit(&*make().await).await;
    every_read_follows_every_commit(&*make().await).await;
    reads_racing_commits_never_keep_an_old_answer(make().await).await;
    list_pages_through_many_rows(&*make().await).await;
    a_list_over_a_megabyte_returns_every_row_once(&*make().await).await;
    racing_registrations_leave_one_live(make().await).await;
    imported_rows_are_kept_as_they_are(&*make().await).await;
    a_version_s_bytes_never_change(&*make().await).await;
    transitions_promote_roll_back_retire_and_delete(&*make().await).await;
    every_read_and_list_follows_every_transition(&*make().await).await;
    racing_transitions_and_registrations_leave_at_most_one_live(make().await).await;
}

/// Another archive under a registered version is refused, and nothing changes; the same archive
/// again is the original's re-registration; the operator's setting lets other bytes through.
async fn a_version_s_bytes_never_change(store: &dyn RowStore) {
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    let mut other = row("kafka", "1.0.0", "stream", at(5));
    other.archive_sha256 = "f".repeat(64);
    let error = store
        .commit_registration(std::slice::from_ref(&other), at(5), &draft(), Versions::Immutable)
        .await
        .unwrap_err();
    assert!(matches!(&error, StoreError::VersionExists(message) if message.contains("kafka-1.0.0")), "{error:?}");
    let stored = store.get("kafka-1.0.0", Status::Live).await.unwrap().unwrap();
    assert_eq!((stored.archive_sha256, stored.updated_date), ("0".repeat(64), at(0)));
    let same = row("kafka", "1.0.0", "stream", at(6));
    store.commit_registration(&[same], at(6), &draft(), Versions::Immutable).await.unwrap();
    store.commit_registration(&[other], at(7), &draft(), Versions::Overwritable).await.unwrap();
    assert_eq!(store.get("kafka-1.0.0", Status::Live).await.unwrap().unwrap().archive_sha256, "f".repeat(64));
}

fn reason(text: &str) -> StatusReason {
    StatusReason::parse(text).unwrap().unwrap()
}

fn transition_draft() -> AuditDraft {
    AuditDraft::for_transition(Origin::new("operator", "POST /v2/connectors/status-transition"))
}

/// Live makes an older version Live again and retires the Live one; Retire leaves the connector
/// without one; Delete removes a version that is not Live and refuses the Live one; a repeat
/// changes nothing; an unknown id is `None`. Reasons are kept with the rows.
async fn transitions_promote_roll_back_retire_and_delete(store: &dyn RowStore) {
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    registered(store, "kafka", "2.0.0", "stream", 1).await;
    let draft = transition_draft();
    let rollback = reason("2.0.0 loses events");
    let done = store
        .commit_transition("kafka-1.0.0", Transition::Live, Some(&rollback), at(10), &draft)
        .await
        .unwrap()
        .unwrap();
    assert!(done.changed());
    assert_eq!(
        (done.before.status, done.retired.as_ref().map(|id| id.as_str())),
        (Status::Retired, Some("kafka-2.0.0"))
    );
    assert_eq!(done.live.as_deref(), Some("kafka-1.0.0"));
    let live = store.get("kafka-1.0.0", Status::Live).await.unwrap().expect("rolled back");
    assert_eq!(
        (live.status_reason.as_deref(), live.updated_by.as_str(), live.live_date),
        (Some("2.0.0 loses events"), "operator", Some(at(10)))
    );
    assert_eq!(live.created_date, at(0), "history is kept");
    let retired = store.get("kafka-2.0.0", Status::Retired).await.unwrap().expect("retired");
    assert_eq!(retired.status_reason.as_deref(), Some("kafka-1.0.0 was made Live"));
    let view: serde_json::Value =
        serde_json::from_str(store.read_view("kafka-1.0.0", Status::Live).await.unwrap().unwrap().get()).unwrap();
    assert_eq!(view["status_reason"], "2.0.0 loses events");

    let again = store.commit_transition("kafka-1.0.0", Transition::Live, None, at(11), &draft).await.unwrap().unwrap();
    assert!(!again.changed(), "a repeat is idempotent");

    let error = store.commit_transition("kafka-1.0.0", Transition::Delete, None, at(12), &draft).await.unwrap_err();
    assert!(matches!(error, StoreError::TransitionRefused(_)), "{error:?}");
    let retire = store
        .commit_transition("kafka-1.0.0", Transition::Retire, Some(&reason("end of life")), at(13), &draft)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retire.live, retire.after.map(|row| row.status)), (None, Some(Status::Retired)));
    let live = ListQuery { statuses: vec![Status::Live], ..Default::default() };
    assert!(store.list(&live).await.unwrap().rows.is_empty(), "no Live version left");

    let deleted =
        store.commit_transition("kafka-2.0.0", Transition::Delete, None, at(14), &draft).await.unwrap().unwrap();
    assert!(deleted.after.is_none() && deleted.changed());
    assert_eq!(status_of(store, "kafka-2.0.0").await, None);
    assert_eq!(store.commit_transition("kafka-2.0.0", Transition::Delete, None, at(15), &draft).await.unwrap(), None);
    assert_eq!(store.commit_transition("nothing-1", Transition::Live, None, at(15), &draft).await.unwrap(), None);
    // A new registration of the connector retires nothing it should not, and a deleted version
    // can be registered again.
    registered(store, "kafka", "2.0.0", "stream", 20).await;
    assert_eq!(status_of(store, "kafka-2.0.0").await, Some(Status::Live));
    assert_eq!(all(store).await.len(), 2);
}

/// Reads and lists (and the caches behind them) never answer with a row's state from before a
/// transition.
async fn every_read_and_list_follows_every_transition(store: &dyn RowStore) {
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    registered(store, "kafka", "2.0.0", "stream", 1).await;
    let retired = ListQuery { statuses: vec![Status::Retired], ..Default::default() };
    // Warm every cache first.
    assert!(store.read_view("kafka-2.0.0", Status::Live).await.unwrap().is_some());
    assert_eq!(store.list(&retired).await.unwrap().rows.len(), 1);
    let draft = transition_draft();
    store.commit_transition("kafka-1.0.0", Transition::Live, None, at(5), &draft).await.unwrap();
    assert!(store.read_view("kafka-2.0.0", Status::Live).await.unwrap().is_none());
    assert!(store.read_view("kafka-1.0.0", Status::Live).await.unwrap().is_some());
    let listed: Vec<String> =
        store.list(&retired).await.unwrap().rows.iter().map(|r| r.id.as_str().to_owned()).collect();
    assert_eq!(listed, ["kafka-2.0.0"]);
    store.commit_transition("kafka-2.0.0", Transition::Delete, None, at(6), &draft).await.unwrap();
    assert!(store.list(&retired).await.unwrap().rows.is_empty());
    assert_eq!(all(store).await.len(), 1);
}

/// Promotions of every version and registrations of new ones, all at once, leave at most one
/// Live version, and the connector's head where its Live row is.
async fn racing_transitions_and_registrations_leave_at_most_one_live(store: Arc<dyn RowStore>) {
    for i in 0..4 {
        let now = at(i);
        store
            .commit_registration(&[row("race", &format!("{i}.0"), "batch", now)], now, &draft(), Versions::Immutable)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let now = at(10 + i);
            if i % 2 == 0 {
                let to = if i % 4 == 0 { Transition::Live } else { Transition::Retire };
                store
                    .commit_transition(&format!("race-{}.0", i / 2), to, None, now, &transition_draft())
                    .await
                    .map(|_| ())
            } else {
                store
                    .commit_registration(
                        &[row("race", &format!("{}.0", 10 + i), "batch", now)],
                        now,
                        &draft(),
                        Versions::Immutable,
                    )
                    .await
            }
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("commit");
    }
    let live = ListQuery { statuses: vec![Status::Live], ..Default::default() };
    let live_rows = store.list(&live).await.unwrap().rows;
    assert!(
        live_rows.len() <= 1,
        "at most one Live version: {:?}",
        live_rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()
    );
    // A registration after the race finds the head where the Live row is: it ends with one.
    registered(&*store, "race", "99.0", "batch", 99).await;
    let live_rows = store.list(&live).await.unwrap().rows;
    assert_eq!(live_rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["race-99.0"]);
}

/// Rows brought in from an Obsrv installation keep their status and dates; a row the registry
/// has stays as it is; a second Live version of a connector is refused; and what was imported
/// takes part in registrations like any row.
async fn imported_rows_are_kept_as_they_are(store: &dyn RowStore) {
    let mut retired = row("kafka", "1.0.0", "stream", at(0));
    retired.status = Status::Retired;
    retired.updated_date = at(5);
    retired.created_by = "obsrv-admin".into();
    let live = row("kafka", "1.1.0", "stream", at(5));
    assert_eq!(store.import_row(&retired).await.unwrap(), Imported::Written);
    assert_eq!(store.import_row(&live).await.unwrap(), Imported::Written);
    assert_eq!(store.get("kafka-1.0.0", Status::Retired).await.unwrap(), Some(retired.clone()));
    assert_eq!(store.get("kafka-1.1.0", Status::Live).await.unwrap(), Some(live.clone()));
    assert_eq!(store.import_row(&live).await.unwrap(), Imported::Present, "importing again changes nothing");
    let second = row("kafka", "1.2.0", "stream", at(6));
    assert!(matches!(store.import_row(&second).await.unwrap(), Imported::Refused(_)), "one Live version");
    assert_eq!(status_of(store, "kafka-1.2.0").await, None);
    let listed: Vec<(String, Status)> = all(store).await.iter().map(|r| (r.id.as_str().to_owned(), r.status)).collect();
    assert_eq!(listed, [("kafka-1.0.0".to_owned(), Status::Retired), ("kafka-1.1.0".to_owned(), Status::Live)]);
    let view = store.read_view("kafka-1.0.0", Status::Retired).await.unwrap().expect("a read view");
    assert_eq!(view.get(), render_read_view(&retired).unwrap().get());
    // A registration after the import retires the imported Live version.
    registered(store, "kafka", "2.0.0", "stream", 10).await;
    assert_eq!(status_of(store, "kafka-1.1.0").await, Some(Status::Retired));
    assert_eq!(status_of(store, "kafka-2.0.0").await, Some(Status::Live));
}

async fn empty_store_has_nothing(store: &dyn RowStore) {
    assert!(store.get("nothing-1.0.0", Status::Live).await.unwrap().is_none());
    let page = store.list(&ListQuery::default()).await.unwrap();
    assert!(page.rows.is_empty() && page.next_after.is_none());
}

async fn a_committed_row_reads_back_whole(store: &dyn RowStore) {
    let now = at(0);
    let row = row("kafka", "1.0.0", "stream", now);
    store.commit_registration(std::slice::from_ref(&row), now, &draft(), Versions::Immutable).await.unwrap();
    let stored = store.get("kafka-1.0.0", Status::Live).await.unwrap().expect("stored");
    assert_eq!(stored, row);
    assert_eq!(stored.ui_spec.get(), r#"{"b":1,"a":{"z":[1,2]}}"#, "ui_spec keeps its text and key order");
    assert!(store.get("kafka-1.0.0", Status::Draft).await.unwrap().is_none(), "get filters on status");
    let listed = all(store).await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].status), ("kafka-1.0.0", Status::Live));
    let view = serde_json::to_string(&row.list_view()).unwrap();
    assert_eq!(listed[0].view.get(), view, "list shows the row's list view");
}

async fn a_new_version_retires_the_live_one(store: &dyn RowStore) {
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    registered(store, "other", "1.0.0", "stream", 0).await;
    registered(store, "kafka", "2.0.0", "stream", 10).await;
    let old = store.get("kafka-1.0.0", Status::Retired).await.unwrap().expect("retired");
    assert_eq!(old.updated_date, at(10));
    assert_eq!(old.live_date, Some(at(0)));
    assert_eq!(status_of(store, "kafka-2.0.0").await, Some(Status::Live));
    assert_eq!(status_of(store, "other-1.0.0").await, Some(Status::Live), "other connectors are untouched");
    // Any version retires the others, older ones included (no semver ordering, as in the original).
    registered(store, "kafka", "0.9.0", "stream", 20).await;
    assert_eq!(status_of(store, "kafka-2.0.0").await, Some(Status::Retired));
    assert_eq!(status_of(store, "kafka-0.9.0").await, Some(Status::Live));
}

async fn re_registering_keeps_creation_fields(store: &dyn RowStore) {
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    let mut again = row("kafka", "1.0.0", "batch", at(30));
    again.name = "renamed".into();
    again.created_by = "someone-else".into();
    store.commit_registration(std::slice::from_ref(&again), at(30), &draft(), Versions::Immutable).await.unwrap();
    let stored = store.get("kafka-1.0.0", Status::Live).await.unwrap().expect("live");
    assert_eq!(stored.name, "renamed");
    assert_eq!(stored.category.as_str(), "batch");
    assert_eq!(stored.created_by, "SYSTEM");
    assert_eq!(stored.created_date, at(0));
    assert_eq!(stored.live_date, Some(at(0)));
    assert_eq!(stored.updated_date, at(30));
    assert_eq!(all(store).await.len(), 1);
}

async fn a_retired_version_can_come_back(store: &dyn RowStore) {
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    registered(store, "kafka", "2.0.0", "stream", 1).await;
    registered(store, "kafka", "1.0.0", "stream", 2).await;
    assert_eq!(status_of(store, "kafka-1.0.0").await, Some(Status::Live));
    assert_eq!(status_of(store, "kafka-2.0.0").await, Some(Status::Retired));
}

async fn a_package_commits_all_or_nothing(store: &dyn RowStore) {
    // `a-b` version `1` and `a` version `b-1` share the row id `a-b-1`.
    registered(store, "a-b", "1", "batch", 0).await;
    registered(store, "pg", "1.0.0", "batch", 0).await;
    let package = [row("pg", "2.0.0", "batch", at(5)), row("a", "b-1", "batch", at(5))];
    let error = store.commit_registration(&package, at(5), &draft(), Versions::Immutable).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert_eq!(status_of(store, "pg-1.0.0").await, Some(Status::Live), "nothing of the failed package landed");
    assert_eq!(status_of(store, "pg-2.0.0").await, None);
    assert_eq!(store.get("a-b-1", Status::Live).await.unwrap().unwrap().connector_id.as_str(), "a-b");

    let package = [row("mysql", "1.0.0", "batch", at(6)), row("pg", "2.0.0", "batch", at(6))];
    store.commit_registration(&package, at(6), &draft(), Versions::Immutable).await.unwrap();
    assert_eq!(status_of(store, "mysql-1.0.0").await, Some(Status::Live));
    assert_eq!(status_of(store, "pg-2.0.0").await, Some(Status::Live));
    assert_eq!(status_of(store, "pg-1.0.0").await, Some(Status::Retired));
}

async fn list_filters_orders_and_pages(store: &dyn RowStore) {
    for (connector, version, category) in
        [("zeta", "1", "batch"), ("alpha", "1", "stream"), ("alpha", "2", "stream"), ("mid", "1", "Database")]
    {
        store
            .commit_registration(&[row(connector, version, category, at(0))], at(0), &draft(), Versions::Immutable)
            .await
            .unwrap();
    }
    let ids = |rows: &[Arc<ListedRow>]| rows.iter().map(|r| r.id.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(&all(store).await), ["alpha-1", "alpha-2", "mid-1", "zeta-1"], "id order");

    let live = ListQuery { statuses: vec![Status::Live], ..Default::default() };
    assert_eq!(ids(&store.list(&live).await.unwrap().rows), ["alpha-2", "mid-1", "zeta-1"]);
    let retired_streams = ListQuery {
        statuses: vec![Status::Retired, Status::Draft],
        categories: vec![Category::parse("stream").unwrap()],
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&retired_streams).await.unwrap().rows), ["alpha-1"]);
    let none = ListQuery { categories: vec![Category::parse("File").unwrap()], ..Default::default() };
    assert!(store.list(&none).await.unwrap().rows.is_empty());

    let first = store.list(&ListQuery { limit: Some(2), ..Default::default() }).await.unwrap();
    assert_eq!(ids(&first.rows), ["alpha-1", "alpha-2"]);
    assert_eq!(first.next_after.as_deref(), Some("alpha-2"));
    let second =
        store.list(&ListQuery { limit: Some(2), after: first.next_after, ..Default::default() }).await.unwrap();
    assert_eq!(ids(&second.rows), ["mid-1", "zeta-1"]);
    assert_eq!(second.next_after, None, "no cursor on the last page");
    let live_page =
        ListQuery { statuses: vec![Status::Live], limit: Some(1), after: Some("alpha-2".into()), ..Default::default() };
    let page = store.list(&live_page).await.unwrap();
    assert_eq!(ids(&page.rows), ["mid-1"]);
    assert_eq!(page.next_after.as_deref(), Some("mid-1"));
}

/// Lists asked twice after each commit (a store may keep what it read): each answer is current.
async fn every_list_follows_every_commit(store: &dyn RowStore) {
    let ids = |rows: &[Arc<ListedRow>]| rows.iter().map(|r| r.id.as_str().to_owned()).collect::<Vec<_>>();
    let live = ListQuery { statuses: vec![Status::Live], ..Default::default() };
    let retired = ListQuery { statuses: vec![Status::Retired], ..Default::default() };
    let first = ListQuery { limit: Some(1), ..Default::default() };
    let versions = ["1.0.0", "2.0.0", "3.0.0"];
    for (i, version) in versions.iter().enumerate() {
        let now = at(i as i64);
        store
            .commit_registration(&[row("kafka", version, "stream", now)], now, &draft(), Versions::Immutable)
            .await
            .unwrap();
        for _ in 0..2 {
            assert_eq!(ids(&store.list(&live).await.unwrap().rows), [format!("kafka-{version}")]);
            let expected: Vec<String> = versions[..i].iter().map(|v| format!("kafka-{v}")).collect();
            assert_eq!(ids(&store.list(&retired).await.unwrap().rows), expected);
            let everything = all(store).await;
            assert_eq!(everything.len(), i + 1);
            assert_eq!(everything.iter().filter(|r| r.status == Status::Live).count(), 1);
            let page = store.list(&first).await.unwrap();
            assert_eq!(ids(&page.rows), ["kafka-1.0.0"]);
            assert_eq!(page.next_after.is_some(), i > 0);
        }
    }
}

/// What read answers (`read_view`) is the row's read view as `get` has it now, however often it
/// was read before.
async fn every_read_follows_every_commit(store: &dyn RowStore) {
    async fn read(store: &dyn RowStore, id: &str, status: Status) -> Option<String> {
        let view = store.read_view(id, status).await.expect("read_view").map(|v| v.get().to_owned());
        let row = store.get(id, status).await.expect("get");
        assert_eq!(view, row.map(|r| render_read_view(&r).unwrap().get().to_owned()), "{id} as {status:?}");
        view
    }
    assert!(read(store, "kafka-1.0.0", Status::Live).await.is_none());
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    for _ in 0..2 {
        let view = read(store, "kafka-1.0.0", Status::Live).await.expect("read");
        assert!(view.contains(r#""ui_spec":{"b":1,"a":{"z":[1,2]}}"#), "{view}");
        assert!(read(store, "kafka-1.0.0", Status::Draft).await.is_none(), "read filters on status");
    }
    registered(store, "kafka", "2.0.0", "stream", 10).await;
    assert!(read(store, "kafka-1.0.0", Status::Live).await.is_none(), "retired");
    let retired = read(store, "kafka-1.0.0", Status::Retired).await.expect("retired");
    assert!(retired.contains(r#""status":"Retired""#), "{retired}");
    let mut renamed = row("kafka", "2.0.0", "stream", at(20));
    renamed.name = "renamed".into();
    store.commit_registration(&[renamed], at(20), &draft(), Versions::Immutable).await.unwrap();
    assert!(read(store, "kafka-2.0.0", Status::Live).await.expect("live").contains(r#""name":"renamed""#));
}

/// Reads running while commits change the row they read: once a commit has returned, no read
/// answers with the row as it was before it.
async fn reads_racing_commits_never_keep_an_old_answer(store: Arc<dyn RowStore>) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store.read_view("kafka-1.0.0", Status::Live).await.expect("read_view");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for round in 0..20_i64 {
        let mut live = row("kafka", "1.0.0", "stream", at(round));
        live.name = format!("round {round}");
        store.commit_registration(&[live], at(round), &draft(), Versions::Immutable).await.unwrap();
        let view = store.read_view("kafka-1.0.0", Status::Live).await.unwrap().expect("live");
        assert!(view.get().contains(&format!(r#""name":"round {round}""#)), "round {round}: {}", view.get());
    }
    registered(&*store, "kafka", "2.0.0", "stream", 99).await;
    assert!(store.read_view("kafka-1.0.0", Status::Live).await.unwrap().is_none(), "retired");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(store.read_view("kafka-1.0.0", Status::Live).await.unwrap().is_none(), "still retired");
    assert!(store.read_view("kafka-1.0.0", Status::Retired).await.unwrap().is_some());
}

async fn list_pages_through_many_rows(store: &dyn RowStore) {
    let count = 120;
    for i in 0..count {
        store
            .commit_registration(&[row(&format!("c{i:03}"), "1", "batch", at(0))], at(0), &draft(), Versions::Immutable)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(&ListQuery { limit: Some(7), after: after.clone(), ..Default::default() }).await.unwrap();
        seen.extend(page.rows.into_iter().map(|r| r.id.as_str().to_owned()));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..count).map(|i| format!("c{i:03}-1")).collect();
    assert_eq!(seen, expected, "every row exactly once, in order");
}

/// DynamoDB answers a query in pages of at most 1 MB; 160 rows of ~10 KB each need two or more.
async fn a_list_over_a_megabyte_returns_every_row_once(store: &dyn RowStore) {
    let count = 160;
    let spec = format!(r#"{{"title":"big","padding":"{}"}}"#, "x".repeat(10 * 1024));
    for i in 0..count {
        let mut big = row(&format!("big{i:03}"), "1", "batch", at(0));
        big.ui_spec = RawValue::from_string(spec.clone()).expect("raw");
        store.commit_registration(&[big], at(0), &draft(), Versions::Immutable).await.unwrap();
    }
    let expected: Vec<String> = (0..count).map(|i| format!("big{i:03}-1")).collect();
    let ids = |rows: Vec<Arc<ListedRow>>| rows.into_iter().map(|r| r.id.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(all(store).await), expected, "every row exactly once, in order");
    let live = ListQuery { statuses: vec![Status::Live], ..Default::default() };
    assert_eq!(ids(store.list(&live).await.unwrap().rows), expected);
    let batch_live = ListQuery {
        statuses: vec![Status::Live, Status::Retired],
        categories: vec![Category::parse("batch").unwrap()],
        limit: Some(150),
        ..Default::default()
    };
    let page = store.list(&batch_live).await.unwrap();
    assert_eq!(ids(page.rows), expected[..150]);
    assert_eq!(page.next_after.as_deref(), Some("big149-1"));
}

async fn racing_registrations_leave_one_live(store: Arc<dyn RowStore>) {
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let now = at(i);
                store
                    .commit_registration(
                        &[row("race", &format!("{i}.0"), "batch", now)],
                        now,
                        &draft(),
                        Versions::Immutable,
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("commit");
    }
    let live = ListQuery { statuses: vec![Status::Live], ..Default::default() };
    assert_eq!(store.list(&live).await.unwrap().rows.len(), 1, "exactly one Live version");
    assert_eq!(all(&*store).await.len(), 12);
}

/// Runs every outbox case, each on a fresh store from `make`: a committed registration leaves
/// exactly one record in the outbox, a refused or conflicting one none, and a record stays until
/// it is delivered.
pub async fn outbox_suite<S, F, Fut>(make: F)
where
    S: RowStore + AuditOutbox + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<S>>,
{
    a_commit_leaves_exactly_one_record(&*make().await).await;
    a_refused_commit_leaves_none(&*make().await).await;
    records_stay_until_delivered(&*make().await).await;
    racing_commits_leave_one_record_each(make().await).await;
    a_transition_leaves_one_record_and_a_repeat_none(&*make().await).await;
}

async fn a_transition_leaves_one_record_and_a_repeat_none<S: RowStore + AuditOutbox>(store: &S) {
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    registered(store, "kafka", "2.0.0", "stream", 1).await;
    let before = store.pending(10).await.unwrap().len();
    let audit = transition_draft();
    store.commit_transition("kafka-1.0.0", Transition::Live, Some(&reason("rollback")), at(5), &audit).await.unwrap();
    store.commit_transition("kafka-1.0.0", Transition::Live, None, at(6), &transition_draft()).await.unwrap();
    let pending = store.pending(10).await.unwrap();
    assert_eq!(pending.len(), before + 1, "one event for the change, none for the repeat");
    let record = pending.iter().find(|r| r.detail.event_id == audit.event_id()).expect("the transition's event");
    assert_eq!(record.detail_type, "Connector status changed");
    assert_eq!((record.detail.status.as_deref(), record.detail.reason.as_deref()), (Some("Live"), Some("rollback")));
    assert_eq!(record.detail.retired_ids, ["kafka-2.0.0"]);
    assert_eq!(record.detail.subject, "operator");
    store.commit_transition("kafka-2.0.0", Transition::Delete, None, at(7), &transition_draft()).await.unwrap();
    let deleted = store.pending(10).await.unwrap();
    assert!(deleted.iter().any(|r| r.detail.deleted_ids == ["kafka-2.0.0"] && r.detail.rows.is_empty()));
}

async fn a_commit_leaves_exactly_one_record<S: RowStore + AuditOutbox>(store: &S) {
    assert!(store.pending(10).await.unwrap().is_empty());
    let first = draft();
    store
        .commit_registration(&[row("kafka", "1.0.0", "stream", at(0))], at(0), &first, Versions::Immutable)
        .await
        .unwrap();
    let pending = store.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let record = &pending[0];
    assert_eq!(record.detail.event_id, first.event_id());
    assert_eq!(record.detail.registered_at, at(0).to_string());
    assert_eq!((record.detail.rows.len(), record.detail.rows[0].version.as_str()), (1, "1.0.0"));
    assert!(record.detail.retired_ids.is_empty());
    assert_eq!((record.detail.subject.as_str(), record.detail_type.as_str()), ("tester", "Connector registered"));

    let package = [row("kafka", "2.0.0", "stream", at(10)), row("jdbc", "1.0.0", "batch", at(10))];
    let second = draft();
    store.commit_registration(&package, at(10), &second, Versions::Immutable).await.unwrap();
    let pending = store.pending(10).await.unwrap();
    assert_eq!(pending.len(), 2, "one record per commit: {pending:?}");
    assert_eq!(pending[0].detail.event_id, first.event_id(), "oldest first");
    let record = &pending[1];
    assert_eq!(record.detail.event_id, second.event_id());
    let ids: Vec<&str> = record.detail.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["kafka-2.0.0", "jdbc-1.0.0"]);
    assert_eq!(record.detail.retired_ids, ["kafka-1.0.0"], "the commit names what it retired");
    assert_eq!(store.pending(1).await.unwrap().len(), 1, "pending takes a limit");
}

async fn a_refused_commit_leaves_none<S: RowStore + AuditOutbox>(store: &S) {
    registered(store, "a-b", "1", "batch", 0).await;
    let before = store.pending(10).await.unwrap();
    // `a` version `b-1` has the row id `a-b-1` of another connector: the store refuses it.
    let package = [row("pg", "1.0.0", "batch", at(5)), row("a", "b-1", "batch", at(5))];
    let error = store.commit_registration(&package, at(5), &draft(), Versions::Immutable).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert_eq!(store.pending(10).await.unwrap(), before, "no event for a registration that did not commit");
}

/// A sink that keeps what it was given, or fails every delivery.
#[derive(Default)]
pub struct KeptEvents {
    pub events: std::sync::Mutex<Vec<AuditRecord>>,
    pub failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl AuditSink for KeptEvents {
    async fn publish(&self, record: &AuditRecord) -> Result<(), StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable(anyhow::anyhow!("the sink is down")));
        }
        self.events.lock().unwrap().push(record.clone());
        Ok(())
    }
}

async fn records_stay_until_delivered<S: RowStore + AuditOutbox>(store: &S) {
    use crate::registry::audit::deliver_pending;
    let sink = KeptEvents::default();
    registered(store, "kafka", "1.0.0", "stream", 0).await;
    registered(store, "kafka", "2.0.0", "stream", 1).await;
    sink.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(deliver_pending(store, &sink).await.is_err());
    assert_eq!(store.pending(10).await.unwrap().len(), 2, "an undelivered record stays");
    sink.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(deliver_pending(store, &sink).await.unwrap(), 2);
    assert!(store.pending(10).await.unwrap().is_empty(), "a delivered record is removed");
    let delivered: Vec<String> = sink.events.lock().unwrap().iter().map(|r| r.detail.rows[0].id.clone()).collect();
    assert_eq!(delivered, ["kafka-1.0.0", "kafka-2.0.0"], "each once, in commit order");
    assert_eq!(deliver_pending(store, &sink).await.unwrap(), 0);
    let gone = sink.events.lock().unwrap()[0].clone();
    store.remove(&gone).await.expect("removing a removed record is fine");
}

async fn racing_commits_leave_one_record_each<S: RowStore + AuditOutbox + 'static>(store: Arc<S>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let now = at(i);
                let audit = draft();
                store
                    .commit_registration(
                        &[row("race", &format!("{i}.0"), "batch", now)],
                        now,
                        &audit,
                        Versions::Immutable,
                    )
                    .await?;
                Ok::<_, StoreError>(audit.event_id().to_owned())
            })
        })
        .collect();
    let mut committed = Vec::new();
    for task in tasks {
        committed.push(task.await.expect("task").expect("commit"));
    }
    let mut recorded: Vec<String> = store.pending(100).await.unwrap().into_iter().map(|r| r.detail.event_id).collect();
    committed.sort();
    recorded.sort();
    assert_eq!(recorded, committed, "exactly one record per committed registration, however they raced");
}

/// Runs every archive-store case on `store`.
pub async fn archive_store_suite(store: &dyn ArchiveStore) {
    let staged = tempfile::NamedTempFile::new_in(store.staging_dir()).expect("staging file");
    std::fs::write(staged.path(), b"archive bytes").expect("write");
    let name = StoredName::generate("pkg.tar.gz");
    let key = name.key();
    assert!(!store.exists(&key).await.unwrap());
    store.put(&key, staged.path()).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert!(matches!(store.put(&key, staged.path()).await, Err(StoreError::AlreadyExists)), "never overwrites");
    let copy = name.upload_key();
    store.copy(&key, &copy).await.unwrap();
    assert!(store.exists(&copy).await.unwrap());
    let mut copied = Vec::new();
    let mut file = store.open(&copy).await.unwrap().expect("the copy");
    std::io::Seek::rewind(&mut file).unwrap();
    std::io::Read::read_to_end(&mut file, &mut copied).unwrap();
    assert_eq!(copied, b"archive bytes");
    assert!(matches!(store.copy(&key, &copy).await, Err(StoreError::AlreadyExists)), "copies never overwrite");
    store.delete(&copy).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    store.delete(&key).await.expect("deleting a missing archive is fine");
    archive_listing_case(store).await;
}

/// `list` finds every object under a prefix, with its size and a last-modified time of when it
/// was written, whatever the store's own key prefix, and nothing else: not what is under a prefix
/// that merely starts alike (`connector-registry-uploads/` beside `connector-registry/`). A listed
/// key removes its object.
pub async fn archive_listing_case(store: &dyn ArchiveStore) {
    let keys = |objects: &[StoredObject]| {
        let mut keys: Vec<String> = objects.iter().map(|o| o.key.as_str().to_owned()).collect();
        keys.sort();
        keys
    };
    let archives = format!("{ARCHIVE_PREFIX}/");
    let uploads = format!("{UPLOAD_PREFIX}/");
    let before = keys(&store.list(&archives).await.unwrap());
    let before_uploads = keys(&store.list(&uploads).await.unwrap());
    let staged = tempfile::NamedTempFile::new_in(store.staging_dir()).expect("staging file");
    std::fs::write(staged.path(), b"listed bytes").expect("write");
    // S3 keeps last-modified times to the second.
    let written_from = Timestamp::from(Timestamp::now().as_datetime() - Duration::seconds(2));
    let names: Vec<StoredName> = (0..5).map(|_| StoredName::generate("listed.tar.gz")).collect();
    for name in &names {
        store.put(&name.key(), staged.path()).await.unwrap();
    }
    let upload = StoredName::generate("listed.zip");
    store.put(&upload.upload_key(), staged.path()).await.unwrap();
    let written_until = Timestamp::from(Timestamp::now().as_datetime() + Duration::seconds(2));

    let listed = store.list(&archives).await.unwrap();
    let mut expected: Vec<String> = names.iter().map(|n| n.key().as_str().to_owned()).chain(before.clone()).collect();
    expected.sort();
    assert_eq!(keys(&listed), expected, "every archive once, and no upload");
    for object in listed.iter().filter(|o| names.iter().any(|n| n.key() == o.key)) {
        assert_eq!(object.bytes, 12, "{object:?}");
        assert!(written_from <= object.modified && object.modified <= written_until, "{object:?}");
    }
    let mut expected_uploads = before_uploads.clone();
    expected_uploads.push(upload.upload_key().as_str().to_owned());
    expected_uploads.sort();
    assert_eq!(keys(&store.list(&uploads).await.unwrap()), expected_uploads);
    assert!(store.list("nothing-here/").await.unwrap().is_empty());

    let first = listed.iter().find(|o| o.key == names[0].key()).expect("listed");
    store.delete(&first.key).await.unwrap();
    assert!(!store.exists(&names[0].key()).await.unwrap(), "a listed key names its object");
    for name in &names[1..] {
        store.delete(&name.key()).await.unwrap();
    }
    store.delete(&upload.upload_key()).await.unwrap();
    assert_eq!(keys(&store.list(&archives).await.unwrap()), before);
    assert_eq!(keys(&store.list(&uploads).await.unwrap()), before_uploads);
}

/// An archive larger than one upload part is stored whole.
pub async fn large_archive_case(store: &dyn ArchiveStore, size: usize) {
    let staged = tempfile::NamedTempFile::new_in(store.staging_dir()).expect("staging file");
    let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(staged.path(), &content).expect("write");
    let key = StoredName::generate("big.tar.gz").key();
    store.put(&key, staged.path()).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert!(matches!(store.put(&key, staged.path()).await, Err(StoreError::AlreadyExists)), "never overwrites");
    store.delete(&key).await.unwrap();
}
