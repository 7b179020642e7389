//! Access control on the local server: tokens minted here with keys generated here.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use registry_shared::auth::{Authenticator, JwtVerifier, RolesClaim, TokenRules};
use registry_tests::*;
use reqwest::StatusCode;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.example.org/";
const AUDIENCE: &str = "connector-registry";
const WRITERS_ONLY: &str = "Access denied. User does not have permission to perform this action. \
                            The following roles have access to this action: dataset_manager, admin.";

struct KeyPair {
    private_pem: String,
    public_pem: String,
    n: String,
    e: String,
}

fn generate() -> KeyPair {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("key");
    let public = private.to_public_key();
    KeyPair {
        private_pem: private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
        n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    }
}

/// The registry's key and a stranger's, generated once per test run.
fn keys() -> &'static (KeyPair, KeyPair) {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| (generate(), generate()))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn mint(key: &KeyPair, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap()).unwrap()
}

fn claims(roles: &[&str]) -> Value {
    json!({"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "roles": roles})
}

fn strict_rules() -> TokenRules {
    TokenRules { issuer: Some(ISSUER.into()), audience: Some(AUDIENCE.into()), roles_claim: RolesClaim::default() }
}

async fn app_with(rules: TokenRules) -> TestApp {
    let verifier = JwtVerifier::from_pem(keys().0.public_pem.as_bytes(), &rules).unwrap();
    TestApp::spawn_with(BackendKind::Embedded, |config| config.auth = Authenticator::Jwt(Arc::new(verifier))).await
}

async fn secured_app() -> TestApp {
    app_with(strict_rules()).await
}

async fn list_as(app: &TestApp, token: Option<&str>) -> Answer {
    let mut request = app.client.post(app.url("/v2/connectors/list")).body(list_body(json!({})).to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    TestApp::answer(request.send().await.unwrap()).await
}

async fn register_as(app: &TestApp, token: &str) -> Answer {
    let bytes = Package::single_tenant("kafka-connector", "1.0.0").tar_gz();
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name("k.tar.gz"));
    let request = app.client.post(app.url("/v2/connector/register")).bearer_auth(token).multipart(form);
    TestApp::answer(request.send().await.unwrap()).await
}

fn assert_refused(answer: &Answer, api_id: &str, status: StatusCode, code: &str, message: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_envelope(answer, api_id, "FAILED");
    assert_eq!(keys_of(&answer.body), ["id", "ver", "ts", "params", "responseCode", "error"], "the RBAC error style");
    assert_eq!(
        answer.body["responseCode"],
        if status == StatusCode::UNAUTHORIZED { "UNAUTHORIZED" } else { "FORBIDDEN" }
    );
    assert_eq!(answer.body["error"], json!({"code": code, "message": message, "trace": ""}));
}

fn keys_of(value: &Value) -> Vec<&str> {
    registry_tests::keys(value)
}

#[tokio::test]
async fn a_role_that_may_call_the_api_is_let_through() {
    let app = secured_app().await;
    let viewer = mint(&keys().0, None, claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&viewer)).await.status, StatusCode::OK);
    let manager = mint(&keys().0, None, claims(&["dataset_manager"]));
    assert_eq!(register_as(&app, &manager).await.status, StatusCode::OK);
    let read = app.client.get(app.url("/v2/connectors/read/kafka-connector-1.0.0")).bearer_auth(&viewer);
    assert_eq!(read.send().await.unwrap().status(), StatusCode::OK);
    // A clock a few seconds ahead of ours is within the leeway.
    let mut valid_in_a_moment = claims(&["viewer"]);
    valid_in_a_moment["nbf"] = json!(now() + 10);
    let token = mint(&keys().0, None, valid_in_a_moment);
    assert_eq!(list_as(&app, Some(&token)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_valid_token_without_the_role_is_forbidden() {
    let app = secured_app().await;
    let viewer = mint(&keys().0, None, claims(&["viewer", "dataset_creator"]));
    let answer = register_as(&app, &viewer).await;
    assert_refused(&answer, "api.connector.register", StatusCode::FORBIDDEN, "FORBIDDEN ACCESS", WRITERS_ONLY);
    let nobody = mint(&keys().0, None, claims(&[]));
    let answer = list_as(&app, Some(&nobody)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.body["error"]["message"].as_str().unwrap().ends_with("viewer, dataset_creator, dataset_manager, admin.")
    );
    assert!(app.all_rows_unchecked().await.is_empty(), "nothing was registered");
}

#[tokio::test]
async fn missing_or_invalid_tokens_are_unauthorized() {
    let app = secured_app().await;
    let answer = list_as(&app, None).await;
    assert_refused(
        &answer,
        "api.connectors.list",
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED ACCESS",
        "No token provided",
    );

    let invalid = "Token verification failed or invalid token";
    let mut expired = claims(&["admin"]);
    expired["exp"] = json!(now() - 3600);
    let mut wrong_issuer = claims(&["admin"]);
    wrong_issuer["iss"] = json!("https://someone-else.example.org/");
    let mut wrong_audience = claims(&["admin"]);
    wrong_audience["aud"] = json!("another-service");
    let mut no_expiry = claims(&["admin"]);
    no_expiry.as_object_mut().unwrap().remove("exp");
    let mut not_yet_valid = claims(&["admin"]);
    not_yet_valid["nbf"] = json!(now() + 3600);
    let tokens = [
        ("signed by another key", mint(&keys().1, None, claims(&["admin"]))),
        ("expired", mint(&keys().0, None, expired)),
        ("wrong issuer", mint(&keys().0, None, wrong_issuer)),
        ("wrong audience", mint(&keys().0, None, wrong_audience)),
        ("no expiry", mint(&keys().0, None, no_expiry)),
        ("valid only in an hour", mint(&keys().0, None, not_yet_valid)),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (case, token) in tokens {
        let answer = list_as(&app, Some(&token)).await;
        assert_refused(&answer, "api.connectors.list", StatusCode::UNAUTHORIZED, "UNAUTHORIZED ACCESS", invalid);
        let answer = register_as(&app, &token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{case}");
    }
    let basic = app.client.post(app.url("/v2/connectors/list")).header("authorization", "Basic dXNlcjpwYXNz");
    let answer = TestApp::answer(basic.send().await.unwrap()).await;
    assert_eq!((answer.status, answer.body["error"]["message"].clone()), (StatusCode::UNAUTHORIZED, json!(invalid)));
}

#[tokio::test]
async fn a_key_set_picks_the_key_by_kid() {
    let (ours, theirs) = keys();
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "theirs", "use": "sig", "alg": "RS256", "n": theirs.n, "e": theirs.e},
        {"kty": "RSA", "kid": "ours", "use": "sig", "alg": "RS256", "n": ours.n, "e": ours.e},
    ]});
    let verifier = JwtVerifier::from_jwks(jwks.to_string().as_bytes(), &strict_rules()).unwrap();
    let app =
        TestApp::spawn_with(BackendKind::Embedded, |config| config.auth = Authenticator::Jwt(Arc::new(verifier))).await;
    let token = mint(ours, Some("ours"), claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&token)).await.status, StatusCode::OK);
    let lying = mint(ours, Some("theirs"), claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&lying)).await.status, StatusCode::UNAUTHORIZED, "the kid's key must verify it");
    let unknown = mint(ours, Some("nobody"), claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&unknown)).await.status, StatusCode::UNAUTHORIZED);
}

