#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;

fn doc() -> Value {
    serde_json::from_str(super::json().unwrap()).unwrap()
}

/// Every (method, path) the API serves, and the pages' OAuth endpoints (the authorization
/// endpoint is a page, but part of the OAuth surface), as lower-case method names.
fn routes() -> Vec<(String, &'static str)> {
    let oauth_pages = crate::pages::route_table()
        .into_iter()
        .filter(|(_, path)| path.starts_with("/oauth/"));
    crate::routes::route_table()
        .into_iter()
        .chain(oauth_pages)
        .map(|(verb, path)| (verb.method().as_str().to_ascii_lowercase(), path))
        .collect()
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

#[test]
fn openapi_documents_exactly_the_routed_operations() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0", "an OpenAPI 3.1 document");
    let paths = doc["paths"].as_object().expect("paths object");
    let routes = routes();
    for (method, path) in &routes {
        assert!(
            paths.get(*path).and_then(|p| p.get(method)).is_some(),
            "{} {path} is routed but not documented: annotate its handler with \
             #[utoipa::path] and list it in ApiDoc's paths",
            method.to_uppercase()
        );
    }
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            assert!(
                routes.iter().any(|(m, p)| m == method && p == path),
                "{} {path} is documented but not routed",
                method.to_uppercase()
            );
        }
    }
}

/// The grant types the token endpoint documents are exactly the ones `GrantType` has.
#[test]
fn openapi_documents_exactly_the_grant_types() {
    let doc = doc();
    let documented: Vec<&str> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|schema| schema["properties"]["grant_type"]["enum"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(documented, crate::service::GrantType::supported());
}

#[test]
fn openapi_declares_the_four_credential_schemes() {
    let doc = doc();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerJwt"]["bearerFormat"], "JWT");
    assert_eq!(schemes["bearerSession"]["scheme"], "bearer");
    assert_eq!(schemes["sessionCookie"]["in"], "cookie");
    assert_eq!(
        schemes["sessionCookie"]["name"],
        crate::extract::SESSION_COOKIE
    );
    assert_eq!(schemes["csrfToken"]["in"], "header");
    assert!(
        schemes["csrfToken"]["name"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(crate::auth::CSRF_HEADER.as_str())
    );
    assert_eq!(schemes["clientBasic"]["scheme"], "basic");
    let error = &doc["components"]["schemas"]["Error"]["required"];
    assert_eq!(error, &serde_json::json!(["error", "error_description"]));
}

/// Every security requirement names a declared scheme, so a typo in an annotation is not
/// silently an unauthenticated route.
#[test]
fn every_security_requirement_names_a_declared_scheme() {
    let doc = doc();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for requirement in op["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: {name}");
                }
            }
        }
    }
}

/// Every error code the API can answer with is in the `Error` schema and explained by a
/// shared response.
#[test]
fn every_error_code_is_documented_in_a_shared_response() {
    let doc = doc();
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(codes.len(), 20, "{codes:?}");
    let responses = doc["components"]["responses"].as_object().unwrap();
    for code in codes {
        let code = format!("`{}`", code.as_str().unwrap());
        assert!(
            responses
                .values()
                .any(|r| r["description"].as_str().unwrap().contains(&code)),
            "no shared response explains {code}"
        );
    }
    for (name, response) in responses {
        assert_eq!(
            response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
            "{name}"
        );
    }
}

/// Every `$ref` points at something the document defines.
#[test]
fn every_reference_resolves() {
    fn walk(v: &Value, doc: &Value, seen: &mut usize) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    let pointer = r.strip_prefix('#').expect("a local reference");
                    assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
                    *seen += 1;
                }
                o.values().for_each(|v| walk(v, doc, seen));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, doc, seen)),
            _ => {}
        }
    }
    let doc = doc();
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 50, "only {seen} references");
}

/// Operation ids are unique (clients generate method names from them) and every operation
/// has a summary.
#[test]
fn every_operation_has_a_unique_id_and_a_summary() {
    let doc = doc();
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ids.push(op["operationId"].as_str().unwrap().to_owned());
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path}"
            );
        }
    }
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operationId");
}
