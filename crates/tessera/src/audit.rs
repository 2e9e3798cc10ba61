//! `tessera audit`: the security events, read from the store directly (like `tessera clients
//! list`, it needs no KEK), newest first, one per line.

use std::sync::Arc;

use anyhow::{Context, bail};
use tessera_core::audit::EventKind;
use tessera_core::time::{Clock, SystemClock, UnixTime};
use tessera_store::{AuditQuery, AuditRecord};

use crate::backends::{open_backends, runtime};
use crate::cli::AuditArgs;

/// Runs `tessera audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let kind = match args.kind.as_deref() {
        None => None,
        Some(k) => match EventKind::parse(k) {
            Some(kind) => Some(kind),
            None => bail!(
                "unknown --kind {k:?} (one of {})",
                EventKind::names().join(", ")
            ),
        },
    };
    let user = match args.user.as_deref() {
        None => None,
        Some(name) => Some(tessera_core::username::Username::parse(name)?.into_string()),
    };
    let now = SystemClock.now();
    let mut query = AuditQuery {
        user,
        kind,
        since: args.since.map(|secs| now.plus(-secs)),
        before: None,
        limit: 0,
    };
    runtime()?.block_on(async move {
        let (store, _) = open_backends(&args.store, Arc::new(SystemClock))
            .await
            .context("opening the store")?;
        let mut left = args.limit;
        let mut out = std::io::stdout().lock();
        // Page by page (the store caps a page), newest first.
        while left > 0 {
            query.limit = left;
            let page = store.events(&query).await?;
            let Some(last) = page.last() else { break };
            query.before = Some(last.seq);
            left = left.saturating_sub(u32::try_from(page.len()).unwrap_or(u32::MAX));
            for record in &page {
                let line = if args.json {
                    json_line(record)
                } else {
                    text_line(record)
                };
                use std::io::Write as _;
                writeln!(out, "{line}").context("writing to stdout")?;
            }
        }
        Ok(())
    })
}

/// `2026-11-30T09:40:12Z  login_failed  alice  192.0.2.7  bad_password`
fn text_line(record: &AuditRecord) -> String {
    let e = &record.event;
    format!(
        "{}  {:<16} {:<20} {:<15} {}",
        rfc3339(e.at),
        e.kind.as_str(),
        e.user.as_deref().unwrap_or("-"),
        e.ip.as_deref().unwrap_or("-"),
        e.detail
    )
}

fn json_line(record: &AuditRecord) -> String {
    let e = &record.event;
    serde_json::json!({
        "at": e.at.0,
        "kind": e.kind.as_str(),
        "user": e.user,
        "ip": e.ip,
        "detail": e.detail,
    })
    .to_string()
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ`: days since the epoch to a proleptic Gregorian date by
/// 400-year eras (Howard Hinnant's `civil_from_days` method).
fn rfc3339(t: UnixTime) -> String {
    let days = t.0.div_euclid(86_400);
    let secs = t.0.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(UnixTime(0)), "1970-01-01T00:00:00Z");
        // RFC 3339 §5.8's example instant, 1985-04-12T23:20:50Z.
        assert_eq!(rfc3339(UnixTime(482_196_050)), "1985-04-12T23:20:50Z");
        assert_eq!(rfc3339(UnixTime(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UnixTime(1_700_000_000)), "2023-11-14T22:13:20Z");
    }
}
