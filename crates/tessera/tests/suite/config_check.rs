//! `tessera config check FILE`: a valid file is summarised (exit 0); an invalid one gets
//! every problem listed (exit 1), with no password of a URL repeated; and a file `serve`
//! refuses is one `config check` refuses.

use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::{TEST_KEK, tessera};

fn check(file: &Path) -> Output {
    tessera()
        .args(["config", "check"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_valid_file_is_summarised_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let kek = dir.path().join("kek");
    std::fs::write(&kek, TEST_KEK).unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(
        &file,
        format!(
            r#"
listen = "0.0.0.0:8080"
issuer = "https://auth.example"
store = "postgres://tessera:hunter2-secret@db.internal/tessera"
redis = ["redis://a:6379", "redis://b:6379"]
namespace = "prod"
refresh_grace = 5
trusted_proxies = ["10.0.0.0/8", "fd00::/8"]
kek_file = "{}"
key_rotation = "30d"
audiences = ["https://api.example"]
log_format = "json"
drain_timeout = 25
"#,
            kek.display()
        ),
    )
    .unwrap();
    let out = check(&file);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}{stdout}", text(&out.stderr));
    assert!(stdout.contains("valid; 12 settings"), "{stdout}");
    assert!(
        stdout.contains("store: postgres://tessera:***@db.internal/tessera"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");

    // An empty file is valid too: every default.
    std::fs::write(&file, "").unwrap();
    assert_eq!(check(&file).status.code(), Some(0));
}

#[test]
fn every_problem_of_an_invalid_file_is_reported_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    let bad_kek = dir.path().join("not-a-kek");
    std::fs::write(&bad_kek, "too short").unwrap();
    std::fs::write(
        &file,
        format!(
            r#"
listen = "nowhere"
issuer = "ftp://auth.example"
store = "mysql://root:hunter2-secret@db/tessera"
redis = ["redis://ok:6379", "notredis://u:hunter2-secret@x"]
refresh_grace = 100000
trusted_proxies = ["10.0.0.0/33"]
kek_file = "{}"
key_rotation = "1y"
log_format = "xml"
drain_timeout = 0
colour = "blue"
namespace = {{ nested = true }}
"#,
            bad_kek.display()
        ),
    )
    .unwrap();
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for key in [
        "listen:",
        "issuer:",
        "store:",
        "redis:",
        "refresh_grace:",
        "trusted_proxies:",
        "kek_file:",
        "key_rotation:",
        "log_format:",
        "drain_timeout:",
        "unknown key \"colour\"",
        "namespace must be",
    ] {
        assert!(stderr.contains(key), "no {key} in:\n{stderr}");
    }
    assert!(stderr.contains("12 problems found"), "{stderr}");
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");

    // What config check refuses, serve refuses too (before opening any store).
    let serve = tessera()
        .args(["serve", "--config"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(serve.status.code(), Some(0));
}

#[test]
fn an_unreadable_or_broken_file_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = check(&missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("reading"),
        "{}",
        text(&out.stderr)
    );
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "listen = ").unwrap();
    let out = check(&broken);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("parsing"),
        "{}",
        text(&out.stderr)
    );
}
