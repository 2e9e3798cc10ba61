#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `tessera bench` as a smoke test on the memory store: it runs, exits 0, and writes a report
//! whose tables hold every run with a rate, and SVG charts with one bar per run. Nothing here
//! asserts a speed.

use crate::common::tessera;

/// The requests/s column of the report's row for `store` and `kind`.
fn rate(report: &str, store: &str, kind: &str) -> f64 {
    let prefix = format!("| {store} | {kind} |");
    let line = report
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no row {prefix} in:\n{report}"));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    // "", store, kind, requests/s, p50, p99, p99.9, bytes/request, bytes/answer, errors, ""
    assert_eq!(cells.len(), 11, "{line}");
    cells[3].parse().unwrap()
}

/// Checks an SVG is one well-nested document: an `<svg>` root, every element closed.
fn check_svg(text: &str) -> (usize, usize) {
    let text = text.trim();
    assert!(text.starts_with("<svg "), "{text:.80}");
    assert!(text.ends_with("</svg>"), "not closed");
    let mut open: Vec<String> = Vec::new();
    let (mut rects, mut texts) = (0, 0);
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name.trim()),
                "mis-nested </{name}>"
            );
        } else {
            let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
            match name {
                "rect" => rects += 1,
                "text" => texts += 1,
                _ => {}
            }
            if !tag.ends_with('/') {
                open.push(name.to_owned());
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    (rects, texts)
}

#[test]
fn bench_quick_on_memory_writes_the_report_and_charts() {
    let out = tempfile::tempdir().unwrap();
    let result = tessera()
        .args([
            "bench",
            "--quick",
            "--stores",
            "memory",
            "--duration",
            "200ms",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    for kind in [
        "re-used JWT",
        "100 distinct JWTs",
        "one session (bearer)",
        "100 sessions (bearer)",
        "refresh (rotation)",
        "client_credentials",
    ] {
        assert!(rate(&report, "memory", kind) > 0.0, "{kind}");
    }
    assert!(report.contains("| memory | login (password grant, default Argon2id cost"));
    // Only the store asked for: no other store measured, none reported as skipped.
    for other in ["| sqlite |", "| postgres |", "| redis |", "## Skipped"] {
        assert!(!report.contains(other), "{other}");
    }
    // Memory has no feed: no propagation figure, and the report says why.
    assert!(report.contains("No store with a feed was measured."));

    let (rects, texts) =
        check_svg(&std::fs::read_to_string(out.path().join("userinfo.svg")).unwrap());
    // The background and one bar per run; a title, and a label and a value per bar.
    assert_eq!(rects, 1 + 4);
    assert_eq!(texts, 1 + 2 * 4);
    let (rects, _) = check_svg(&std::fs::read_to_string(out.path().join("issuance.svg")).unwrap());
    assert_eq!(rects, 1 + 3);
    assert!(report.contains("![userinfo.svg](userinfo.svg)"));
}

#[test]
fn bench_refuses_an_unknown_store() {
    let result = tessera()
        .args(["bench", "--stores", "memory,oracle"])
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("oracle"));
}
