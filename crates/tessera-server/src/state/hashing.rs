//! The hashing queue: Argon2 work (password checks and new hashes) runs on the blocking pool,
//! a place in a bounded queue first — shared fairly between source addresses — then one of
//! the permits (one per core).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use tessera_core::password::PasswordHasher;

use super::{AppState, Metrics};
use crate::error::ApiError;

/// Who a password hash is for, which decides how much of the hashing queue it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashPriority {
    /// Registration, or a login from a browser or app the server does not know.
    Normal,
    /// A login presenting a genuine device cookie for its account: it may queue behind twice
    /// as much work, so a flood of strangers cannot push its owner out.
    KnownDevice,
}

/// A place in the hashing queue, and in its source's share of it, given back on drop.
struct QueueSlot<'a> {
    queued: &'a AtomicUsize,
    source: Option<(&'a Mutex<HashMap<String, usize>>, String)>,
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        if let Some((by_source, source)) = self.source.take() {
            let mut by_source = by_source.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(held) = by_source.get_mut(&source) {
                *held -= 1;
                if *held == 0 {
                    by_source.remove(&source);
                }
            }
        }
    }
}

impl AppState {
    /// Takes a place in the hashing queue, or refuses at once when it is full: Argon2 work is
    /// the lever a flood of logins or registrations pulls, so the queue (and with it the
    /// latency of every login) is bounded. One source address (its throttle key) may hold half
    /// of it at most, so a flood from one client — even one logging in to its own accounts,
    /// which no throttle counts — leaves room for everyone else.
    fn enter_hashing_queue(
        &self,
        priority: HashPriority,
        source: Option<&str>,
    ) -> Result<QueueSlot<'_>, ApiError> {
        let refused = || {
            Metrics::inc(&self.metrics.hashing_refused);
            ApiError::Overloaded { retry_after: 1 }
        };
        let bound = match priority {
            HashPriority::Normal => self.config.hashing_queue,
            HashPriority::KnownDevice => self.config.hashing_queue.saturating_mul(2),
        };
        let mut slot = QueueSlot {
            queued: &self.hashing_queued,
            source: None,
        };
        if self.hashing_queued.fetch_add(1, Ordering::AcqRel) >= bound {
            return Err(refused());
        }
        if let Some(source) = source {
            let share = (self.config.hashing_queue / 2).max(1);
            let mut by_source = self
                .hashing_by_source
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let held = by_source.entry(source.to_owned()).or_default();
            if *held >= share {
                return Err(refused());
            }
            *held += 1;
            slot.source = Some((&self.hashing_by_source, source.to_owned()));
        }
        Ok(slot)
    }

    /// Runs Argon2 work on the blocking pool: a place in the bounded queue first, then one of
    /// the permits (one per core), so a burst can neither starve the async runtime nor queue
    /// without bound.
    async fn run_hashing<R: Send + 'static>(
        &self,
        priority: HashPriority,
        source: Option<&str>,
        work: impl FnOnce(&PasswordHasher) -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        let _slot = self.enter_hashing_queue(priority, source)?;
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("hashing pool closed".into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || work(&hasher))
            .await
            .map_err(|e| ApiError::Internal(e.to_string().into()))
    }

    /// Checks a new password against the policy and hashes it, both on the blocking pool: the
    /// guessability estimate costs CPU time too (milliseconds, see
    /// [`tessera_core::password::check_policy`]), so it waits its turn in the same bounded
    /// queue as the hash instead of stalling the async runtime.
    ///
    /// # Errors
    /// `WeakPassword` if the policy refuses it; `Overloaded` when the hashing queue is full;
    /// `Internal` if hashing fails.
    pub async fn hash_new_password(
        &self,
        username: String,
        password: String,
        source: Option<&str>,
    ) -> Result<String, ApiError> {
        self.run_hashing(HashPriority::Normal, source, move |h| {
            tessera_core::password::check_policy(&username, &password)
                .map_err(|e| ApiError::WeakPassword(e.to_string()))?;
            h.hash(&password)
                .map_err(|e| ApiError::Internal(e.to_string().into()))
        })
        .await?
    }

    /// Checks a password on the blocking pool; with no stored hash (unknown user), does the
    /// same work and fails. `source` is the caller's address as throttled, which may hold half
    /// of the hashing queue at most.
    ///
    /// # Errors
    /// `Overloaded` when the hashing queue is full; `Internal` if the blocking pool fails.
    pub async fn verify_password(
        &self,
        password: String,
        phc: Option<String>,
        priority: HashPriority,
        source: Option<&str>,
    ) -> Result<bool, ApiError> {
        let ok = self
            .run_hashing(priority, source, move |h| match phc {
                Some(phc) => h.verify(&password, &phc),
                None => {
                    h.verify_absent(&password);
                    false
                }
            })
            .await?;
        Metrics::inc(&self.metrics.password_checks);
        Ok(ok)
    }
}
