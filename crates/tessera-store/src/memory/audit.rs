//! [`crate::AuditStore`] in memory: a vector in append order behind its own lock.

use async_trait::async_trait;
use tessera_core::time::UnixTime;

use super::MemoryStore;
use crate::{AuditEvent, AuditQuery, AuditRecord, AuditStore, StoreError};

/// The events, oldest first, and the next sequence number.
#[derive(Default)]
pub(super) struct Log {
    records: Vec<AuditRecord>,
    next_seq: i64,
}

impl MemoryStore {
    fn audit_log(&self) -> std::sync::MutexGuard<'_, Log> {
        // As for the tables: nothing panics mid-update, so a poisoned lock guards a whole log.
        self.audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut log = self.audit_log();
        log.next_seq = log.next_seq.saturating_add(1);
        let seq = log.next_seq;
        log.records.push(AuditRecord {
            seq,
            event: event.clone(),
        });
        Ok(())
    }

    async fn events(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let log = self.audit_log();
        let page = usize::try_from(query.page_size()).unwrap_or(usize::MAX);
        Ok(log
            .records
            .iter()
            .rev()
            .filter(|r| query.matches(r))
            .take(page)
            .cloned()
            .collect())
    }

    async fn prune_events(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        let mut log = self.audit_log();
        let before = log.records.len();
        log.records.retain(|r| r.event.at >= cutoff);
        Ok(u64::try_from(before - log.records.len()).unwrap_or(u64::MAX))
    }
}
