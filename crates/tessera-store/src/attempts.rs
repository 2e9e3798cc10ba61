//! In-process attempt counters: the [`AttemptCounter`] of a single instance.
//!
//! Fixed windows keyed by strings such as `ip:203.0.113.7` or `user:alice`, timed by an
//! injected [`Clock`] so tests can move time. Memory is bounded: at most [`MAX_KEYS`] keys are
//! tracked; past that, expired windows are dropped, and if that is not enough, the tenth least
//! dangerous to forget (the lowest counts first, so lock-outs go last). Instances sharing a
//! Redis use the Redis counter instead, so a limit holds across all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tessera_core::time::{Clock, UnixTime};

use crate::{AttemptCounter, StoreError};

/// Most keys tracked at once.
pub const MAX_KEYS: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Window {
    start: UnixTime,
    secs: i64,
    count: u32,
}

impl Window {
    fn left(&self, now: UnixTime) -> i64 {
        self.secs.saturating_sub(now.since(self.start))
    }
}

/// Attempt counters held in this process.
pub struct MemoryAttempts {
    clock: Arc<dyn Clock>,
    windows: Mutex<HashMap<String, Window>>,
}

impl std::fmt::Debug for MemoryAttempts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAttempts").finish_non_exhaustive()
    }
}

impl MemoryAttempts {
    /// Counters timed by `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Window>, UnixTime) -> R) -> R {
        let now = self.clock.now();
        let mut guard = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.len() >= MAX_KEYS {
            guard.retain(|_, w| w.left(now) > 0);
            if guard.len() >= MAX_KEYS {
                evict_least_dangerous(&mut guard);
            }
        }
        f(&mut guard, now)
    }
}

/// Makes room by forgetting the tenth of the windows that are least dangerous to forget: the
/// lowest counts first (forgetting a window of few attempts gives a guesser back little), the
/// oldest among equal counts. Lock-outs, the highest counts, are forgotten last — dropping the
/// oldest windows first would have dropped exactly the active lock-outs, letting an attacker
/// lift one by flooding the map with fresh keys.
fn evict_least_dangerous(w: &mut HashMap<String, Window>) {
    let mut ranked: Vec<(u32, UnixTime, &String)> =
        w.iter().map(|(k, win)| (win.count, win.start, k)).collect();
    ranked.sort_unstable_by_key(|&(count, start, _)| (count, start));
    let forget: Vec<String> = ranked
        .into_iter()
        .take((w.len() / 10).max(1))
        .map(|(_, _, k)| k.clone())
        .collect();
    for k in &forget {
        w.remove(k);
    }
}

#[async_trait]
impl AttemptCounter for MemoryAttempts {
    async fn hit(&self, key: &str, window_secs: i64) -> Result<(u32, i64), StoreError> {
        Ok(self.with(|w, now| {
            let win = w.entry(key.to_owned()).or_insert(Window {
                start: now,
                secs: window_secs,
                count: 0,
            });
            if win.left(now) <= 0 {
                *win = Window {
                    start: now,
                    secs: window_secs,
                    count: 0,
                };
            }
            win.count = win.count.saturating_add(1);
            (win.count, win.left(now))
        }))
    }

    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        self.with(|w, now| {
            if let Some(win) = w.get_mut(key).filter(|win| win.left(now) > 0) {
                win.count = win.count.saturating_sub(1);
            }
        });
        Ok(())
    }

    async fn peek(&self, key: &str) -> Result<(u32, i64), StoreError> {
        Ok(self.with(|w, now| match w.get(key) {
            Some(win) if win.left(now) > 0 => (win.count, win.left(now)),
            _ => (0, 0),
        }))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.with(|w, _| w.remove(key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::time::ManualClock;

    #[tokio::test]
    async fn windows_count_expire_and_reset() {
        let clock = Arc::new(ManualClock::new(UnixTime(100)));
        let a = MemoryAttempts::new(clock.clone());
        assert_eq!(a.hit("k", 60).await.unwrap(), (1, 60));
        clock.advance(10);
        assert_eq!(a.hit("k", 60).await.unwrap(), (2, 50));
        assert_eq!(a.peek("k").await.unwrap(), (2, 50));
        assert_eq!(a.peek("other").await.unwrap(), (0, 0));
        clock.advance(50);
        assert_eq!(a.peek("k").await.unwrap(), (0, 0));
        assert_eq!(a.hit("k", 60).await.unwrap(), (1, 60));
        a.reset("k").await.unwrap();
        assert_eq!(a.peek("k").await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn refund_applies_to_the_open_window_only() {
        let clock = Arc::new(ManualClock::new(UnixTime(100)));
        let a = MemoryAttempts::new(clock.clone());
        a.hit("k", 60).await.unwrap();
        a.hit("k", 60).await.unwrap();
        a.refund("k").await.unwrap();
        assert_eq!(a.peek("k").await.unwrap(), (1, 60));
        clock.advance(60);
        a.refund("k").await.unwrap();
        assert_eq!(
            a.hit("k", 60).await.unwrap(),
            (1, 60),
            "a closed window is left alone"
        );
    }

    /// Regression guard: filling the map must not forget a lock-out, however old it is.
    #[tokio::test]
    async fn eviction_keeps_lock_outs() {
        let clock = Arc::new(ManualClock::new(UnixTime(100)));
        let a = MemoryAttempts::new(clock.clone());
        for _ in 0..20 {
            a.hit("user:locked", 900).await.unwrap();
        }
        clock.advance(1);
        a.hit("user:warm", 900).await.unwrap();
        a.hit("user:warm", 900).await.unwrap();
        clock.advance(1);
        for i in 0..MAX_KEYS {
            a.hit(&format!("ip:{i}"), 900).await.unwrap();
        }
        let tracked = a.windows.lock().unwrap().len();
        assert!(tracked < MAX_KEYS, "evicted: {tracked} tracked");
        assert_eq!(a.peek("user:locked").await.unwrap().0, 20);
        assert_eq!(a.peek("user:warm").await.unwrap().0, 2);
    }
}