/// A token as Obsrv's web console signs it: RS256, no `iss`, `aud` or `kid`.
fn console_claims(roles: &[&str]) -> Value {
    json!({"id": "c0ffee00-1", "user_name": "jane", "email_address": "jane@example.org", "roles": roles,
           "is_owner": true, "iat": now(), "exp": now() + 3600})
}

async fn list_with_headers(app: &TestApp, headers: &[(&str, &str)]) -> StatusCode {
    let mut request = app.client.post(app.url("/v2/connectors/list")).body(list_body(json!({})).to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn console_tokens_without_issuer_or_audience_pass_on_signature_and_expiry() {
    let app = app_with(TokenRules::default()).await;
    let admin = mint(&keys().0, None, console_claims(&["admin"]));
    assert_eq!(register_as(&app, &admin).await.status, StatusCode::OK);
    let viewer = mint(&keys().0, None, console_claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&viewer)).await.status, StatusCode::OK);
    // With neither configured, a token that has them passes too.
    assert_eq!(list_as(&app, Some(&mint(&keys().0, None, claims(&["viewer"])))).await.status, StatusCode::OK);

    let mut expired = console_claims(&["admin"]);
    expired["exp"] = json!(now() - 3600);
    let mut no_expiry = console_claims(&["admin"]);
    no_expiry.as_object_mut().unwrap().remove("exp");
    for token in [
        mint(&keys().1, None, console_claims(&["admin"])),
        mint(&keys().0, None, expired),
        mint(&keys().0, None, no_expiry),
    ] {
        assert_eq!(list_as(&app, Some(&token)).await.status, StatusCode::UNAUTHORIZED);
    }

    // Each check that is configured applies: a console token has no `iss`, so it fails one.
    let only_issuer = app_with(TokenRules { issuer: Some(ISSUER.into()), ..TokenRules::default() }).await;
    assert_eq!(list_as(&only_issuer, Some(&viewer)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(list_as(&only_issuer, Some(&mint(&keys().0, None, claims(&["viewer"])))).await.status, StatusCode::OK);
    let only_audience = app_with(TokenRules { audience: Some(AUDIENCE.into()), ..TokenRules::default() }).await;
    assert_eq!(list_as(&only_audience, Some(&viewer)).await.status, StatusCode::UNAUTHORIZED);
    let mut wrong_audience = claims(&["viewer"]);
    wrong_audience["aud"] = json!("another-service");
    assert_eq!(
        list_as(&only_audience, Some(&mint(&keys().0, None, wrong_audience))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_token_may_come_in_x_user_token_and_authorization_wins() {
    let app = app_with(TokenRules::default()).await;
    let viewer = mint(&keys().0, None, console_claims(&["viewer"]));
    let bearer = format!("Bearer {viewer}");
    assert_eq!(list_with_headers(&app, &[("x-user-token", &viewer)]).await, StatusCode::OK);
    assert_eq!(list_with_headers(&app, &[("x-user-token", &bearer)]).await, StatusCode::OK);
    assert_eq!(list_with_headers(&app, &[("x-user-token", "not-a-jwt")]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(list_with_headers(&app, &[("x-user-token", "")]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        list_with_headers(&app, &[("authorization", &bearer), ("x-user-token", "not-a-jwt")]).await,
        StatusCode::OK
    );
    assert_eq!(
        list_with_headers(&app, &[("authorization", "Bearer not-a-jwt"), ("x-user-token", &viewer)]).await,
        StatusCode::UNAUTHORIZED,
        "Authorization wins"
    );
    // An Authorization header that is there but empty, not text, or there twice, is a token that
    // fails: x-user-token never stands in for it.
    let admin = mint(&keys().0, None, console_claims(&["admin"]));
    let unreadable = http::HeaderValue::from_bytes(format!("Bearer {viewer}\u{ff}").as_bytes()).unwrap();
    let refused = |request: reqwest::RequestBuilder| async move { request.send().await.unwrap().status() };
    let list = || app.client.post(app.url("/v2/connectors/list")).body(list_body(json!({})).to_string());
    assert_eq!(
        refused(list().header("authorization", unreadable.clone()).header("x-user-token", &admin)).await,
        StatusCode::UNAUTHORIZED,
        "not text"
    );
    assert_eq!(
        refused(list().header("authorization", "").header("x-user-token", &admin)).await,
        StatusCode::UNAUTHORIZED,
        "empty"
    );
    assert_eq!(
        refused(list().header("authorization", &bearer).header("authorization", &bearer)).await,
        StatusCode::UNAUTHORIZED,
        "twice"
    );
    let bytes = Package::single_tenant("kafka-connector", "1.0.0").tar_gz();
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name("k.tar.gz"));
    let register = app
        .client
        .post(app.url("/v2/connector/register"))
        .header("authorization", unreadable)
        .header("x-user-token", &admin)
        .multipart(form);
    assert_eq!(register.send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "no admin behind a bad header");
    // A viewer's token in x-user-token still may not register.
    let bytes = Package::single_tenant("kafka-connector", "1.0.0").tar_gz();
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name("k.tar.gz"));
    let request = app.client.post(app.url("/v2/connector/register")).header("x-user-token", &viewer).multipart(form);
    assert_eq!(request.send().await.unwrap().status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn keycloak_roles_are_read_from_the_configured_claim() {
    let keycloak = |realm: &[&str], client: &[&str]| {
        let mut claims = claims(&["viewer"]);
        claims["realm_access"] = json!({"roles": realm});
        claims["resource_access"] =
            json!({"account": {"roles": ["manage-account"]}, "obsrv-console": {"roles": client}});
        mint(&keys().0, None, claims)
    };
    let realm = app_with(TokenRules { roles_claim: "realm_access.roles".parse().unwrap(), ..strict_rules() }).await;
    assert_eq!(
        register_as(&realm, &keycloak(&["offline_access", "dataset_manager"], &[])).await.status,
        StatusCode::OK
    );
    let answer = register_as(&realm, &keycloak(&["offline_access"], &["admin"])).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "the top-level roles and the client's are not the realm's");
    assert_eq!(list_as(&realm, Some(&mint(&keys().0, None, claims(&["viewer"])))).await.status, StatusCode::FORBIDDEN);

    let client =
        app_with(TokenRules { roles_claim: "resource_access.obsrv-console.roles".parse().unwrap(), ..strict_rules() })
            .await;
    assert_eq!(register_as(&client, &keycloak(&[], &["admin"])).await.status, StatusCode::OK);
    assert_eq!(register_as(&client, &keycloak(&["admin"], &["viewer"])).await.status, StatusCode::FORBIDDEN);
}

fn url_access_body(files: &[&str], access: &str) -> Value {
    json!({"id": "api.files.generate.url", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00",
           "params": {"msgid": MSGID}, "request": {"files": files, "access": access, "type": "connector"}})
}

/// Locally the system route's guard is the loopback interface: the runtime's pods (or a sidecar)
/// on this machine call it without a token, whatever access control the other routes have.
#[tokio::test]
async fn runtime_pods_get_read_urls_of_registered_archives_on_url_access() {
    let app = secured_app().await;
    let manager = mint(&keys().0, None, claims(&["dataset_manager"]));
    assert_eq!(register_as(&app, &manager).await.status, StatusCode::OK);
    let [(source_url, bytes)] = app.stored_archives().await.try_into().unwrap();

    let answer = app.post_json("/v2/files/url-access", url_access_body(&[&source_url], "read")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_envelope(&answer, "api.files.generate.url", "SUCCESS");
    assert_eq!(answer.body["params"]["msgid"], MSGID);
    let signed = &answer.body["result"][0];
    assert_eq!(keys_of(signed), ["filePath", "fileName", "preSignedUrl"]);
    assert_eq!(signed["fileName"], source_url);
    let url = signed["preSignedUrl"].as_str().unwrap();
    assert_eq!(app.client.get(url).send().await.unwrap().bytes().await.unwrap().as_ref(), bytes.as_slice());
    // Answered exactly as generate-url's read access, but for the envelope's id.
    let generate_url = app
        .client
        .post(app.url("/v2/files/generate-url"))
        .bearer_auth(&manager)
        .body(
            url_access_body(&[&source_url], "read")
                .to_string()
                .replace("api.files.generate.url", "api.files.generate-url"),
        )
        .send()
        .await
        .unwrap();
    let generate_url = TestApp::answer(generate_url).await;
    assert_eq!(generate_url.body["result"][0]["filePath"], signed["filePath"]);
    assert_eq!(generate_url.body["result"][0]["fileName"], signed["fileName"]);

    let missing = app.post_json("/v2/files/url-access", url_access_body(&["never.tar_123456.gz"], "read")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    assert_envelope(&missing, "api.files.generate.url", "FAILED");
    let unsafe_name = app.post_json("/v2/files/url-access", url_access_body(&["../../etc/passwd"], "read")).await;
    assert_eq!(unsafe_name.status, StatusCode::BAD_REQUEST, "{}", unsafe_name.text);
    let write = app.post_json("/v2/files/url-access", url_access_body(&["kafka.tar.gz"], "write")).await;
    assert_eq!(write.status, StatusCode::BAD_REQUEST, "no upload URLs on the system route: {}", write.text);
    assert!(write.body["error"]["message"].as_str().unwrap().contains("read URLs"), "{}", write.text);
    let wrong_id = app.post_json("/v2/files/url-access", json!({"id": "api.connectors.list"})).await;
    assert_eq!(wrong_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_id.body["error"]["message"], "#properties/id/enum must be equal to one of the allowed values");

    // Obsrv's runtime (connector.py) posts the request alone: no id, ver, ts or params. The
    // original's schema requires only request.files, and names generate-url's id when one is sent.
    let bare = json!({"request": {"files": [&source_url], "access": "read", "type": "connector"}});
    let runtime = app.post_json("/v2/files/url-access", bare.clone()).await;
    assert_eq!(runtime.status, StatusCode::OK, "{}", runtime.text);
    assert_eq!(runtime.body["result"][0]["fileName"], source_url);
    // Obsrv's Spark runtime joins its API address and "/v2/files/url-access" with a slash more.
    let spark = app.post_json("//v2/files/url-access", bare).await;
    assert_eq!(spark.status, StatusCode::OK, "{}", spark.text);
    assert!(runtime.body["params"].get("msgid").is_none(), "{}", runtime.text);
    let original_id =
        url_access_body(&[&source_url], "read").to_string().replace("api.files.generate.url", "api.files.generate-url");
    let original_id = app.post_json("/v2/files/url-access", serde_json::from_str(&original_id).unwrap()).await;
    assert_eq!(original_id.status, StatusCode::OK, "{}", original_id.text);
    let empty_name = app.post_json("/v2/files/url-access", json!({"request": {"files": [""], "access": "read"}})).await;
    assert_eq!(
        empty_name.body["error"]["message"],
        "#properties/request/properties/files/items/minLength must NOT have fewer than 1 characters"
    );
    let no_files = app.post_json("/v2/files/url-access", json!({"request": {"access": "read"}})).await;
    assert_eq!(no_files.body["error"]["message"], "#properties/request/required must have required property 'files'");
}

/// What Obsrv's web console does, with access control on and its own tokens: register the file
/// under the form field `files`, list with an empty request, read the new row by id.
#[tokio::test]
async fn the_console_flow_with_its_own_tokens() {
    let app = app_with(TokenRules::default()).await;
    let admin = mint(&keys().0, None, console_claims(&["admin"]));
    let viewer = mint(&keys().0, None, console_claims(&["viewer"]));
    let register = |token: String| {
        let bytes = Package::single_tenant("kafka-connector", "1.0.0").tar_gz();
        let form = reqwest::multipart::Form::new()
            .part("files", reqwest::multipart::Part::bytes(bytes).file_name("kafka-connector-1.0.0.tar.gz"));
        app.client.post(app.url("/v2/connector/register")).header("x-user-token", token).multipart(form).send()
    };
    let refused = TestApp::answer(register(viewer.clone()).await.unwrap()).await;
    assert_refused(&refused, "api.connector.register", StatusCode::FORBIDDEN, "FORBIDDEN ACCESS", WRITERS_ONLY);
    let registered = TestApp::answer(register(admin).await.unwrap()).await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.text);
    assert_eq!(registered.body["result"]["message"], "connector registered successfully.");

    let list = app.client.post(app.url("/v2/connectors/list")).header("x-user-token", &viewer);
    let list = TestApp::answer(list.json(&list_body(json!({}))).send().await.unwrap()).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["result"]["count"], 1);
    let id = list.body["result"]["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "kafka-connector-1.0.0");
    let read = app.client.get(app.url(&format!("/v2/connectors/read/{id}"))).header("x-user-token", &viewer);
    let read = TestApp::answer(read.send().await.unwrap()).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["result"]["id"], id);
    assert_eq!(read.body["result"]["status"], "Live");
    assert!(read.body["result"]["ui_spec"].is_object(), "{}", read.text);
}

/// The audit events of the local server: each committed registration's event reaches the
/// JSON-lines file of the data folder, naming the token's subject and the route; a refused one
/// leaves none.
#[tokio::test]
async fn committed_registrations_yield_one_audit_event_each_naming_the_caller() {
    let app = secured_app().await;
    let events = app.data_dir().unwrap().join("audit-events.jsonl");
    let lines = || {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let viewer = mint(&keys().0, None, claims(&["viewer"]));
    assert_eq!(register_as(&app, &viewer).await.status, StatusCode::FORBIDDEN);
    let mut manager_claims = claims(&["dataset_manager"]);
    manager_claims["sub"] = json!("alice@example.org");
    let manager = mint(&keys().0, None, manager_claims);
    assert_eq!(register_as(&app, &manager).await.status, StatusCode::OK);
    assert_eq!(register_as(&app, &manager).await.status, StatusCode::OK);
    // The dispatcher appends right after each commit.
    for _ in 0..100 {
        if lines().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let lines = lines();
    assert_eq!(lines.len(), 2, "one event per committed registration: {lines:?}");
    for line in &lines {
        assert_eq!(line["source"], "connector-registry");
        assert_eq!(line["detail-type"], "Connector registered");
        assert_eq!(line["detail"]["subject"], "alice@example.org", "the caller, from the token");
        assert_eq!(line["detail"]["route"], "POST /v2/connector/register");
        assert_eq!(
            line["detail"]["rows"],
            json!([{"id": "kafka-connector-1.0.0", "connector_id": "kafka-connector", "version": "1.0.0"}])
        );
        assert_eq!(line["detail"]["sha256"].as_str().map(str::len), Some(64));
    }
    assert_ne!(lines[0]["id"], lines[1]["id"], "each event has its own id");
}

/// Status transitions take the roles of register, and their audit event names the caller, the
/// route, the transition and its reason.
#[tokio::test]
async fn status_transitions_are_for_writers_and_their_events_name_the_caller() {
    let app = secured_app().await;
    let mut manager_claims = claims(&["dataset_manager"]);
    manager_claims["sub"] = json!("alice@example.org");
    let manager = mint(&keys().0, None, manager_claims);
    assert_eq!(register_as(&app, &manager).await.status, StatusCode::OK);
    let transition = |token: String, status: &str| {
        let body = transition_body("kafka-connector-1.0.0", status, Some("end of support"));
        let request = app.client.post(app.url("/v2/connectors/status-transition")).bearer_auth(token).json(&body);
        async move { TestApp::answer(request.send().await.unwrap()).await }
    };
    let viewer = mint(&keys().0, None, claims(&["viewer", "dataset_creator"]));
    let refused = transition(viewer, "Retire").await;
    assert_refused(
        &refused,
        "api.connectors.status-transition",
        StatusCode::FORBIDDEN,
        "FORBIDDEN ACCESS",
        WRITERS_ONLY,
    );
    assert_eq!(app.all_rows_unchecked().await.len(), 1);
    let retired = transition(manager, "Retire").await;
    assert_eq!(retired.status, StatusCode::OK, "{}", retired.text);

    let events = app.data_dir().unwrap().join("audit-events.jsonl");
    let mut changed = None;
    for _ in 0..100 {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        changed = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|line| line["detail-type"] == "Connector status changed");
        if changed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let changed = changed.expect("the transition's audit event");
    let detail = &changed["detail"];
    assert_eq!(
        (&detail["subject"], &detail["route"]),
        (&json!("alice@example.org"), &json!("POST /v2/connectors/status-transition"))
    );
    assert_eq!((&detail["status"], &detail["reason"]), (&json!("Retire"), &json!("end of support")));
    assert_eq!(detail["retired_ids"], json!(["kafka-connector-1.0.0"]));
}
