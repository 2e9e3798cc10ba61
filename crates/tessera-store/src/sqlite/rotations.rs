//! Refresh rotations on SQLite, committed in groups.
//!
//! Design decision: **group commit.** SQLite has one writer at a time, and with
//! `synchronous=FULL` every commit waits for the disk (an `fsync` of the WAL, about half a
//! millisecond on this project's CI machine), so rotations committed one by one stop near
//! 2,000/s whatever the CPU. Instead, one task per store writes every rotation of the
//! process: it takes all rotations waiting (up to [`MAX_GROUP`]), runs each in its own
//! savepoint inside one `BEGIN IMMEDIATE` transaction, commits once, then answers each
//! caller. While the disk syncs one group, the next one gathers.
//!
//! What stays as it was: every rotation is the same read-transition-write (`rotate_in`) under
//! the database's write lock, so racing rotations of one family still see each other's
//! writes in order; a rotation is answered only after its group is durable; one that fails
//! is rolled back to its savepoint alone (no partial write), and if the group's commit fails
//! every caller in it gets the error and nothing of the group is written. Other processes on
//! the same file take the write lock as before. A caller that goes away does not stop its
//! rotation: it is committed with its group (and a retry of the presented token meets the
//! grace window, as after a lost response).

use sqlx::{Acquire as _, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::SqliteStore;
use crate::sql::refresh::Rotation;
use crate::sql::{self, refresh};
use crate::{BoxError, RotateOutcome, StoreError};

/// The most rotations one transaction commits.
pub(super) const MAX_GROUP: usize = 64;

/// Rotations waiting for the writer, at most; a caller beyond that waits for room.
const QUEUE_DEPTH: usize = 1024;

/// A rotation and where to send its outcome.
type Pending = (Rotation, oneshot::Sender<Result<RotateOutcome, StoreError>>);

/// The way to this store's rotation writer. The writer ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub(super) struct RotationQueue(mpsc::Sender<Pending>);

impl RotationQueue {
    /// Starts the writer over `pool`.
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_rotations(pool, rx));
        Self(tx)
    }

    /// Queues `rotation` and waits until its group is committed (or failed).
    pub(super) async fn rotate(&self, rotation: Rotation) -> Result<RotateOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.0
            .send((rotation, reply))
            .await
            .map_err(|_| writer_gone())?;
        outcome.await.map_err(|_| writer_gone())?
    }
}

/// The writer stopped (the runtime is shutting down).
fn writer_gone() -> StoreError {
    StoreError::Unavailable(BoxError::from("the SQLite rotation writer has stopped"))
}

