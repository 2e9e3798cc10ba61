//! The bench report: `report.md` (every figure, as tables) and SVG bar charts of the main
//! ones.
//!
//! Design decision: the charts are drawn element by element (rectangles and `<text>`) with
//! plotters' SVG backend and its built-in text-size estimate, so no font file or system font
//! library is needed to render them; the viewer's own fonts draw the labels.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use plotters::prelude::*;

use super::Results;
use crate::loadgen::Outcome;

/// Writes the report and the charts into `dir`; returns the files written.
pub fn write(dir: &Path, results: &Results, took: Duration) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let userinfo: Vec<(String, f64)> = results
        .userinfo
        .iter()
        .map(|r| (format!("{} · {}", r.store, r.kind), r.outcome.rate()))
        .collect();
    if !userinfo.is_empty() {
        let path = dir.join("userinfo.svg");
        bar_chart(&path, "GET /v1/userinfo — requests/s", &userinfo)?;
        written.push(path);
    }
    let issuance: Vec<(String, f64)> = results
        .issuance
        .iter()
        .map(|r| {
            (
                format!("{} · {}", r.store, short(&r.kind)),
                r.outcome.rate(),
            )
        })
        .collect();
    if !issuance.is_empty() {
        let path = dir.join("issuance.svg");
        bar_chart(&path, "Token issuance — per second", &issuance)?;
        written.push(path);
    }
    let path = dir.join("report.md");
    std::fs::write(&path, markdown(results, took, &written))
        .with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(written)
}

fn short(kind: &str) -> &str {
    kind.split(" (").next().unwrap_or(kind)
}

fn markdown(results: &Results, took: Duration, charts: &[PathBuf]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# tessera bench\n");
    let _ = writeln!(
        md,
        "Tessera instances in this process (the server's own router and state, one loopback \
         listener each), driven over HTTP/1.1 keep-alive connections by the in-process load \
         generator. Settings: {}. Took {:.1} s.\n",
        results.settings,
        took.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "Servers and load generator share the machine's cores, so these are end-to-end \
         figures for comparing credential kinds and stores, not a capacity rating. Login \
         throttling is lifted on the bench instances (one address logs in far more often \
         than the limits allow).\n"
    );
    let _ = writeln!(md, "## GET /v1/userinfo\n");
    table(&mut md, &results.userinfo);
    let _ = writeln!(
        md,
        "\nBytes/request is the whole request as sent (request line, headers, credential); \
         the credential is most of it.\n"
    );
    let _ = writeln!(md, "## Token issuance\n");
    table(&mut md, &results.issuance);
    let _ = writeln!(
        md,
        "\nThe login figure uses the server's default password cost (Argon2id, 19 MiB, 2 \
         passes), on an instance of its own; the other instances hashed their setup \
         passwords at a cheap cost, which no figure here depends on.\n"
    );
    let _ = writeln!(md, "## Revocation propagation\n");
    if results.propagation.is_empty() {
        let _ = writeln!(md, "No store with a feed was measured.\n");
    } else {
        let _ = writeln!(
            md,
            "From the revoking call on instance A (durable write included) until instance B, \
             another `AppState` with its own connections to the same store, refuses the token \
             from memory, through the store's feed.\n"
        );
        let _ = writeln!(
            md,
            "| store, feed | n | p50 | p99 | max |\n|---|---|---|---|---|"
        );
        for p in &results.propagation {
            let q = |f: f64| {
                let n = p.delays_us.len();
                let rank = ((n.saturating_sub(1)) as f64 * f).round() as usize;
                p.delays_us.get(rank).copied().unwrap_or(0)
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                p.store,
                p.delays_us.len(),
                micros(q(0.5)),
                micros(q(0.99)),
                micros(q(1.0))
            );
        }
        md.push('\n');
    }
    if !results.skipped.is_empty() {
        let _ = writeln!(md, "## Skipped\n");
        for (store, why) in &results.skipped {
            let _ = writeln!(md, "- {store}: {why}");
        }
        md.push('\n');
    }
    if !charts.is_empty() {
        let _ = writeln!(md, "## Charts\n");
        for c in charts {
            if let Some(name) = c.file_name().and_then(|n| n.to_str()) {
                let _ = writeln!(md, "![{name}]({name})\n");
            }
        }
    }
    md
}

fn table(md: &mut String, rows: &[super::Row]) {
    let _ = writeln!(
        md,
        "| store | credential / grant | requests/s | p50 | p99 | p99.9 | bytes/request | bytes/answer | errors |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let o: &Outcome = &r.outcome;
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {} | {:.0} | {:.0} | {} |",
            r.store,
            r.kind,
            o.rate(),
            micros(o.quantile_us(0.5)),
            micros(o.quantile_us(0.99)),
            micros(o.quantile_us(0.999)),
            o.request_bytes_each(),
            o.answer_bytes_each(),
            o.errors
        );
    }
}

/// A latency in µs, or ms from 10 ms up.
pub fn micros(us: u32) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", f64::from(us) / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// A horizontal bar chart: one labelled bar per entry, its value printed at its end.
fn bar_chart(path: &Path, title: &str, bars: &[(String, f64)]) -> anyhow::Result<()> {
    const ROW: u32 = 28;
    const LABEL_W: u32 = 330;
    const WIDTH: u32 = 900;
    let rows = u32::try_from(bars.len()).unwrap_or(u32::MAX);
    let height = 60 + ROW.saturating_mul(rows) + 20;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1.0);
    let area = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    let draw = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing {}: {e}", path.display());
    area.fill(&WHITE).map_err(draw)?;
    let font = |size: f64| ("sans-serif", size).into_font().color(&BLACK);
    area.draw(&Text::new(title.to_owned(), (10, 12), font(18.0)))
        .map_err(draw)?;
    let span = f64::from(WIDTH - LABEL_W - 110);
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 50 + i32::try_from(i).unwrap_or(0) * ROW as i32;
        let len = ((value / max) * span).round() as i32;
        let x0 = LABEL_W as i32;
        area.draw(&Text::new(label.clone(), (10, y + 6), font(13.0)))
            .map_err(draw)?;
        let colour = Palette99::pick(i % 4).to_rgba();
        area.draw(&Rectangle::new(
            [(x0, y + 2), (x0 + len.max(1), y + ROW as i32 - 6)],
            colour.filled(),
        ))
        .map_err(draw)?;
        area.draw(&Text::new(
            format!("{value:.0}"),
            (x0 + len.max(1) + 6, y + 6),
            font(13.0),
        ))
        .map_err(draw)?;
    }
    area.present().map_err(draw)?;
    Ok(())
}
