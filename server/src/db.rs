//! Connecting to the database (SQLite file or PostgreSQL) and running migrations.

use std::time::Duration;

use app::models::DatabaseKind;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

use crate::config::DatabaseUrl;

/// How long a statement may wait for a pooled connection (or for a new one to open) before it
/// fails; also the Stripe invoice applier's pool's (`billing::webhook::invoices`).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection pool; for SQLite, creates the file's directory and turns on WAL.
pub async fn connect(url: &DatabaseUrl) -> anyhow::Result<DatabaseConnection> {
    if let DatabaseUrl::Sqlite {
        path: Some(path), ..
    } = url
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("could not create the data directory {}: {e}", dir.display())
        })?;
    }
    let mut options = ConnectOptions::new(url.expose().to_owned());
    options
        .max_connections(match url {
            DatabaseUrl::Sqlite { .. } => 8,
            DatabaseUrl::Postgres(_) => 16,
        })
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .sqlx_logging(false)
        // Every connection of the pool (a PRAGMA run once would set only the one it ran on):
        // WAL lets readers proceed while the one writer writes; NORMAL syncs at checkpoints,
        // not at every commit (durable across a process crash, as WAL is).
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
        });
    let db = Database::connect(options).await.map_err(|e| match url {
        // A PostgreSQL error may quote the URL, password included: keep it out of the message.
        DatabaseUrl::Postgres(_) => anyhow::anyhow!(
            "could not connect to PostgreSQL (check DATABASE_URL): {}",
            redact(&e)
        ),
        DatabaseUrl::Sqlite { .. } => anyhow::anyhow!("could not open the SQLite database: {e}"),
    })?;
    Ok(db)
}

/// Holds the lock that makes one `nest serve` the only one on its SQLite file; released when
/// dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct SqliteLock {
    _file: std::fs::File,
}

/// For a SQLite database file: takes an exclusive lock on `<file>.lock`, refusing with one line
/// when another process holds it (SQLite is single-process: a second `nest serve` would run a
/// second job engine and its own live-update channel). `None` for PostgreSQL and `:memory:`.
pub fn lock_sqlite(url: &DatabaseUrl) -> anyhow::Result<Option<SqliteLock>> {
    let DatabaseUrl::Sqlite {
        path: Some(path), ..
    } = url
    else {
        return Ok(None);
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("could not create the data directory {}: {e}", dir.display())
        })?;
    }
    let lock_path = format!("{}.lock", path.display());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| anyhow::anyhow!("could not open the lock file {lock_path}: {e}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(SqliteLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Err(anyhow::anyhow!(
            "another `nest serve` is already using the SQLite database {} (it holds {lock_path}); SQLite is single-process: stop the other one, or use PostgreSQL to run several replicas",
            path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::anyhow!("could not lock {lock_path}: {e}"))
        }
    }
}

fn redact(err: &DbErr) -> String {
    let text = err.to_string();
    match (text.find("://"), text.find('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://[redacted]{}", &text[..start], &text[at..])
        }
        _ => text,
    }
}

/// Which engine a connection talks to.
pub fn kind(db: &DatabaseConnection) -> DatabaseKind {
    match db.get_database_backend() {
        DbBackend::Postgres => DatabaseKind::Postgres,
        _ => DatabaseKind::Sqlite,
    }
}

/// Applies every pending migration.
pub async fn migrate_up(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Reverts the last `steps` migrations (all of them when `None`).
pub async fn migrate_down(db: &DatabaseConnection, steps: Option<u32>) -> Result<(), DbErr> {
    Migrator::down(db, steps).await
}

/// Names of the applied and pending migrations.
pub async fn migration_status(
    db: &DatabaseConnection,
) -> Result<(Vec<String>, Vec<String>), DbErr> {
    let applied = Migrator::get_applied_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let pending = Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Ok((applied, pending))
}

/// Checks the database answers; returns the round-trip time.
pub async fn ping(db: &DatabaseConnection) -> Result<Duration, DbErr> {
    let started = std::time::Instant::now();
    db.ping().await?;
    Ok(started.elapsed())
}

/// Escapes `%`, `_` and backslash for a LIKE pattern used with a backslash `ESCAPE` (both engines).
pub fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A case-insensitive substring match of `search` on any of `columns` (for list searches).
pub fn contains_any(
    search: &str,
    columns: impl IntoIterator<Item = sea_orm::sea_query::Expr>,
) -> sea_orm::Condition {
    use sea_orm::sea_query::{ExprTrait, Func, LikeExpr};
    let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
    columns
        .into_iter()
        .fold(sea_orm::Condition::any(), |any, column| {
            any.add(
                sea_orm::sea_query::Expr::expr(Func::lower(column))
                    .like(LikeExpr::new(pattern.clone()).escape('\\')),
            )
        })
}

/// Takes the `settings` row `key` as a lock for the rest of `txn`: an upsert, the transaction's
/// first write, so transactions taking the same key run one after the other on both engines
/// (PostgreSQL: the row lock; SQLite: the single writer).
pub async fn lock_row<C: ConnectionTrait>(
    txn: &C,
    key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::OnConflict;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    crate::entities::settings::Entity::insert(crate::entities::settings::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(String::new()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(crate::entities::settings::Column::Key)
            .update_column(crate::entities::settings::Column::UpdatedAt)
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_in_user_input_match_only_themselves() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("plain"), "plain");
    }
}