/// The writer: one group per transaction, until every [`RotationQueue`] is dropped.
async fn write_rotations(pool: SqlitePool, mut queue: mpsc::Receiver<Pending>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (rotations, replies): (Vec<Rotation>, Vec<_>) = group.drain(..).unzip();
        match commit_group(&pool, &rotations).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that went away no longer needs its answer.
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                let why = e.to_string();
                let mut first = Some(e);
                for reply in replies {
                    let e = first.take().unwrap_or_else(|| same_failure(&why));
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

/// The failure of a whole group, for its callers after the first (who gets the original).
fn same_failure(why: &str) -> StoreError {
    StoreError::Unavailable(BoxError::from(format!(
        "the group of refresh rotations failed: {why}"
    )))
}

/// Runs `rotations` in one transaction, each in its own savepoint, and commits. Returns each
/// rotation's outcome; a rotation's own failure is its outcome (its savepoint rolled back),
/// a failure of the transaction itself is the error.
async fn commit_group(
    pool: &SqlitePool,
    rotations: &[Rotation],
) -> Result<Vec<Result<RotateOutcome, StoreError>>, StoreError> {
    let err = sql::on::<SqliteStore>(refresh::TABLE, refresh::CONFLICT);
    // IMMEDIATE: the write lock before the first read (see the module docs of `sqlite`).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(&err)?;
    let mut outcomes = Vec::with_capacity(rotations.len());
    for rotation in rotations {
        let mut savepoint = tx.begin().await.map_err(&err)?;
        let outcome = SqliteStore::rotate_in(&mut savepoint, rotation).await;
        if outcome.is_ok() {
            savepoint.commit().await.map_err(&err)?;
        } else {
            savepoint.rollback().await.map_err(&err)?;
        }
        outcomes.push(outcome);
    }
    tx.commit().await.map_err(&err)?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use tessera_core::opaque::{OpaqueToken, TokenHash, TokenKind, random_id};
    use tessera_core::refresh::{RefreshFamily, seal_successor};
    use tessera_core::time::UnixTime;

    use super::*;
    use crate::sql::Dialect as _;
    use crate::{RefreshStore as _, Successor};

    const NOW: UnixTime = UnixTime(1_700_000_000);

    fn token() -> (OpaqueToken, TokenHash) {
        let t = OpaqueToken::generate(TokenKind::Refresh).unwrap();
        let h = t.hash();
        (t, h)
    }

    async fn family(store: &SqliteStore) -> (RefreshFamily, OpaqueToken) {
        family_of(store, &random_id().unwrap()).await
    }

    async fn family_of(store: &SqliteStore, sid: &str) -> (RefreshFamily, OpaqueToken) {
        let f = RefreshFamily {
            id: random_id().unwrap(),
            user_id: random_id().unwrap(),
            sid: sid.to_owned(),
            client_id: None,
            scope: None,
            created_at: NOW,
            expires_at: NOW.plus(3600),
            generation: 0,
            rotated_at: None,
            sealed_successor: None,
            revoked_at: None,
            jkt: None,
        };
        let (t, h) = token();
        store.create_family(&f, &h).await.unwrap();
        (f, t)
    }

    fn rotation(presented: &OpaqueToken, successor: TokenHash) -> Rotation {
        let (next, _) = token();
        Rotation {
            presented: presented.hash(),
            now: NOW.plus(5),
            grace_secs: 10,
            successor: Successor {
                hash: successor,
                sealed: seal_successor(presented, &next).unwrap(),
            },
        }
    }

    /// A group in which one rotation fails (its successor's hash is already a token's, so its
    /// insert breaks the unique key): that rotation alone gets the error and leaves no trace —
    /// its family is still at generation 0 and its presented token still rotates — while the
    /// rotations before and after it in the same transaction are committed.
    #[tokio::test]
    async fn a_failing_rotation_is_rolled_back_alone_and_its_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("group.db"))
            .await
            .unwrap();
        let (a, ta) = family(&store).await;
        let (b, tb) = family(&store).await;
        let (c, tc) = family(&store).await;
        let taken = ta.hash();
        let group = [
            rotation(&ta, token().1),
            rotation(&tb, taken),
            rotation(&tc, token().1),
        ];
        let outcomes = commit_group(store.pool(), &group).await.unwrap();
        assert!(matches!(outcomes[0], Ok(RotateOutcome::Rotated(ref f)) if f.id == a.id));
        assert!(
            matches!(outcomes[1], Err(StoreError::Conflict(_))),
            "{:?}",
            outcomes[1]
        );
        assert!(matches!(outcomes[2], Ok(RotateOutcome::Rotated(ref f)) if f.id == c.id));
        let (b_now, b_gen) = store.family_by_token(&tb.hash()).await.unwrap().unwrap();
        assert_eq!((b_now.generation, b_gen), (0, 0));
        assert!(b_now.rotated_at.is_none() && b_now.sealed_successor.is_none());
        let (a_now, _) = store.family_by_token(&ta.hash()).await.unwrap().unwrap();
        assert_eq!(a_now.generation, 1);
        let retried = store.run_rotation(rotation(&tb, token().1)).await.unwrap();
        assert!(matches!(retried, RotateOutcome::Rotated(ref f) if f.id == b.id));
    }

    /// A rotation that fails after one of its writes (a trigger aborts the family's update,
    /// after the successor token was inserted): its savepoint takes the insert back too, so the
    /// group commits no half-rotation, and the rotation beside it in the group commits.
    #[tokio::test]
    async fn a_rotation_failing_half_way_leaves_none_of_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("half.db"))
            .await
            .unwrap();
        let (a, ta) = family(&store).await;
        let (b, tb) = family(&store).await;
        sqlx::query(&format!(
            "CREATE TRIGGER refuse_b BEFORE UPDATE ON refresh_families WHEN OLD.id = '{}'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            b.id
        ))
        .execute(store.pool())
        .await
        .unwrap();
        let (b_successor, a_successor) = (token().1, token().1);
        let group = [rotation(&tb, b_successor), rotation(&ta, a_successor)];
        let outcomes = commit_group(store.pool(), &group).await.unwrap();
        assert!(outcomes[0].is_err(), "{:?}", outcomes[0]);
        assert!(matches!(outcomes[1], Ok(RotateOutcome::Rotated(ref f)) if f.id == a.id));
        assert!(
            store.family_by_token(&b_successor).await.unwrap().is_none(),
            "the failed rotation's successor token was kept"
        );
        let (b_now, _) = store.family_by_token(&tb.hash()).await.unwrap().unwrap();
        assert_eq!(b_now.generation, 0);
        let (a_now, a_gen) = store.family_by_token(&a_successor).await.unwrap().unwrap();
        assert_eq!((a_now.generation, a_gen), (1, 1));
    }

    /// The store failing for a whole group (here its pool closed, so no transaction opens):
    /// every caller of the group gets an error — none waits forever, none is told its rotation
    /// happened — and nothing was written.
    #[tokio::test]
    async fn a_group_that_cannot_commit_fails_every_caller_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("closed.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let mut families = Vec::new();
        for _ in 0..8 {
            families.push(family(&store).await);
        }
        store.pool().close().await;
        let tasks: Vec<_> = families
            .iter()
            .map(|(_, t)| {
                let store = store.clone();
                let r = rotation(t, token().1);
                tokio::spawn(async move { store.run_rotation(r).await })
            })
            .collect();
        for task in tasks {
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .expect("a caller was left waiting")
                .unwrap();
            assert!(outcome.is_err(), "{outcome:?}");
        }
        let reopened = SqliteStore::open(&path).await.unwrap();
        for (_, t) in &families {
            let (f, _) = reopened.family_by_token(&t.hash()).await.unwrap().unwrap();
            assert_eq!(f.generation, 0);
        }
    }

    /// A logout racing a burst of rotations of its session's families (the revocation goes
    /// through the pool, outside the writer, as the server sends it): whichever commits first,
    /// no family comes out alive — the token each caller holds afterwards, rotated or not, is
    /// refused.
    #[tokio::test]
    async fn a_logout_racing_grouped_rotations_leaves_no_family_alive() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("race.db"))
            .await
            .unwrap();
        let sid = random_id().unwrap();
        let mut families = Vec::new();
        for _ in 0..32 {
            families.push(family_of(&store, &sid).await);
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(families.len() + 1));
        let rotations: Vec<_> = families
            .iter()
            .map(|(_, t)| {
                let (store, barrier) = (store.clone(), barrier.clone());
                let (next, hash) = token();
                let r = Rotation {
                    successor: Successor {
                        hash,
                        sealed: seal_successor(t, &next).unwrap(),
                    },
                    ..rotation(t, hash)
                };
                let presented = t.expose_secret().to_owned();
                tokio::spawn(async move {
                    barrier.wait().await;
                    match store.run_rotation(r).await.unwrap() {
                        RotateOutcome::Rotated(_) => next,
                        _ => OpaqueToken::parse(TokenKind::Refresh, &presented).unwrap(),
                    }
                })
            })
            .collect();
        let logout = {
            let (store, barrier, sid) = (store.clone(), barrier.clone(), sid.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .revoke_families_of_session(&sid, NOW.plus(5))
                    .await
                    .unwrap();
            })
        };
        let mut held = Vec::new();
        for task in rotations {
            held.push(task.await.unwrap());
        }
        logout.await.unwrap();
        for t in held {
            let again = store.run_rotation(rotation(&t, token().1)).await.unwrap();
            assert!(
                matches!(again, RotateOutcome::Refused),
                "a family outlived the logout: {again:?}"
            );
            let (f, _) = store.family_by_token(&t.hash()).await.unwrap().unwrap();
            assert!(f.revoked_at.is_some(), "family {} not revoked", f.id);
        }
    }

    /// More rotations at once than one group holds: every caller gets its own family's
    /// outcome, whichever group carried it.
    #[tokio::test]
    async fn concurrent_rotations_are_all_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("queue.db"))
            .await
            .unwrap();
        let mut families = Vec::new();
        for _ in 0..(MAX_GROUP * 2) {
            families.push(family(&store).await);
        }
        let tasks: Vec<_> = families
            .iter()
            .map(|(f, t)| {
                let store = store.clone();
                let r = rotation(t, token().1);
                let id = f.id.clone();
                tokio::spawn(async move { (id, store.run_rotation(r).await) })
            })
            .collect();
        for task in tasks {
            let (id, outcome) = task.await.unwrap();
            assert!(matches!(outcome, Ok(RotateOutcome::Rotated(ref f)) if f.id == id));
        }
    }
}
