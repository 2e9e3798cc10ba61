//! Token inspection: decode any token *without trusting it* and flag risky choices, for
//! `tessera token inspect` and audits.
//!
//! Design decision: inspection is pure and never verifies — it cannot, having no key — so its
//! output is advice about how a token was made (`none`, HMAC, lifetime, missing `exp`/`aud`,
//! key-reference headers), never a statement that the token is valid. The one exception
//! proves a weakness rather than trust: an HMAC-signed JWT is tried against a list of commonly
//! used secrets ([`weak_secrets`]), and a secret that verifies is reported as DANGER. Opaque
//! Tessera tokens are classified by prefix and their shape and checksum checked
//! ([`OpaqueToken::parse`]), which needs no store.

pub mod weak_secrets;

use std::fmt;

use serde_json::{Map, Value};

use crate::jose::decode_unverified_dangerously;
use crate::opaque::OpaqueToken;
use crate::time::UnixTime;
use crate::token::TokenKind;

/// Longest lifetime (`exp - iat`) not flagged, in seconds.
const LONG_LIFETIME_SECS: i64 = 3600;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// A risky choice.
    Warning,
    /// A token that must not be trusted as made.
    Danger,
}

impl Severity {
    /// Upper-case label for reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "INFO",
            Self::Warning => "WARNING",
            Self::Danger => "DANGER",
        }
    }
}

/// One observation about a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// What was found and why it matters.
    pub message: String,
}

/// The result of inspecting a token. `Display` renders a human report.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// What the token looks like (`None`: not recognisable).
    pub kind: Option<TokenKind>,
    /// The decoded (untrusted) JOSE header, for JWTs.
    pub header: Option<Value>,
    /// The decoded (untrusted) claims, for JWTs.
    pub claims: Option<Value>,
    /// Everything noticed, in the order checked.
    pub findings: Vec<Finding>,
}

impl Inspection {
    /// The most serious finding's severity, if any.
    #[must_use]
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    fn note(&mut self, severity: Severity, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            message: message.into(),
        });
    }
}

/// Inspects `token` at time `now` without verifying it.
#[must_use]
pub fn inspect(token: &str, now: UnixTime) -> Inspection {
    let token = token.trim();
    let mut report = Inspection {
        kind: TokenKind::of(token),
        header: None,
        claims: None,
        findings: Vec::new(),
    };
    match report.kind {
        Some(
            kind @ (TokenKind::Session
            | TokenKind::Refresh
            | TokenKind::ClientSecret
            | TokenKind::AuthorizationCode),
        ) => {
            check_opaque(&mut report, kind, token);
            return report;
        }
        Some(TokenKind::Jwt) => {}
        None => {
            report.note(
                Severity::Info,
                "not a compact JWT (three dot-separated segments) nor a Tessera token",
            );
            return report;
        }
    }
    match decode_unverified_dangerously(token) {
        Ok((header, claims)) => {
            let signature_empty = token.rsplit('.').next().is_none_or(str::is_empty);
            check_header(&mut report, &header, signature_empty);
            if let Some(alg) = header.get("alg").and_then(Value::as_str) {
                check_weak_secret(&mut report, alg, token);
            }
            match claims.as_object() {
                Some(map) => check_claims(&mut report, map, now),
                None => report.note(Severity::Warning, "payload is JSON but not a claims object"),
            }
            report.header = Some(header);
            report.claims = Some(claims);
        }
        Err(e) => report.note(
            Severity::Danger,
            format!("cannot be decoded strictly ({e}); Tessera would refuse it"),
        ),
    }
    report
}

