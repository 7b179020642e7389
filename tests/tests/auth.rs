//! Access control on the local server: tokens minted here with keys generated here.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use registry_shared::auth::{Authenticator, JwtVerifier};
use registry_tests::*;
use reqwest::StatusCode;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.example.org/";
const AUDIENCE: &str = "connector-registry";

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

async fn secured_app() -> TestApp {
    let verifier = JwtVerifier::from_pem(keys().0.public_pem.as_bytes(), ISSUER, AUDIENCE).unwrap();
    TestApp::spawn_with(BackendKind::Embedded, |config| config.auth = Authenticator::Jwt(Arc::new(verifier))).await
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
    assert_refused(
        &answer,
        "api.connector.register",
        StatusCode::FORBIDDEN,
        "FORBIDDEN ACCESS",
        "Access denied. User does not have permission to perform this action. \
         The following roles have access to this action: dataset_manager, admin.",
    );
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
    let verifier = JwtVerifier::from_jwks(jwks.to_string().as_bytes(), ISSUER, AUDIENCE).unwrap();
    let app =
        TestApp::spawn_with(BackendKind::Embedded, |config| config.auth = Authenticator::Jwt(Arc::new(verifier))).await;
    let token = mint(ours, Some("ours"), claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&token)).await.status, StatusCode::OK);
    let lying = mint(ours, Some("theirs"), claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&lying)).await.status, StatusCode::UNAUTHORIZED, "the kid's key must verify it");
    let unknown = mint(ours, Some("nobody"), claims(&["viewer"]));
    assert_eq!(list_as(&app, Some(&unknown)).await.status, StatusCode::UNAUTHORIZED);
}
