//! Fixed-window attempt counters for login throttling, kept in memory.
//!
//! Keys are strings such as `ip:203.0.113.7` or `user:alice`. A key over its limit is refused
//! with the seconds left in its window (the `Retry-After` value). Memory is bounded: expired
//! windows are dropped by [`RateLimiter::prune`], and at most [`MAX_KEYS`] keys are tracked.

use std::collections::HashMap;
use std::sync::Mutex;

use tessera_core::time::UnixTime;

/// Most keys tracked at once; past this, the oldest windows are dropped first.
pub const MAX_KEYS: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Window {
    start: UnixTime,
    count: u32,
}

/// Attempt counters.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Window>) -> R) -> R {
        let mut guard = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// `Err(retry_after_secs)` if `key` has used up `limit` attempts in its current window.
    pub fn check(&self, key: &str, limit: u32, window_secs: i64, now: UnixTime) -> Result<(), u64> {
        self.with(|w| match w.get(key) {
            Some(win) if now.since(win.start) < window_secs && win.count >= limit => {
                let left = window_secs.saturating_sub(now.since(win.start)).max(1);
                Err(u64::try_from(left).unwrap_or(1))
            }
            _ => Ok(()),
        })
    }

    /// Counts one attempt against `key`.
    pub fn hit(&self, key: &str, window_secs: i64, now: UnixTime) {
        self.with(|w| {
            if w.len() >= MAX_KEYS && !w.contains_key(key) {
                evict_oldest(w);
            }
            let win = w.entry(key.to_owned()).or_insert(Window {
                start: now,
                count: 0,
            });
            if now.since(win.start) >= window_secs {
                *win = Window {
                    start: now,
                    count: 0,
                };
            }
            win.count = win.count.saturating_add(1);
        });
    }

    /// Forgets `key` (a successful login clears its account's failures).
    pub fn reset(&self, key: &str) {
        self.with(|w| w.remove(key));
    }

    /// Drops windows that ended before `now`.
    pub fn prune(&self, window_secs: i64, now: UnixTime) {
        self.with(|w| w.retain(|_, win| now.since(win.start) < window_secs));
    }
}

fn evict_oldest(w: &mut HashMap<String, Window>) {
    let mut starts: Vec<i64> = w.values().map(|win| win.start.0).collect();
    starts.sort_unstable();
    if let Some(cut) = starts.get(starts.len() / 10) {
        let cut = *cut;
        w.retain(|_, win| win.start.0 > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_until_the_window_ends() {
        let l = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(l.check("k", 3, 60, UnixTime(100)), Ok(()));
            l.hit("k", 60, UnixTime(100));
        }
        assert_eq!(l.check("k", 3, 60, UnixTime(110)), Err(50));
        assert_eq!(l.check("k", 3, 60, UnixTime(160)), Ok(()));
        assert_eq!(l.check("other", 3, 60, UnixTime(110)), Ok(()));
    }

    #[test]
    fn reset_and_prune_forget() {
        let l = RateLimiter::default();
        l.hit("a", 60, UnixTime(0));
        l.hit("b", 60, UnixTime(50));
        l.reset("a");
        assert_eq!(l.check("a", 1, 60, UnixTime(1)), Ok(()));
        l.prune(60, UnixTime(100));
        assert_eq!(l.check("b", 1, 60, UnixTime(100)), Ok(()));
    }
}
