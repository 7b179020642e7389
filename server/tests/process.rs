//! The `registry-server` binary as an operator runs it: start, SIGTERM, and a hard kill in the
//! middle of registrations.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use registry_shared::adapters::embedded::RedbRowStore;
use registry_shared::domain::Status;
use registry_shared::registry::{ListQuery, RowStore};
use registry_shared::test_support::{Package, UNRELATED_PUBLIC_KEY};

struct Server {
    child: Child,
    base_url: String,
}

/// Starts the binary on a free port and waits for its "listening" log line.
fn start(data_dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry-server"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn registry-server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listen = loop {
        let line = lines.next().expect("a log line before exit").expect("read");
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if entry["message"] == "registry-server listening" {
            break entry["listen"].as_str().expect("listen").to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, base_url: format!("http://{listen}") }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(started.elapsed() < within, "the server did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn register(
    client: &reqwest::Client,
    base_url: &str,
    version: &str,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let bytes = Package::single_tenant("kafka-connector", version).tar_gz();
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name("k.tar.gz"));
    Ok(client.post(format!("{base_url}/v2/connector/register")).multipart(form).send().await?.status())
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path());
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server.base_url, "1.0.0").await.unwrap(), 200);
    signal(&server.child, "TERM");
    let status = wait_for_exit(&mut server.child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // The data folder is released and intact.
    let mut again = start(data.path());
    let read = client.get(format!("{}/v2/connectors/read/kafka-connector-1.0.0", again.base_url)).send().await.unwrap();
    assert_eq!(read.status(), 200);
    signal(&again.child, "INT");
    assert!(wait_for_exit(&mut again.child, Duration::from_secs(10)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hard_kill_mid_registration_leaves_a_consistent_registry() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path());
    let client = reqwest::Client::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = client.clone();
            let base_url = server.base_url.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    if register(&client, &base_url, &format!("{w}.{i}.0")).await.is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(&server.child, "KILL");
    wait_for_exit(&mut server.child, Duration::from_secs(10));
    for writer in writers {
        writer.await.unwrap();
    }

    // The database opens, every row points at an archive that is there, and one version is Live.
    {
        let rows = RedbRowStore::open(&data.path().join("registry.redb")).expect("database opens after a crash");
        let all = rows.list(&ListQuery::default()).await.unwrap().rows;
        assert!(!all.is_empty(), "some registrations committed before the kill");
        assert_eq!(all.iter().filter(|r| r.status == Status::Live).count(), 1);
        for listed in &all {
            let row = rows.get(listed.id.as_str(), listed.status).await.unwrap().expect("a listed row reads back");
            let archive = data.path().join("archives/connector-registry").join(&row.source_url);
            assert!(archive.is_file(), "{} has its archive", row.id);
        }
    }
    let mut again = start(data.path());
    assert!(std::fs::read_dir(data.path().join("staging")).unwrap().next().is_none(), "staging is emptied at start");
    assert_eq!(register(&client, &again.base_url, "9.9.9").await.unwrap(), 200);
    signal(&again.child, "TERM");
    assert!(wait_for_exit(&mut again.child, Duration::from_secs(10)).success());
}

/// With stores that do not answer yet (a stand-in that accepts connections and stays silent), the
/// port stays closed, so that a port probe is a readiness probe; a SIGTERM meanwhile stops the
/// server with a line that says so.
#[test]
fn the_port_opens_only_once_the_stores_are_ready_and_a_signal_before_then_is_logged() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry-server"))
        .args(["--backend", "aws", "--table", "readiness", "--bucket", "readiness", "--create-missing"])
        .args(["--log-format", "json", "--listen", &format!("127.0.0.1:{port}")])
        .env("AWS_ENDPOINT_URL", format!("http://{}", silent.local_addr().unwrap()))
        .envs([("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn registry-server");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the server is still creating its table");
    let probe = std::net::TcpStream::connect(("127.0.0.1", port));
    assert_eq!(probe.map_err(|e| e.kind()).err(), Some(std::io::ErrorKind::ConnectionRefused));
    signal(&child, "TERM");
    let status = wait_for_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let lines: Vec<serde_json::Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).expect("JSON log line"))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "registry-server stopped before it was ready" && l["signal"] == "SIGTERM"),
        "{lines:?}"
    );
}

/// The JSON log lines of a server started with `args` until it listens (then stopped) or exits.
fn log_until_listening(args: &[&str]) -> (Vec<serde_json::Value>, Option<std::process::ExitStatus>) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry-server"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data_dir.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn registry-server");
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let entry: serde_json::Value = serde_json::from_str(&line.unwrap()).expect("JSON log line");
        let listening = entry["message"] == "registry-server listening";
        lines.push(entry);
        if listening {
            signal(&child, "TERM");
            wait_for_exit(&mut child, Duration::from_secs(10));
            return (lines, None);
        }
    }
    (lines, Some(wait_for_exit(&mut child, Duration::from_secs(10))))
}

