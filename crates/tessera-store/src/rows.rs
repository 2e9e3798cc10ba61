//! How records map to SQL rows, shared by the SQLite and PostgreSQL backends: they differ in
//! dialect (placeholders, locking, upserts), not in what they store or how it decodes.
//!
//! [`SqlRow`] names the handful of column types the schema uses, implemented once per driver;
//! every record decoder is written against it.

use sqlx::Row;
use tessera_core::authorization::{AuthorizationCode, CodeChallenge};
use tessera_core::client::{ClientId, ClientRecord, Scope};
use tessera_core::jose::Algorithm;
use tessera_core::keys::{KeyRecord, KeyStatus};
use tessera_core::opaque::TokenHash;
use tessera_core::refresh::RefreshFamily;
use tessera_core::revocation::Revocation;
use tessera_core::session::{Session, SessionKind};
use tessera_core::time::UnixTime;
use zeroize::Zeroizing;

use crate::{BoxError, StoreError, User};

/// The column types of Tessera's schema, read by name.
pub(crate) trait SqlRow {
    /// A `TEXT` column.
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    /// A nullable `TEXT` column.
    fn text_opt(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    /// An integer column (Unix seconds, generations).
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    /// A nullable integer column.
    fn int_opt(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A boolean column.
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
    /// A nullable `BLOB` / `BYTEA` column.
    fn bytes_opt(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

macro_rules! sql_row {
    ($row:ty) => {
        impl SqlRow for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn text_opt(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn int_opt(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
                self.try_get(col)
            }
            fn bytes_opt(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
sql_row!(sqlx::sqlite::SqliteRow);
#[cfg(feature = "postgres")]
sql_row!(sqlx::postgres::PgRow);

/// A column that did not decode: the driver's error, kept as the source.
fn undecodable(table: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| {
        tracing::error!(table, "undecodable row");
        StoreError::Backend(Box::new(e))
    }
}

/// A `users` row.
pub(crate) fn user(row: &impl SqlRow) -> Result<User, StoreError> {
    let get = undecodable("users");
    Ok(User {
        id: row.text("id").map_err(&get)?,
        username: row.text("username").map_err(&get)?,
        password_hash: row.text("password_hash").map_err(&get)?,
        is_admin: row.flag("is_admin").map_err(&get)?,
        created_at: UnixTime(row.int("created_at").map_err(&get)?),
        credential_epoch: row.int("credential_epoch").map_err(&get)?,
        disabled: row.flag("disabled").map_err(&get)?,
    })
}

/// An `audit_events` row. A kind this build does not know is a corrupt record.
pub(crate) fn audit_record(row: &impl SqlRow) -> Result<crate::AuditRecord, StoreError> {
    const TABLE: &str = "audit_events";
    let get = undecodable(TABLE);
    let kind = row.text("kind").map_err(&get)?;
    Ok(crate::AuditRecord {
        seq: row.int("seq").map_err(&get)?,
        event: crate::AuditEvent {
            at: UnixTime(row.int("at").map_err(&get)?),
            kind: tessera_core::audit::EventKind::parse(&kind).ok_or(StoreError::Corrupt(TABLE))?,
            user: row.text_opt("username").map_err(&get)?,
            ip: row.text_opt("ip").map_err(&get)?,
            detail: row.text("detail").map_err(&get)?,
        },
    })
}

/// A `sessions` row.
pub(crate) fn session(row: &impl SqlRow) -> Result<Session, StoreError> {
    const TABLE: &str = "sessions";
    let get = undecodable(TABLE);
    let token_hash = match row.bytes_opt("token_hash").map_err(&get)? {
        Some(bytes) => Some(TokenHash(
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt(TABLE))?,
        )),
        None => None,
    };
    Ok(Session {
        id: row.text("id").map_err(&get)?,
        token_hash,
        user_id: row.text("user_id").map_err(&get)?,
        kind: SessionKind::parse(&row.text("kind").map_err(&get)?)
            .ok_or(StoreError::Corrupt(TABLE))?,
        created_at: UnixTime(row.int("created_at").map_err(&get)?),
        last_seen: UnixTime(row.int("last_seen").map_err(&get)?),
        expires_at: UnixTime(row.int("expires_at").map_err(&get)?),
        user_agent: row.text_opt("user_agent").map_err(&get)?,
        ip: row.text_opt("ip").map_err(&get)?,
        client_id: row.text_opt("client_id").map_err(&get)?,
    })
}

/// A `signing_keys` row.
pub(crate) fn key(row: &impl SqlRow) -> Result<KeyRecord, StoreError> {
    const TABLE: &str = "signing_keys";
    let get = undecodable(TABLE);
    Ok(KeyRecord {
        kid: row.text("kid").map_err(&get)?,
        alg: Algorithm::parse(&row.text("alg").map_err(&get)?).ok_or(StoreError::Corrupt(TABLE))?,
        status: KeyStatus::parse(&row.text("status").map_err(&get)?)
            .ok_or(StoreError::Corrupt(TABLE))?,
        created_at: UnixTime(row.int("created_at").map_err(&get)?),
        status_since: UnixTime(row.int("status_since").map_err(&get)?),
        secret: Zeroizing::new(
            row.bytes_opt("secret")
                .map_err(&get)?
                .ok_or(StoreError::Corrupt(TABLE))?,
        ),
    })
}

/// The text columns of a `clients` row.
pub(crate) struct ClientColumns {
    /// The canonical scope string.
    pub(crate) scope: String,
    /// The redirect URIs, in order, separated by single spaces.
    pub(crate) redirect_uris: String,
}

/// A client's text columns. A redirect URI that is empty or holds a space — which
/// [`ClientRecord::validate`] never lets through — would not read back as written, so it is
/// refused rather than stored.
pub(crate) fn client_columns(c: &ClientRecord) -> Result<ClientColumns, StoreError> {
    if c.redirect_uris
        .iter()
        .any(|u| u.is_empty() || u.contains(' '))
    {
        return Err(StoreError::Backend(BoxError::from(
            "a redirect URI that is empty or holds a space cannot be stored",
        )));
    }
    Ok(ClientColumns {
        scope: c.scope.to_string(),
        redirect_uris: c.redirect_uris.join(" "),
    })
}

/// A `clients` row: the inverse of [`client_columns`] and the plain columns.
pub(crate) fn client(row: &impl SqlRow) -> Result<ClientRecord, StoreError> {
    const TABLE: &str = "clients";
    let get = undecodable(TABLE);
    let uris = row.text("redirect_uris").map_err(&get)?;
    let redirect_uris = if uris.is_empty() {
        Vec::new()
    } else {
        uris.split(' ')
            .map(|u| {
                if u.is_empty() {
                    Err(StoreError::Corrupt(TABLE))
                } else {
                    Ok(u.to_owned())
                }
            })
            .collect::<Result<_, _>>()?
    };
    let secret_hash = match row.bytes_opt("secret_hash").map_err(&get)? {
        Some(bytes) => Some(TokenHash(
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt(TABLE))?,
        )),
        None => None,
    };
    Ok(ClientRecord {
        id: ClientId::parse(&row.text("id").map_err(&get)?)
            .map_err(|_| StoreError::Corrupt(TABLE))?,
        name: row.text("name").map_err(&get)?,
        scope: Scope::parse(&row.text("scope").map_err(&get)?)
            .map_err(|_| StoreError::Corrupt(TABLE))?,
        redirect_uris,
        public: row.flag("is_public").map_err(&get)?,
        first_party: row.flag("first_party").map_err(&get)?,
        dpop: row.flag("dpop").map_err(&get)?,
        secret_hash,
        created_at: UnixTime(row.int("created_at").map_err(&get)?),
    })
}

/// A generation from integer column `col`.
pub(crate) fn generation(row: &impl SqlRow, col: &str) -> Result<u32, StoreError> {
    const TABLE: &str = "refresh_families";
    let stored = row.int(col).map_err(undecodable(TABLE))?;
    u32::try_from(stored).map_err(|_| StoreError::Corrupt(TABLE))
}

/// A `refresh_families` row.
pub(crate) fn family(row: &impl SqlRow) -> Result<RefreshFamily, StoreError> {
    let get = undecodable("refresh_families");
    Ok(RefreshFamily {
        id: row.text("id").map_err(&get)?,
        user_id: row.text("user_id").map_err(&get)?,
        sid: row.text("sid").map_err(&get)?,
        client_id: row.text_opt("client_id").map_err(&get)?,
        scope: row.text_opt("scope").map_err(&get)?,
        created_at: UnixTime(row.int("created_at").map_err(&get)?),
        expires_at: UnixTime(row.int("expires_at").map_err(&get)?),
        generation: generation(row, "generation")?,
        rotated_at: row.int_opt("rotated_at").map_err(&get)?.map(UnixTime),
        sealed_successor: row.bytes_opt("sealed_successor").map_err(&get)?,
        revoked_at: row.int_opt("revoked_at").map_err(&get)?.map(UnixTime),
        jkt: row.text_opt("jkt").map_err(&get)?,
    })
}

/// A revocation as `(kind, key, not_before, expires_at)`; `not_before` only for user cutoffs.
pub(crate) fn revocation_columns(r: &Revocation) -> (&'static str, &str, Option<i64>, i64) {
    match r {
        Revocation::Token { jti, expires_at } => ("token", jti, None, expires_at.0),
        Revocation::Session { sid, expires_at } => ("session", sid, None, expires_at.0),
        Revocation::User {
            user_id,
            not_before,
            expires_at,
        } => ("user", user_id, Some(not_before.0), expires_at.0),
        Revocation::Key { kid, expires_at } => ("key", kid, None, expires_at.0),
    }
}

/// A `revocations` row: the inverse of [`revocation_columns`].
pub(crate) fn revocation(row: &impl SqlRow) -> Result<Revocation, StoreError> {
    let get = undecodable("revocations");
    let key = row.text("key").map_err(&get)?;
    let expires_at = UnixTime(row.int("expires_at").map_err(&get)?);
    match (
        row.text("kind").map_err(&get)?.as_str(),
        row.int_opt("not_before").map_err(&get)?,
    ) {
        ("token", _) => Ok(Revocation::Token {
            jti: key,
            expires_at,
        }),
        ("session", _) => Ok(Revocation::Session {
            sid: key,
            expires_at,
        }),
        ("user", Some(nb)) => Ok(Revocation::User {
            user_id: key,
            not_before: UnixTime(nb),
            expires_at,
        }),
        ("key", _) => Ok(Revocation::Key {
            kid: key,
            expires_at,
        }),
        _ => Err(StoreError::Corrupt("revocations")),
    }
}

/// An `authorization_codes` row.
pub(crate) fn code(row: &impl SqlRow) -> Result<AuthorizationCode, StoreError> {
    const TABLE: &str = "authorization_codes";
    let get = undecodable(TABLE);
    let corrupt = |_| StoreError::Corrupt(TABLE);
    Ok(AuthorizationCode {
        client_id: ClientId::parse(&row.text("client_id").map_err(&get)?).map_err(corrupt)?,
        redirect_uri: row.text("redirect_uri").map_err(&get)?,
        user_id: row.text("user_id").map_err(&get)?,
        credential_epoch: row.int("credential_epoch").map_err(&get)?,
        sid: row.text("sid").map_err(&get)?,
        scope: Scope::parse(&row.text("scope").map_err(&get)?)
            .map_err(|_| StoreError::Corrupt(TABLE))?,
        challenge: CodeChallenge::parse(
            Some(&row.text("code_challenge").map_err(&get)?),
            Some("S256"),
        )
        .map_err(|_| StoreError::Corrupt(TABLE))?,
        created_at: UnixTime(row.int("created_at").map_err(&get)?),
        expires_at: UnixTime(row.int("expires_at").map_err(&get)?),
    })
}