/// An opaque token is only ever checked by its issuer, but its shape and checksum can be
/// checked by anyone. A broken one is a WARNING, not a DANGER: Tessera refuses it before any
/// store lookup, so it can grant nothing to anyone; it means a truncated copy, a mistyped or
/// hand-edited token, or a string that only borrowed the prefix.
fn check_opaque(report: &mut Inspection, kind: TokenKind, token: &str) {
    match OpaqueToken::parse(kind, token) {
        Ok(_) if kind == TokenKind::Session => report.note(
            Severity::Info,
            "opaque session token: only the issuing server can check or revoke it",
        ),
        Ok(_) if kind == TokenKind::Refresh => report.note(
            Severity::Info,
            "opaque refresh token: single use, rotated by the issuing server",
        ),
        Ok(_) => report.note(
            Severity::Info,
            "OAuth client secret: authenticates a registered client to its issuing server, \
             which keeps only its hash; keep it like a password",
        ),
        Err(e) => report.note(
            Severity::Warning,
            format!(
                "malformed {} ({e}): corrupted, truncated or edited; Tessera refuses it \
                 without a lookup, so it grants nothing",
                kind.as_str()
            ),
        ),
    }
}

/// An HMAC secret anyone can guess lets anyone forge tokens: the one finding inspection can
/// prove rather than suspect.
fn check_weak_secret(report: &mut Inspection, alg: &str, token: &str) {
    if let Some(weak) = weak_secrets::find(alg, token) {
        report.note(
            Severity::Danger,
            format!(
                "the {alg} secret is {:?} ({}): it verifies this token, so anyone can forge \
                 tokens; replace the secret and revoke what it signed",
                weak.secret,
                weak.source.describe()
            ),
        );
    }
}

fn check_header(report: &mut Inspection, header: &Value, signature_empty: bool) {
    let alg = header.get("alg").and_then(Value::as_str);
    match alg {
        None => report.note(Severity::Danger, "no \"alg\" in the header"),
        Some(a) if a.eq_ignore_ascii_case("none") => report.note(
            Severity::Danger,
            format!(
                "alg \"{a}\": the token is unsigned and anyone can forge it; Tessera refuses it"
            ),
        ),
        Some(a) if a.starts_with("HS") => {
            report.note(
                Severity::Warning,
                format!(
                    "alg {a} is symmetric: every verifier holds the signing secret, and the key's \
                     strength cannot be checked without it (Tessera refuses keys under 256 bits)"
                ),
            );
            if signature_empty {
                report.note(
                    Severity::Danger,
                    format!("alg {a} with an empty signature: the MAC is missing"),
                );
            }
        }
        Some(a) if crate::jose::Algorithm::parse(a).is_none() => {
            report.note(
                Severity::Warning,
                format!("alg {a} is not supported by Tessera"),
            );
        }
        Some(_) => {}
    }
    if signature_empty {
        report.note(
            Severity::Danger,
            "the signature segment is empty: the token is unsigned",
        );
    }
    if header.get("kid").is_none() {
        report.note(
            Severity::Warning,
            "no \"kid\": verifiers cannot pick a key by id, key rotation is harder",
        );
    }
    for name in ["jku", "x5u", "jwk", "x5c"] {
        if header.get(name).is_some() {
            report.note(
                Severity::Warning,
                format!("header \"{name}\" names a key source: verifiers that follow it can be tricked (Tessera ignores it)"),
            );
        }
    }
    if header.get("crit").is_some() {
        report.note(
            Severity::Warning,
            "header \"crit\" present: Tessera refuses critical extensions",
        );
    }
    if header.get("typ").and_then(Value::as_str).is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        report.note(Severity::Info, "typ at+jwt: an RFC 9068 access token");
    }
}

