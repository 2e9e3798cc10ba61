//! The Prometheus text exposition format, version 0.0.4: each family's `# HELP` and `# TYPE`
//! once, before its samples; label values escaped (`\\`, `\"`, `\n`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::http::LATENCY_BUCKETS;
use super::{AuthOutcome, Metrics};
use crate::revocations::FeedState;
use crate::state::AppState;

/// A text exposition being written.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{label}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.0.push_str("\\\\"),
                        '"' => self.0.push_str("\\\""),
                        '\n' => self.0.push_str("\\n"),
                        c => self.0.push(c),
                    }
                }
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn counter(&mut self, name: &str, help: &str, value: &AtomicU64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value.load(Ordering::Relaxed));
    }
}

/// The flows' plain counters: name, help, value.
fn counters(m: &Metrics) -> [(&'static str, &'static str, &AtomicU64); 8] {
    [
        (
            "tessera_password_checks_total",
            "Password verifications run (Argon2id), real or against the dummy hash.",
            &m.password_checks,
        ),
        (
            "tessera_access_tokens_issued_total",
            "Access tokens issued.",
            &m.access_tokens_issued,
        ),
        (
            "tessera_refresh_rotations_total",
            "Refresh tokens rotated.",
            &m.refresh_rotations,
        ),
        (
            "tessera_refresh_grace_replays_total",
            "Rotated refresh tokens presented again within the grace window.",
            &m.refresh_grace_replays,
        ),
        (
            "tessera_password_hashing_refused_total",
            "Logins and registrations refused (503) because the hashing queue was full.",
            &m.hashing_refused,
        ),
        (
            "tessera_registrations_throttled_total",
            "Registrations refused by the rate limiter.",
            &m.registrations_throttled,
        ),
        (
            "tessera_refresh_reuse_detected_total",
            "Refresh-token reuse detections (each revokes its session tree).",
            &m.refresh_reuse_detected,
        ),
        (
            "tessera_revocations_recorded_total",
            "Revocations recorded by this instance.",
            &m.revocations_recorded,
        ),
    ]
}

/// The whole exposition of `/metrics`.
#[must_use]
pub fn render(state: &AppState) -> String {
    let m = &state.metrics;
    let mut out = Exposition(String::with_capacity(16 * 1024));
    http(&mut out, m);

    let name = "tessera_authentications_total";
    out.family(
        name,
        "counter",
        "Authentications of routes that need a caller (userinfo, sessions, password, admin), by outcome.",
    );
    for outcome in AuthOutcome::ALL {
        out.sample(name, &[("reason", outcome.as_str())], m.auth.get(outcome));
    }

    let name = "tessera_logins_total";
    out.family(
        name,
        "counter",
        "Password logins (cookie session or password grant) by result.",
    );
    for (result, c) in [
        ("ok", &m.logins_ok),
        ("failed", &m.logins_failed),
        ("throttled", &m.logins_throttled),
    ] {
        out.sample(name, &[("result", result)], c.load(Ordering::Relaxed));
    }
    for (name, help, c) in counters(m) {
        out.counter(name, help, c);
    }

    if let Some((count, at)) = m.stored_sessions() {
        out.family(
            "tessera_sessions_active",
            "gauge",
            "Sessions in the store after the last sweep of dead ones (counted once a minute, all instances' sessions).",
        );
        out.sample("tessera_sessions_active", &[], count);
        out.family(
            "tessera_sessions_counted_timestamp_seconds",
            "gauge",
            "When tessera_sessions_active was counted (Unix time).",
        );
        out.sample("tessera_sessions_counted_timestamp_seconds", &[], at.0);
    }

    let view = state.revocations();
    out.family(
        "tessera_revocation_list_entries",
        "gauge",
        "Entries of the in-memory revocation list (jti, sid, user cutoff, kid).",
    );
    out.sample("tessera_revocation_list_entries", &[], view.len());
    let feed = view.feed_state();
    if feed != FeedState::None {
        out.family(
            "tessera_revocation_feed_up",
            "gauge",
            "1 while the store's revocation feed is live, 0 while it is down (credentials are then checked against the store).",
        );
        out.sample(
            "tessera_revocation_feed_up",
            &[],
            u8::from(feed == FeedState::Live),
        );
        out.family(
            "tessera_revocation_feed_lag_seconds",
            "gauge",
            "How long the in-memory revocation list may have missed revocations: 0 while the feed is live, else the time since it went down.",
        );
        out.sample(
            "tessera_revocation_feed_lag_seconds",
            &[],
            view.feed_lag_secs(state.now()),
        );
        out.family(
            "tessera_revocation_feed_last_event_timestamp_seconds",
            "gauge",
            "When the feed last delivered a revocation or a (re)connection (Unix time; 0: never).",
        );
        out.sample(
            "tessera_revocation_feed_last_event_timestamp_seconds",
            &[],
            view.feed_last_event().map_or(0, |t| t.0),
        );
    }
    out.0
}

/// `tessera_http_requests_total` and `tessera_http_request_duration_seconds`.
fn http(out: &mut Exposition, m: &Metrics) {
    let series = m.http.snapshot();
    let name = "tessera_http_requests_total";
    out.family(
        name,
        "counter",
        "HTTP responses by method, route template (\"unmatched\" for no route) and status.",
    );
    for s in &series {
        for (status, count) in &s.statuses {
            let status = status.to_string();
            out.sample(
                name,
                &[
                    ("method", &s.method),
                    ("route", s.route),
                    ("status", &status),
                ],
                count,
            );
        }
    }
    let name = "tessera_http_request_duration_seconds";
    out.family(
        name,
        "histogram",
        "Time from a request's arrival to its response head, by method and route template.",
    );
    let bucket = format!("{name}_bucket");
    for s in &series {
        let labels = [("method", s.method.as_str()), ("route", s.route)];
        for (bound, count) in LATENCY_BUCKETS
            .iter()
            .map(ToString::to_string)
            .chain(std::iter::once("+Inf".to_owned()))
            .zip(&s.cumulative)
        {
            out.sample(&bucket, &[labels[0], labels[1], ("le", &bound)], count);
        }
        out.sample(&format!("{name}_sum"), &labels, s.sum_secs);
        out.sample(
            &format!("{name}_count"),
            &labels,
            s.cumulative.last().copied().unwrap_or(0),
        );
    }
}