#[test]
fn a_key_alone_verifies_tokens_and_says_that_issuer_and_audience_are_unchecked() {
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), UNRELATED_PUBLIC_KEY).unwrap();
    let key = key.path().to_str().unwrap();
    let (lines, exited) = log_until_listening(&["--jwt-public-key", key]);
    assert!(exited.is_none(), "it starts: {lines:?}");
    let warnings: Vec<&str> =
        lines.iter().filter(|l| l["level"] == "WARN").filter_map(|l| l["message"].as_str()).collect();
    assert!(warnings.iter().any(|w| w.starts_with("no --jwt-issuer")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.starts_with("no --jwt-audience")), "{warnings:?}");
    assert!(!warnings.iter().any(|w| w.starts_with("NO ACCESS CONTROL")), "{warnings:?}");

    let (lines, _) = log_until_listening(&["--jwt-public-key", key, "--jwt-issuer", "https://auth.example.org/"]);
    let warnings: Vec<&str> =
        lines.iter().filter(|l| l["level"] == "WARN").filter_map(|l| l["message"].as_str()).collect();
    assert!(!warnings.iter().any(|w| w.starts_with("no --jwt-issuer")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.starts_with("no --jwt-audience")), "{warnings:?}");

    // An issuer with nothing to verify tokens with is a mistake, not an open server.
    let (lines, exited) = log_until_listening(&["--jwt-issuer", "https://auth.example.org/"]);
    assert!(exited.is_some_and(|status| !status.success()), "{lines:?}");
    let (_, exited) = log_until_listening(&["--jwt-public-key", key, "--roles-claim", "groups"]);
    assert!(exited.is_some_and(|status| !status.success()), "an unknown roles claim is refused");
}

/// `validate` applies a registration's rules, the write budget included: a package valid here
/// registers on every backend, and one over the budget is refused here as it would be there.
#[test]
fn validate_checks_the_write_budget_too() {
    let dir = tempfile::tempdir().unwrap();
    let validate = |package: &Package| {
        let path = dir.path().join("package.tar.gz");
        std::fs::write(&path, package.tar_gz()).unwrap();
        Command::new(env!("CARGO_BIN_EXE_registry-server")).arg("validate").arg(&path).output().expect("validate runs")
    };
    let names: Vec<String> = (0..13).map(|i| format!("tenant-{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let fits = validate(&Package::multi_tenant("many", "1.0.0", &names[..12]));
    assert!(fits.status.success(), "{}", String::from_utf8_lossy(&fits.stderr));
    let report: serde_json::Value = serde_json::from_slice(&fits.stdout).unwrap();
    assert_eq!(report["rows"].as_array().unwrap().len(), 12);

    let over = validate(&Package::multi_tenant("many", "1.0.0", &names));
    assert_eq!(over.status.code(), Some(1));
    let message = String::from_utf8_lossy(&over.stderr);
    assert!(message.contains("13 connectors") && message.contains("at most 12"), "{message}");
}

/// `gc-archives` on a data folder: an archive no row references and an upload never registered
/// go once older than `--older-than`, and only then; a registered archive stays; `--dry-run`
/// only says what would go.
#[tokio::test]
async fn gc_archives_removes_only_old_orphans_from_the_data_folder() {
    use registry_shared::adapters::embedded::open_stores;
    use registry_shared::distribution::Limits;
    use registry_shared::registry::{Origin, Registrar, StagedUpload};
    let dir = tempfile::tempdir().unwrap();
    let registered = {
        let (archives, rows) = open_stores(dir.path(), "http://127.0.0.1:3000").unwrap();
        let registrar = Registrar::new(archives, rows, Limits::default());
        let file = tempfile::NamedTempFile::new_in(registrar.staging_dir()).unwrap();
        std::fs::write(file.path(), Package::single_tenant("kafka-connector", "1.0.0").tar_gz()).unwrap();
        let upload = StagedUpload { file, file_name: "kafka-connector.tar.gz".into() };
        let origin = Origin::new("tester", "POST /v2/connector/register");
        registrar.register(upload, &origin).await.unwrap().stored_name.key()
    };
    let archives = dir.path().join("archives");
    let registered = archives.join(registered.as_str());
    let orphan = archives.join("connector-registry/orphaned.tar_0a0b0c.gz");
    let upload = archives.join("connector-registry-uploads/never-registered.tar_0d0e0f.gz");
    std::fs::write(&orphan, b"an archive no row references").unwrap();
    std::fs::create_dir_all(upload.parent().unwrap()).unwrap();
    std::fs::write(&upload, b"an upload never registered").unwrap();
    let gc = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_registry-server"))
            .env("RUST_LOG", "info")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("gc-archives")
            .args(arguments)
            .output()
            .expect("gc-archives runs");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status, text)
    };
    let present = || [&registered, &orphan, &upload].map(|path| path.exists());

    let (status, text) = gc(&[]);
    assert!(status.success(), "{text}");
    assert!(text.contains("0 archives no row references (0 bytes) and 0 uploads never registered removed"), "{text}");
    assert!(text.contains("kept 1 archives rows reference and 2 objects written less than 86400 s ago"), "{text}");
    assert_eq!(present(), [true; 3], "nothing a day old yet");

    let (status, text) = gc(&["--older-than", "0s", "--dry-run"]);
    assert!(status.success(), "{text}");
    assert!(text.contains("would remove an archive no row references"), "{text}");
    assert!(text.contains("connector-registry/orphaned.tar_0a0b0c.gz"), "{text}");
    assert!(text.contains("connector-registry-uploads/never-registered.tar_0d0e0f.gz"), "{text}");
    assert!(text.contains("1 archives no row references (28 bytes) and 1 uploads never registered would be removed"));
    assert_eq!(present(), [true; 3], "a dry run removes nothing");

    let (status, text) = gc(&["--older-than", "0s"]);
    assert!(status.success(), "{text}");
    assert!(text.contains("removed an upload never registered"), "{text}");
    assert!(text.contains("1 archives no row references (28 bytes) and 1 uploads never registered removed"), "{text}");
    assert_eq!(present(), [true, false, false], "the registered archive stays");

    let (status, text) = gc(&["--older-than", "a while"]);
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("is no duration"), "{text}");
}
