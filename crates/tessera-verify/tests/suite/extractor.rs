//! `VerifiedToken` through a real axum router: 401, 200, 503 and a missing layer.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tessera_verify::VerifiedToken;
use tower::ServiceExt as _;

use crate::mock::Mock;
use crate::tokens::verifier;

async fn whoami(VerifiedToken(claims): VerifiedToken) -> Json<Value> {
    Json(json!({ "sub": claims.sub, "scope": claims.scope, "sid": claims.sid }))
}

async fn call(app: &Router, authorization: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::get("/whoami");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, challenge, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_extractor_answers_401_200_and_503() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    mock.wait_for_streams(1).await;
    let app = Router::new().route("/whoami", get(whoami)).layer(v.layer());
    let token = mock.sign(&mock.claims("j"));
    let invalid = (
        StatusCode::UNAUTHORIZED,
        Some(r#"Bearer error="invalid_token""#.to_owned()),
        json!({ "error": "invalid_token" }),
    );

    assert_eq!(call(&app, None).await, invalid);
    assert_eq!(call(&app, Some("Bearer not-a-token")).await, invalid);
    assert_eq!(call(&app, Some(&format!("Basic {token}"))).await, invalid);
    assert_eq!(
        call(&app, Some(&format!("DPoP {token}"))).await,
        (
            StatusCode::UNAUTHORIZED,
            Some(r#"DPoP error="invalid_token", algs="EdDSA ES256""#.to_owned()),
            json!({ "error": "invalid_token" }),
        ),
        "an unbound token presented as DPoP (tests/suite/dpop.rs has the bound ones)"
    );
    assert_eq!(
        call(&app, Some(&format!("Bearer {token}"))).await,
        (
            StatusCode::OK,
            None,
            json!({ "sub": "alice", "scope": "read write", "sid": "sid-1" })
        )
    );
    assert_eq!(
        call(&app, Some(&format!("bearer {token}"))).await.0,
        StatusCode::OK
    );

    mock.set_down(true);
    let started = Instant::now();
    loop {
        let (status, challenge, body) = call(&app, Some(&format!("Bearer {token}"))).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(challenge, None);
            assert_eq!(body, json!({ "error": "temporarily_unavailable" }));
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "never went stale"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mock.set_down(false);
    let started = Instant::now();
    while call(&app, Some(&format!("Bearer {token}"))).await.0 != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_router_without_the_layer_is_a_server_error_not_an_open_door() {
    let mock = Mock::start().await;
    let token = mock.sign(&mock.claims("j"));
    let app = Router::new().route("/whoami", get(whoami));
    let (status, _, body) = call(&app, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, json!({ "error": "server_error" }));
}
