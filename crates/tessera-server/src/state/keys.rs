//! The signing keys as this instance holds them: loaded from the store into the ring, opened
//! and sealed with the instance's KEK, and legacy plain keys sealed or every key re-wrapped.

use std::sync::Arc;

use tessera_core::keys::kek::{self, Kek, KekError};
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};
use tessera_store::StoreError;

use super::{AppState, StartupError};

impl AppState {
    /// Reloads signing keys from the store; creates the first EdDSA key if none is current.
    ///
    /// A rotation in progress (the old current key already demoted, the next not yet
    /// promoted) is waited out: while the key that signs here is still trusted in the store,
    /// the old ring is kept rather than a new key created.
    ///
    /// # Errors
    /// If the store fails or a stored key is unusable.
    pub async fn reload_keys(&self) -> Result<(), StartupError> {
        // Every stored key is opened first, revoked ones too: a key that does not open means
        // the KEK is wrong, and that must stop us before "no current key" could make a new
        // key over keys we cannot read.
        let mut records = self.open_keys().await?;
        if !records.iter().any(|k| k.status == KeyStatus::Current) {
            let ring = self.key_ring();
            let signing_still_trusted = ring.current().is_some_and(|cur| {
                records
                    .iter()
                    .any(|r| r.kid == cur.kid() && r.status.is_trusted())
            });
            if signing_still_trusted {
                tracing::debug!(
                    "no current key in the store: rotation in progress, keeping the ring"
                );
                return Ok(());
            }
            let first = KeyRing::generate_record(
                tessera_core::keys::lifecycle::DEFAULT_ALGORITHM,
                KeyStatus::Current,
                self.now(),
            )?;
            if self.store.insert_key_if_vacant(&self.seal(&first)?).await? {
                tracing::info!(kid = %first.kid, "generated the first signing key");
            }
            records = self.open_keys().await?;
        }
        let ring = Arc::new(KeyRing::from_records(&records)?);
        match self.keys.write() {
            Ok(mut g) => *g = ring,
            Err(p) => *p.into_inner() = ring,
        }
        Ok(())
    }

    /// Every stored key, its secret opened with this instance's KEK.
    async fn open_keys(&self) -> Result<Vec<KeyRecord>, StartupError> {
        Ok(self.open_all(&self.store.keys().await?)?)
    }

    /// `records` as stored, every secret opened with this instance's KEK (a plain legacy
    /// key as it is): also the proof that this KEK is the store's, which every write of a
    /// secret makes first.
    ///
    /// # Errors
    /// [`KekError::Open`] if one does not open.
    pub(crate) fn open_all(&self, records: &[KeyRecord]) -> Result<Vec<KeyRecord>, KekError> {
        records.iter().map(|r| self.kek.open_record(r)).collect()
    }

    /// `record` sealed under this instance's KEK, as it must be before it reaches the store.
    ///
    /// # Errors
    /// [`KekError::Seal`] if sealing fails.
    pub fn seal(&self, record: &KeyRecord) -> Result<KeyRecord, KekError> {
        self.kek.seal_record(record)
    }

    /// Seals every key still stored plain (written before keys were sealed at rest), one
    /// compare-and-set per key, so instances starting together cannot undo each other: the
    /// loser's write finds the plain bytes gone and changes nothing. Returns how many keys
    /// this call sealed.
    ///
    /// Every key already sealed is opened first, before any plain key is written: a KEK that
    /// does not open them is the wrong one, and sealing the plain keys under it would leave a
    /// store that no single KEK opens.
    ///
    /// # Errors
    /// If a sealed key does not open under this KEK (nothing is written then), the store
    /// fails or sealing fails.
    pub async fn seal_legacy_keys(&self) -> Result<usize, StartupError> {
        let stored = self.store.keys().await?;
        self.open_all(&stored)?;
        let mut sealed = 0;
        for record in stored {
            if kek::is_sealed(&record.secret) {
                continue;
            }
            let new = self.kek.seal(&record.kid, &record.secret)?;
            if self
                .store
                .replace_key_secret(&record.kid, &record.secret, &new)
                .await?
            {
                tracing::info!(kid = %record.kid, "sealed a plain signing key under the KEK");
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Re-seals every stored key under `new` (one compare-and-set per key); returns how many
    /// keys were re-sealed. Keys are opened with this instance's KEK first, all of them
    /// before any is written, so a wrong current KEK changes nothing. Afterwards only `new`
    /// opens the store: instances must be restarted with it.
    ///
    /// # Errors
    /// If a key does not open, the store fails, or a key changed underneath (run it again).
    pub async fn rewrap_keys(&self, new: &Kek) -> Result<usize, StartupError> {
        let stored = self.store.keys().await?;
        let resealed = self
            .open_all(&stored)?
            .iter()
            .map(|opened| new.seal(&opened.kid, &opened.secret))
            .collect::<Result<Vec<_>, _>>()?;
        let mut count = 0;
        for (record, new_secret) in stored.iter().zip(&resealed) {
            if !self
                .store
                .replace_key_secret(&record.kid, &record.secret, new_secret)
                .await?
            {
                return Err(StartupError::Store(StoreError::Conflict(
                    "signing key changed during rewrap",
                )));
            }
            count += 1;
        }
        Ok(count)
    }
}
