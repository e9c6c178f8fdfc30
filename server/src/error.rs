//! The server's error taxonomy, and the one place it is mapped to what the dashboard sees.

use app::error::AppError;
use sea_orm::{DbErr, SqlErr};

/// Everything that can go wrong in Nest's domain services.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input broke a rule; `field` names the input, `message` says what is wrong.
    #[error("{field}: {message}")]
    Validation {
        /// The input at fault.
        field: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// A unique constraint refused the write: something with this key already exists.
    #[error("already exists: {0}")]
    Duplicate(String),
    /// A foreign key refused the write: a referenced row is missing, or a row is still in use.
    #[error("still referenced or missing reference: {0}")]
    Reference(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (setup already done, last superadmin, …).
    #[error("{0}")]
    Conflict(String),
    /// No valid session.
    #[error("not logged in")]
    Unauthenticated,
    /// Logged in but not allowed (not a platform admin, or not a superadmin).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many attempts; the message says when to try again.
    #[error("{0}")]
    RateLimited(String),
    /// The server is at capacity for this kind of work (password hashing); retry after the
    /// given number of seconds.
    #[error("busy: retry after {retry_after_secs} s")]
    Busy {
        /// Suggested wait.
        retry_after_secs: u64,
    },
    /// An outside service this needs (Stripe) could not be reached or refused the call; the
    /// message is safe to show, the detail was logged where it happened.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed in a way no caller can fix (connection lost, bad SQL, …).
    #[error("database error: {0}")]
    Database(DbErr),
    /// Something that cannot fail did (hashing, a background task); a bug or a broken machine.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A `Validation` error of `field` (shown beside its input).
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field,
            message: message.into(),
        }
    }
}

impl From<DbErr> for Error {
    /// Constraint violations become typed errors; everything else stays a database error.
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => Self::Duplicate(detail),
            Some(SqlErr::ForeignKeyConstraintViolation(detail)) => Self::Reference(detail),
            // SQLite reports `ON DELETE RESTRICT` as SQLITE_CONSTRAINT_TRIGGER (1811), which
            // SeaORM does not classify; its message is the same as for other FK failures.
            _ if err.to_string().contains("FOREIGN KEY constraint failed") => {
                Self::Reference(err.to_string())
            }
            _ => Self::Database(err),
        }
    }
}

/// Result of a domain service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for AppError {
    /// The boundary: the one place server errors become dashboard errors, and where unexpected
    /// ones are logged (once), under a reference the admin can quote.
    fn from(err: Error) -> Self {
        match err {
            Error::Validation { field, message } => AppError::Validation {
                field: field.to_owned(),
                message,
            },
            Error::Duplicate(_) => {
                AppError::Conflict("something with the same name or key already exists".to_owned())
            }
            Error::Reference(_) => AppError::Conflict(
                "this is still in use, or refers to something that does not exist".to_owned(),
            ),
            Error::NotFound(what) => AppError::NotFound(what),
            Error::Conflict(message) => AppError::Conflict(message),
            Error::Unauthenticated => AppError::Unauthenticated,
            Error::Forbidden(why) => AppError::Forbidden(why),
            Error::RateLimited(message) => AppError::RateLimited(message),
            Error::Busy { retry_after_secs } => AppError::Unavailable {
                message: "The server is busy. Try again in a few seconds.".to_owned(),
                retry_after_secs,
            },
            Error::Unavailable(message) => AppError::Unavailable {
                message,
                retry_after_secs: 10,
            },
            Error::Database(db) => {
                let reference = error_reference();
                tracing::error!(error.reference = %reference, error.kind = "database", error.detail = %db, "request failed");
                AppError::Internal(reference)
            }
            Error::Internal(detail) => {
                let reference = error_reference();
                tracing::error!(error.reference = %reference, error.kind = "internal", error.detail = %detail, "request failed");
                AppError::Internal(reference)
            }
        }
    }
}

/// A short reference that ties a user-visible error to its log line.
pub(crate) fn error_reference() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = chrono::Utc::now().timestamp_subsec_micros();
    format!("E{:05X}{:04X}", t & 0xFFFFF, n & 0xFFFF)
}
