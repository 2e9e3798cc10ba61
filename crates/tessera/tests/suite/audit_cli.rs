#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `tessera users disable` and `tessera audit` on the real binary and an embedded store: the
//! admin commands leave their events, and `audit` prints them newest first, filtered, as text
//! or JSON lines.

use std::path::Path;
use std::process::{Output, Stdio};

use tessera_core::audit::EventKind;
use tessera_core::time::{Clock, SystemClock};
use tessera_store::open::DEFAULT_DB_FILE;
use tessera_store::sqlite::SqliteStore;
use tessera_store::{AuditEvent, AuditStore};

use crate::common::{PASSWORD, tessera};

fn run(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = tessera()
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn audit_prints_the_events_of_admin_commands_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        d,
        &["users", "create", "alice"],
        Some(&format!("{PASSWORD}\n")),
    ));
    ok(&run(
        d,
        &["users", "create", "bob"],
        Some(&format!("{PASSWORD}\n")),
    ));
    let disabled: serde_json::Value =
        serde_json::from_str(ok(&run(d, &["users", "disable", "alice"], None)).trim()).unwrap();
    assert_eq!(disabled["disabled"], true);
    ok(&run(d, &["clients", "create", "svc"], None));
    ok(&run(d, &["keys", "rotate"], None));
    // A login failure as the server would record it, written to the same store.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::open(&d.join(DEFAULT_DB_FILE)).await.unwrap();
        let event = AuditEvent {
            at: SystemClock.now(),
            kind: EventKind::LoginFailed,
            user: Some("bob".into()),
            ip: Some("192.0.2.1".into()),
            detail: "bad_password".into(),
        };
        store.append_event(&event).await.unwrap();
    });

    let text = ok(&run(d, &["audit"], None));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(
        lines[0].contains("login_failed")
            && lines[0].contains("bob")
            && lines[0].contains("192.0.2.1")
            && lines[0].ends_with("bad_password"),
        "newest first: {text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("user_disabled") && l.contains("alice")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.contains("client_created")), "{text}");
    assert!(lines.iter().any(|l| l.contains("key_rotated")), "{text}");
    assert_eq!(
        lines.iter().filter(|l| l.contains(" admin ")).count(),
        3,
        "{text}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.len() > 20 && l.as_bytes()[10] == b'T' && l[..20].ends_with('Z')),
        "{text}"
    );

    let json = ok(&run(d, &["audit", "--json", "--user", "Alice"], None));
    let events: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{json}");
    assert_eq!(events[0]["kind"], "user_disabled");
    assert_eq!(events[0]["user"], "alice");
    assert!(events[0]["at"].as_i64().is_some());
    let kinds = ok(&run(
        d,
        &["audit", "--kind", "key_rotated", "--since", "1h"],
        None,
    ));
    assert_eq!(kinds.lines().count(), 1, "{kinds}");
    let limited = ok(&run(d, &["audit", "--limit", "2"], None));
    assert_eq!(limited.lines().collect::<Vec<_>>(), lines[..2]);

    for bad in [
        &["audit", "--kind", "logins"][..],
        &["audit", "--since", "yesterday"],
        &["audit", "--user", "x"],
    ] {
        let out = run(d, bad, None);
        assert_ne!(out.status.code(), Some(0), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
    let unknown = run(d, &["users", "disable", "nobody"], None);
    assert_ne!(unknown.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user"));
}
