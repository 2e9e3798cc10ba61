//! The audit log: security events appended by the server's flows, read back by filters.
//!
//! Design decision: the log lives in the durable store (SQL or memory), never in Redis — a
//! split deployment keeps its audit trail with its users. Records are ordered by a
//! store-assigned sequence number, which is also the paging cursor: a page is "the newest
//! `limit` events matching the filters with a sequence below `before`", so paging is stable
//! while new events keep arriving.

use async_trait::async_trait;
use tessera_core::audit::EventKind;
use tessera_core::time::UnixTime;

use crate::StoreError;

/// The most events one query returns, whatever the caller asks for.
pub const MAX_PAGE: u32 = 500;

/// A security event, as a flow records it. Holds no secret: no password, token or hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: UnixTime,
    /// What happened.
    pub kind: EventKind,
    /// The username concerned, when there is one.
    pub user: Option<String>,
    /// The client address the request came from, when there was a request.
    pub ip: Option<String>,
    /// A short description: the reason of a failure, what an admin did, which key.
    pub detail: String,
}

/// A stored event and its place in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Store-assigned, increasing in append order, never reused: the paging cursor.
    pub seq: i64,
    /// The event.
    pub event: AuditEvent,
}

/// Which events to read: every filter given must match. Newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this username's events.
    pub user: Option<String>,
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// Only events at or after this time.
    pub since: Option<UnixTime>,
    /// Only events with a sequence number below this (the previous page's last `seq`).
    pub before: Option<i64>,
    /// At most this many events (capped at [`MAX_PAGE`]; 0 reads none).
    pub limit: u32,
}

impl AuditQuery {
    /// The page size a backend applies: the asked limit, capped at [`MAX_PAGE`].
    #[must_use]
    pub fn page_size(&self) -> u32 {
        self.limit.min(MAX_PAGE)
    }

    /// Whether `record` passes every filter (for backends that filter in process).
    #[must_use]
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let e = &record.event;
        self.user
            .as_ref()
            .is_none_or(|u| e.user.as_ref() == Some(u))
            && self.kind.is_none_or(|k| e.kind == k)
            && self.since.is_none_or(|s| e.at >= s)
            && self.before.is_none_or(|b| record.seq < b)
    }
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an event.
    async fn append_event(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The events matching `query`, newest (highest sequence) first.
    async fn events(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
    /// Deletes events from before `cutoff`; returns how many. For the retention sweep.
    async fn prune_events(&self, cutoff: UnixTime) -> Result<u64, StoreError>;
}
