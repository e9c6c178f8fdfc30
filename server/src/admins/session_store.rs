//! tower-sessions' `SessionStore` over SeaORM: sessions live in the `sessions` table, on SQLite
//! or PostgreSQL, so they survive restarts and can be ended server-side.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::clock::Clock;
use crate::entities::sessions;

/// The session key holding the logged-in user's id (also copied to `sessions.user_id`).
pub const USER_ID_KEY: &str = "auth.user_id";
/// The session key holding when the user logged in (for the absolute timeout).
pub const LOGGED_IN_AT_KEY: &str = "auth.logged_in_at";

/// How stale a session's expiry may get before a request extends it (bounds the writes that
/// reading a session costs to one a minute).
pub const TOUCH_AFTER_MINUTES: i64 = 1;

/// Sessions in the database.
#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: DatabaseConnection,
    clock: Clock,
    idle: chrono::Duration,
}

impl DbSessionStore {
    /// A store over `db`. Expiry is the store's own: every save, and every load of a session
    /// whose expiry was last extended over a minute ago, sets it to `clock`'s now plus `idle`
    /// (so activity extends a session); loads ignore rows past it. Saves never recreate a
    /// deleted session.
    pub fn new(db: DatabaseConnection, clock: Clock, idle: chrono::Duration) -> Self {
        Self { db, clock, idle }
    }

    /// Ends every session of `user_id` (logout everywhere; admin removed or role changed).
    pub async fn delete_for_user<C: sea_orm::ConnectionTrait>(
        db: &C,
        user_id: i64,
    ) -> Result<u64, sea_orm::DbErr> {
        let result = sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user_id))
            .exec(db)
            .await?;
        Ok(result.rows_affected)
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// The record's data as stored, and the user id copied out of it.
fn encode(record: &Record) -> Result<(String, Option<i64>), session_store::Error> {
    let data = serde_json::to_string(&record.data)
        .map_err(|e| session_store::Error::Encode(e.to_string()))?;
    let user_id = record
        .data
        .get(USER_ID_KEY)
        .and_then(serde_json::Value::as_i64);
    Ok((data, user_id))
}

fn model(
    record: &Record,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<sessions::ActiveModel, session_store::Error> {
    let (data, user_id) = encode(record)?;
    Ok(sessions::ActiveModel {
        id: Set(record.id.to_string()),
        user_id: Set(user_id),
        data: Set(data),
        expires_at: Set(expires_at),
        created_at: Set(now),
    })
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; on the astronomically unlikely collision, draw again.
        loop {
            let now = self.clock.now();
            let inserted = sessions::Entity::insert(model(record, now, now + self.idle)?)
                .on_conflict(
                    OnConflict::column(sessions::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await
                .map_err(backend)?;
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates a live session only: a session deleted meanwhile (logout, admin removed, role
    /// changed) or expired stays gone, so a request that loaded it before the logout cannot
    /// write it back. (New sessions go through [`SessionStore::create`].)
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let now = self.clock.now();
        let (data, user_id) = encode(record)?;
        let updated = sessions::Entity::update_many()
            .col_expr(sessions::Column::UserId, Expr::value(user_id))
            .col_expr(sessions::Column::Data, Expr::value(data))
            .col_expr(sessions::Column::ExpiresAt, Expr::value(now + self.idle))
            .filter(sessions::Column::Id.eq(record.id.to_string()))
            .filter(sessions::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if updated.rows_affected == 0 {
            tracing::debug!("a session ended while a request was using it: not saved");
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = sessions::Entity::find_by_id(id.to_string())
            .filter(sessions::Column::ExpiresAt.gt(self.clock.now()))
            .one(&self.db)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        // Activity extends the idle expiry. Unmodified sessions are not saved, so the store
        // does it here: at most once a minute per session, and only while the row still exists
        // (a conditional update never brings back a session deleted meanwhile).
        let now = self.clock.now();
        let mut expires_at = row.expires_at;
        if now + self.idle - expires_at >= chrono::Duration::minutes(TOUCH_AFTER_MINUTES) {
            let touched = sessions::Entity::update_many()
                .col_expr(sessions::Column::ExpiresAt, Expr::value(now + self.idle))
                .filter(sessions::Column::Id.eq(row.id.clone()))
                .filter(sessions::Column::ExpiresAt.gt(now))
                .exec(&self.db)
                .await
                .map_err(backend)?;
            if touched.rows_affected == 0 {
                return Ok(None);
            }
            expires_at = now + self.idle;
        }
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expires_at.timestamp())
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sessions::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lte(self.clock.now()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
