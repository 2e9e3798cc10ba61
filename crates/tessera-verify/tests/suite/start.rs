//! Starting: discovery, the `--server` origin, client authentication, the first catch-up.

use std::sync::atomic::Ordering;

use tessera_core::access::AccessError;
use tessera_core::revocation::Revocation;
use tessera_verify::{Error, Verifier, VerifyError};

use crate::mock::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, Mock};

#[tokio::test]
async fn the_server_origin_replaces_the_issuers_in_every_url_jwks_uri_included() {
    // Discovery advertises a JWKS on a host that does not exist: only the rewrite reaches it.
    let issuer = "https://issuer.invalid";
    let mock = Mock::start_as(Some(issuer), Some("https://keys.invalid:8443/jwks")).await;
    let v = Verifier::builder(issuer)
        .server(&mock.url)
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await
        .unwrap();
    let c = mock.counters();
    assert_eq!(c.discovery.load(Ordering::SeqCst), 1);
    assert_eq!(c.jwks.load(Ordering::SeqCst), 1);
    assert_eq!(c.revocations.load(Ordering::SeqCst), 1);
    mock.wait_for_streams(1).await;

    let claims = v.verify(&mock.sign(&mock.claims("j"))).unwrap();
    assert_eq!(claims.iss, issuer);
    // The token's `iss` must be the issuer, not the server it was fetched from.
    let from_server = tessera_core::access::AccessClaims {
        iss: mock.url.clone(),
        ..mock.claims("j")
    };
    assert!(matches!(
        v.verify(&mock.sign(&from_server)),
        Err(VerifyError::Invalid(AccessError::WrongIssuer))
    ));
}

#[tokio::test]
async fn without_a_server_the_issuer_is_fetched_from() {
    let mock = Mock::start().await;
    let v = Verifier::builder(mock.issuer())
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await
        .unwrap();
    assert!(v.verify(&mock.sign(&mock.claims("j"))).is_ok());
}

#[tokio::test]
async fn wrong_client_credentials_or_a_foreign_discovery_document_refuse_to_start() {
    let mock = Mock::start().await;
    let wrong = Verifier::builder(mock.issuer())
        .audience(AUDIENCE)
        .client(CLIENT_ID, "not the secret")
        .start()
        .await;
    assert!(
        matches!(wrong, Err(Error::Status { status: 401, .. })),
        "{wrong:?}"
    );
    assert_eq!(mock.counters().unauthorised.load(Ordering::SeqCst), 1);

    let foreign = Verifier::builder("https://someone-else.example")
        .server(&mock.url)
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await;
    assert!(
        matches!(foreign, Err(Error::Protocol { .. })),
        "{foreign:?}"
    );

    let no_audience = Verifier::builder(mock.issuer())
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await;
    assert!(matches!(no_audience, Err(Error::Config(_))));
    let server_with_path = Verifier::builder(mock.issuer())
        .server(format!("{}/prefix", mock.url))
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await;
    assert!(matches!(server_with_path, Err(Error::Config(_))));
}

#[tokio::test]
async fn revocations_made_before_start_are_refused_from_the_first_verification() {
    let mock = Mock::start().await;
    let token = mock.sign(&mock.claims("early"));
    mock.revoke(&Revocation::Token {
        jti: "early".into(),
        expires_at: mock.claims("early").exp,
    });
    let v = Verifier::builder(mock.issuer())
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await
        .unwrap();
    assert!(matches!(v.verify(&token), Err(VerifyError::Revoked)));
    assert_eq!(
        mock.since(),
        [None],
        "the first catch-up asks for the whole list"
    );
}
