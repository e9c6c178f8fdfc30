//! Brute-force control for logins: per-account and per-IP failure limits, kept in the
//! `login_attempts` table so they survive a restart.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entities::login_attempts;
use crate::error::{Error, Result};

/// Failures counted within this window.
pub const WINDOW_MINUTES: i64 = 15;
/// Failed logins for one account within the window before it is locked.
pub const ACCOUNT_MAX_FAILURES: u64 = 5;
/// Failed logins from one IP (any account) within the window before it is blocked.
pub const IP_MAX_FAILURES: u64 = 20;

fn window() -> Duration {
    Duration::minutes(WINDOW_MINUTES)
}

/// When the `limit`-th most recent failure matching `filter` ages out of the window, if the
/// limit is reached now; failures before the account's last success do not count.
async fn locked_until<C: ConnectionTrait>(
    conn: &C,
    column: login_attempts::Column,
    value: &str,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let since = now - window();
    let last_success: Option<DateTime<Utc>> = login_attempts::Entity::find()
        .select_only()
        .column(login_attempts::Column::AttemptedAt)
        .filter(column.eq(value))
        .filter(login_attempts::Column::Succeeded.eq(true))
        .filter(login_attempts::Column::AttemptedAt.gt(since))
        .order_by_desc(login_attempts::Column::AttemptedAt)
        .into_tuple()
        .one(conn)
        .await?;
    let since = last_success.map_or(since, |t| t.max(since));
    let failures: Vec<DateTime<Utc>> = login_attempts::Entity::find()
        .select_only()
        .column(login_attempts::Column::AttemptedAt)
        .filter(column.eq(value))
        .filter(login_attempts::Column::Succeeded.eq(false))
        .filter(login_attempts::Column::AttemptedAt.gt(since))
        .order_by_desc(login_attempts::Column::AttemptedAt)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if (failures.len() as u64) < limit {
        return Ok(None);
    }
    Ok(failures.last().map(|oldest| *oldest + window()))
}

/// Refuses the attempt when the account or the IP is over its limit.
pub async fn check<C: ConnectionTrait>(
    conn: &C,
    email: &str,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut until = locked_until(
        conn,
        login_attempts::Column::Email,
        email,
        ACCOUNT_MAX_FAILURES,
        now,
    )
    .await?;
    if let Some(ip) = ip {
        let by_ip =
            locked_until(conn, login_attempts::Column::Ip, ip, IP_MAX_FAILURES, now).await?;
        until = until.max(by_ip);
    }
    match until {
        Some(until) if until > now => {
            let minutes = ((until - now).num_seconds() + 59) / 60;
            let unit = if minutes == 1 { "minute" } else { "minutes" };
            Err(Error::RateLimited(format!(
                "Too many failed sign-in attempts. Try again in {minutes} {unit}."
            )))
        }
        _ => Ok(()),
    }
}

/// Records one attempt.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    email: &str,
    ip: Option<&str>,
    succeeded: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    login_attempts::Entity::insert(login_attempts::ActiveModel {
        email: Set(email.chars().take(254).collect()),
        ip: Set(ip.map(str::to_owned)),
        succeeded: Set(succeeded),
        attempted_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Deletes attempts older than a day (they no longer affect any limit).
pub async fn purge_old<C: ConnectionTrait>(conn: &C, now: DateTime<Utc>) -> Result<u64> {
    let result = login_attempts::Entity::delete_many()
        .filter(login_attempts::Column::AttemptedAt.lt(now - Duration::days(1)))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
