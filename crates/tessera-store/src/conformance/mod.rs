//! The conformance suite every backend must pass: one set of named checks, run by
//! [`run_all`] against any [`Store`].
//!
//! Design decision: the suite is generic code in the library (feature `conformance`), not a
//! test file, so a backend living in another crate runs exactly the same checks. Every check
//! uses fresh random ids and names, so the suite can run repeatedly on one shared store; checks
//! that sweep (expired sessions, families, revocations) use timestamps far from any other
//! check's and assert only about their own records.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod attempts;
mod audit;
mod clients;
mod codes;
mod dpop;
mod keys;
mod refresh;
mod revocations;
mod session_races;
mod sessions;
mod users;

use std::sync::Arc;

use tessera_core::opaque::{OpaqueToken, TokenHash, TokenKind, random_id};
use tessera_core::time::UnixTime;

use crate::{AttemptCounter, Store};

/// The moment most checks treat as "now".
pub(crate) const NOW: UnixTime = UnixTime(1_700_000_000);

/// A fresh random id.
pub(crate) fn id() -> String {
    random_id().expect("random id")
}

/// A fresh opaque token of `kind` and its hash.
pub(crate) fn token(kind: TokenKind) -> (OpaqueToken, TokenHash) {
    let t = OpaqueToken::generate(kind).expect("token");
    let h = t.hash();
    (t, h)
}

/// Runs each listed check in turn (logging its name at debug level) and counts them.
macro_rules! checks {
    ($store:expr; $($check:path),+ $(,)?) => {{
        let mut ran = 0usize;
        $(
            tracing::debug!(check = stringify!($check), "conformance check");
            $check($store).await;
            ran += 1;
        )+
        ran
    }};
}

/// Runs every conformance check against `store`, panicking (with the check's name in the
/// message) at the first failure. Returns how many checks ran.
///
/// Takes an `Arc` because the concurrency checks race real tasks (`tokio::spawn`) against the
/// store; run it on a multi-threaded runtime for those races to be real.
pub async fn run_all<S: Store + ?Sized>(store: Arc<S>) -> usize {
    let s = &store;
    checks!(s;
        users::create_and_look_up,
        users::duplicate_username_conflicts,
        users::set_password_hash,
        users::credential_epoch_counts_every_bump,
        users::disable_sets_the_flag_and_moves_the_epoch,
        users::search_matches_substrings_in_order,
        sessions::create_and_look_up,
        sessions::touch_records_last_seen,
        sessions::list_of_user_is_ordered_and_scoped,
        sessions::delete_returns_the_session,
        sessions::delete_dead_removes_only_dead,
        sessions::count_follows_creates_and_deletes,
        session_races::deleted_session_is_never_found_by_token_afterwards,
        session_races::touch_racing_delete_does_not_resurrect,
        refresh::current_token_rotates,
        refresh::previous_token_within_grace_gets_same_successor,
        refresh::previous_token_after_grace_is_reuse,
        refresh::after_reuse_even_current_token_is_refused,
        refresh::older_generation_is_reuse,
        refresh::unknown_token_is_refused,
        refresh::expired_family_is_refused,
        refresh::zero_grace_makes_retry_reuse,
        refresh::revoke_family_refuses_its_tokens,
        refresh::revoke_families_of_session_spares_others,
        refresh::family_by_token_reports_generations,
        refresh::delete_expired_families_removes_tokens,
        refresh::duplicate_first_token_conflicts,
        refresh::concurrent_rotation_with_grace_has_one_winner,
        refresh::concurrent_rotation_without_grace_revokes,
        refresh::second_replay_within_grace_is_reuse,
        refresh::replay_after_the_successor_was_used_is_reuse,
        refresh::sweep_clears_successors_past_the_window,
        refresh::concurrent_replays_get_one_grace_retry,
        revocations::each_kind_round_trips,
        revocations::upsert_keeps_the_maximum,
        revocations::listing_excludes_expired,
        revocations::prune_removes_only_expired,
        revocations::lookup_for_a_credential_finds_only_what_it_names,
        keys::insert_and_list_keep_secrets,
        keys::duplicate_kid_conflicts,
        keys::set_key_status_is_compare_and_set,
        keys::replace_key_secret_is_compare_and_set,
        keys::one_key_per_status_under_race,
        clients::insert_and_look_up,
        clients::secret_hash_survives_exactly,
        clients::duplicate_id_conflicts,
        clients::list_is_ordered_by_creation_then_insertion,
        clients::delete_reports_whether_it_deleted,
        audit::append_and_filter,
        audit::paging_is_stable,
        audit::prune_removes_only_older,
        dpop::binding_key_is_kept_through_rotation,
        dpop::first_use_wins_and_keys_are_independent,
        dpop::sweep_keeps_live_markers,
        dpop::concurrent_callers_have_one_winner,
        codes::first_redemption_then_again,
        codes::duplicate_hash_conflicts,
        codes::concurrent_redemptions_have_one_first,
        codes::sweep_removes_only_expired,
    )
}

/// Races refresh rotation through two handles on one backing store — separate pools or
/// connections, as two server instances would have — and checks that the store, not the
/// handle, enforces one winner.
pub async fn rotation_is_atomic_across_handles<A: Store + ?Sized, B: Store + ?Sized>(
    a: Arc<A>,
    b: Arc<B>,
) {
    refresh::rotation_is_atomic_across(&a, &b).await;
}

/// Runs every conformance check of attempt counters against `counter`, panicking at the first
/// failure; returns how many checks ran. Like [`run_all`], it races real tasks: run it on a
/// multi-threaded runtime.
pub async fn run_attempt_checks<A: AttemptCounter + ?Sized>(counter: Arc<A>) -> usize {
    let a = &counter;
    checks!(a;
        attempts::concurrent_hits_get_distinct_counts,
        attempts::refund_takes_back_one_never_below_zero,
        attempts::concurrent_refunds_stop_at_zero,
        attempts::refund_without_a_window_opens_none,
    )
}
