//! Driver errors to gateway errors: the driver's text never leaves infrastructure
//! except in logs.

use flash_sale_domain::Cause;
use flash_sale_domain::gateway::{GatewayError, UniqueKey};
use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Maps a sea-orm error: lost connections, timeouts and a closed pool become
/// `Unavailable` (nothing was changed, safe to retry); the rest `Internal`.
pub fn db_error(err: DbErr) -> GatewayError {
    if is_transient(&err) {
        GatewayError::Unavailable(Cause::with_source("database", err))
    } else {
        GatewayError::Internal(Cause::with_source("database", err))
    }
}

/// Whether the error says "try again" rather than "this is wrong": no connection, a
/// timeout (connecting, waiting for a lock, running a statement, idling in a
/// transaction), a deadlock or a serialization failure. Nothing of the failed
/// statement's transaction was committed.
pub fn is_transient(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(db) => {
                    // MySQL/MariaDB: deadlock, lock wait timeout, statement timeout
                    // (by number: their SQLSTATE is the generic HY000/70100).
                    let mysql = db
                        .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                        .is_some_and(|e| matches!(e.number(), 1213 | 1205 | 1969 | 3024));
                    mysql
                        || matches!(
                            db.code().as_deref(),
                            // PostgreSQL serialization failure, deadlock, lock timeout,
                            // statement timeout, idle-in-transaction timeout; SQLite
                            // busy / locked.
                            Some(
                                "40001"
                                    | "40P01"
                                    | "55P03"
                                    | "57014"
                                    | "25P03"
                                    | "5"
                                    | "6"
                                    | "517"
                                    | "262"
                            )
                        )
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the error came after the database had already waited as long as it is
/// told to: a lock wait or a statement that timed out (SQLite: busy after its busy
/// timeout). Trying again would only wait that long again — a request held by a lock
/// must be answered within the lock timeout, not a multiple of it.
pub(crate) fn waited_out(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sqlx::Error::Database(db) = &**e else {
        return false;
    };
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|e| matches!(e.number(), 1205 | 1969 | 3024))
        || matches!(db.code().as_deref(), Some("55P03" | "57014" | "5"))
}

/// The unique key a violation is about, when it is one the domain names. Index names
/// (MySQL, PostgreSQL) and column lists (SQLite) both contain the column name.
pub(crate) fn duplicate_key(err: &DbErr) -> Option<UniqueKey> {
    let Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) = err.sql_err() else {
        return None;
    };
    UniqueKey::ALL
        .into_iter()
        .find(|key| message.contains(key.column()))
}