fn integer(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

fn check_claims(report: &mut Inspection, claims: &Map<String, Value>, now: UnixTime) {
    let exp = integer(claims, "exp");
    let iat = integer(claims, "iat");
    match (claims.get("exp"), exp) {
        (None, _) => report.note(Severity::Danger, "no \"exp\": the token never expires"),
        (Some(_), None) => report.note(Severity::Warning, "\"exp\" is not an integer NumericDate"),
        (Some(_), Some(exp)) => {
            let left = UnixTime(exp).since(now);
            if left <= 0 {
                report.note(
                    Severity::Warning,
                    format!("expired {}s ago (exp {exp})", -left),
                );
            } else {
                report.note(Severity::Info, format!("expires in {left}s (exp {exp})"));
            }
        }
    }
    if let (Some(exp), Some(iat)) = (exp, iat) {
        let lifetime = UnixTime(exp).since(UnixTime(iat));
        if lifetime > LONG_LIFETIME_SECS {
            report.note(
                Severity::Warning,
                format!("long lifetime: {lifetime}s (over {LONG_LIFETIME_SECS}s); a stolen token stays useful that long"),
            );
        }
    }
    if claims.get("aud").is_none() {
        report.note(
            Severity::Warning,
            "no \"aud\": any service that trusts the issuer would accept it",
        );
    }
    if integer(claims, "nbf").is_some_and(|nbf| nbf > now.0) {
        report.note(Severity::Info, "not valid yet (nbf in the future)");
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kind: {}",
            self.kind.map_or("unknown", TokenKind::as_str)
        )?;
        if let Some(header) = &self.header {
            writeln!(f, "header (unverified): {header}")?;
        }
        if let Some(claims) = &self.claims {
            writeln!(f, "claims (unverified): {claims}")?;
        }
        if self.findings.is_empty() {
            writeln!(f, "findings: none")?;
        } else {
            writeln!(f, "findings:")?;
            for finding in &self.findings {
                writeln!(f, "  [{}] {}", finding.severity.as_str(), finding.message)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jose::{Algorithm, SigningKey, b64};

    const NOW: UnixTime = UnixTime(1_700_000_000);

    fn unsigned(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        )
    }

    fn has(report: &Inspection, severity: Severity, needle: &str) -> bool {
        report
            .findings
            .iter()
            .any(|f| f.severity == severity && f.message.contains(needle))
    }

    #[test]
    fn opaque_tokens_are_named_and_their_checksum_checked() {
        for kind in TokenKind::OPAQUE {
            let token = OpaqueToken::generate(kind).unwrap();
            let good = token.expose_secret();
            let r = inspect(good, NOW);
            assert_eq!(r.kind, Some(kind));
            assert_eq!(r.worst(), Some(Severity::Info), "{r}");
            // Change one character of the body: the checksum no longer matches.
            let mut chars: Vec<char> = good.chars().collect();
            chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
            let corrupted: String = chars.into_iter().collect();
            let r = inspect(&corrupted, NOW);
            assert_eq!(r.kind, Some(kind));
            assert!(has(&r, Severity::Warning, "checksum mismatch"), "{r}");
            assert!(has(&r, Severity::Warning, "malformed"), "{r}");
            let r = inspect(&good[..20], NOW);
            assert!(has(&r, Severity::Warning, "malformed"), "{r}");
        }
        assert_eq!(inspect("tss_abc", NOW).kind, Some(TokenKind::Session));
        assert_eq!(inspect("trt_abc", NOW).kind, Some(TokenKind::Refresh));
        let secret = OpaqueToken::generate(TokenKind::ClientSecret).unwrap();
        let r = inspect(secret.expose_secret(), NOW);
        assert!(has(&r, Severity::Info, "OAuth client secret"), "{r}");
        let r = inspect("hello", NOW);
        assert_eq!(r.kind, None);
        assert!(r.header.is_none() && r.claims.is_none());
    }

    #[test]
    fn a_guessable_hmac_secret_is_danger_and_named() {
        let claims = json!({"aud": "a", "iat": NOW.0, "exp": NOW.0 + 60});
        let forge = |secret: &[u8]| {
            let input = format!(
                "{}.{}",
                b64::encode(br#"{"alg":"HS256","kid":"k"}"#),
                b64::encode(claims.to_string().as_bytes())
            );
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
            format!("{input}.{}", b64::encode(tag.as_ref()))
        };
        for secret in ["secret", "your-256-bit-secret"] {
            let r = inspect(&forge(secret.as_bytes()), NOW);
            assert!(
                has(&r, Severity::Danger, &format!("secret is \"{secret}\"")),
                "{r}"
            );
            assert!(has(&r, Severity::Danger, "documented example"), "{r}");
        }
        let random = SigningKey::generate(Algorithm::HS256, "k".into()).unwrap();
        let r = inspect(&random.sign_compact("JWT", &claims).unwrap(), NOW);
        assert!(
            !r.findings.iter().any(|f| f.message.contains("secret is")),
            "{r}"
        );
        assert_eq!(r.worst(), Some(Severity::Warning), "{r}");
    }

    #[test]
    fn a_good_access_token_has_no_warnings() {
        let key = SigningKey::generate(Algorithm::EdDSA, "k1".into()).unwrap();
        let token = key
            .sign_compact(
                "at+jwt",
                &json!({"iss": "i", "aud": "api", "iat": NOW.0, "exp": NOW.0 + 600}),
            )
            .unwrap();
        let r = inspect(&token, NOW);
        assert_eq!(r.kind, Some(TokenKind::Jwt));
        assert_eq!(r.worst(), Some(Severity::Info), "{r}");
        assert!(r.to_string().contains("expires in 600s"));
    }

    #[test]
    fn none_in_any_case_and_unsigned() {
        for alg in ["none", "None", "NONE"] {
            let r = inspect(
                &unsigned(
                    &json!({"alg": alg}),
                    &json!({"exp": NOW.0 + 10, "aud": "a"}),
                ),
                NOW,
            );
            assert!(
                has(&r, Severity::Danger, "unsigned and anyone can forge"),
                "{r}"
            );
            assert!(has(&r, Severity::Danger, "signature segment is empty"));
            assert!(has(&r, Severity::Warning, "no \"kid\""));
        }
    }

    #[test]
    fn hmac_and_risky_headers() {
        let header = json!({"alg": "HS256", "kid": "k", "jku": "https://x", "x5u": "https://y",
            "jwk": {}, "x5c": [], "crit": ["b64"]});
        let r = inspect(
            &unsigned(&header, &json!({"exp": NOW.0 + 10, "aud": "a"})),
            NOW,
        );
        assert!(has(&r, Severity::Warning, "symmetric"));
        assert!(has(&r, Severity::Danger, "MAC is missing"));
        for name in ["jku", "x5u", "jwk", "x5c"] {
            assert!(
                has(&r, Severity::Warning, &format!("header \"{name}\"")),
                "{name}"
            );
        }
        assert!(has(&r, Severity::Warning, "crit"));
        let signed = format!(
            "{}AAAA",
            unsigned(&json!({"alg": "HS256", "kid": "k"}), &json!({}))
        );
        let r = inspect(&signed, NOW);
        assert!(
            has(&r, Severity::Warning, "symmetric") && !has(&r, Severity::Danger, "MAC is missing")
        );
    }

    #[test]
    fn claim_findings() {
        let h = json!({"alg": "EdDSA", "kid": "k"});
        let r = inspect(&unsigned(&h, &json!({"sub": "x"})), NOW);
        assert!(has(&r, Severity::Danger, "never expires"));
        assert!(has(&r, Severity::Warning, "no \"aud\""));
        let r = inspect(
            &unsigned(
                &h,
                &json!({"iat": NOW.0 - 100, "exp": NOW.0 - 1, "aud": "a"}),
            ),
            NOW,
        );
        assert!(has(&r, Severity::Warning, "expired 1s ago"));
        let r = inspect(
            &unsigned(
                &h,
                &json!({"iat": NOW.0, "exp": NOW.0 + 86_400, "aud": "a"}),
            ),
            NOW,
        );
        assert!(has(&r, Severity::Warning, "long lifetime: 86400s"));
        let r = inspect(
            &unsigned(&h, &json!({"iat": NOW.0, "exp": NOW.0 + 3600, "aud": "a"})),
            NOW,
        );
        assert!(!has(&r, Severity::Warning, "long lifetime"));
        let r = inspect(&unsigned(&h, &json!({"exp": "soon", "aud": "a"})), NOW);
        assert!(has(&r, Severity::Warning, "not an integer"));
    }

    #[test]
    fn undecodable_jwt_is_reported_not_panicking() {
        for token in ["a.b.c", "eyJhbGciOiJub25lIn0=.e30.", "..", "e30.e30.e30"] {
            let r = inspect(token, NOW);
            assert_eq!(r.kind, Some(TokenKind::Jwt));
            assert!(!r.findings.is_empty(), "{token}");
        }
        let report = inspect("a.b.c", NOW).to_string();
        assert!(report.starts_with("kind: jwt\n") && report.contains("[DANGER]"));
    }
}
