//! Brute-force control for logins: per-account and per-IP failure limits, kept in the
//! `login_attempts` table so they survive a restart.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use crate::entities::{login_attempts, login_blocks};
use crate::error::Result;

/// Failures counted within this window.
pub const WINDOW_MINUTES: i64 = 15;
/// Failed logins for one account within the window before it is locked.
pub const ACCOUNT_MAX_FAILURES: u64 = 5;
/// Failed logins from one IP (any account) within the window before it is blocked.
pub const IP_MAX_FAILURES: u64 = 20;

/// The address a client's attempts are counted under: an IPv4 address itself, an IPv6 client
/// by its /64 (one subscriber usually holds a whole /64, so counting single addresses would let
/// it rotate through 2^64 of them).
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

/// The address a request's attempts are counted under (see [`address_key`]).
pub fn request_address(req: &app::backend::RequestInfo) -> Option<String> {
    req.ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .map(address_key)
}

fn window() -> Duration {
    Duration::minutes(WINDOW_MINUTES)
}

/// When the `limit`-th most recent failure for the account ages out of the window, if the
/// limit is reached now; failures before the account's last success do not count. A pending
/// attempt (reserved, not yet verified) counts as a failure.
async fn account_locked_until<C: ConnectionTrait>(
    conn: &C,
    email: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let since = now - window();
    let last_success: Option<DateTime<Utc>> = login_attempts::Entity::find()
        .select_only()
        .column(login_attempts::Column::AttemptedAt)
        .filter(login_attempts::Column::Email.eq(email))
        .filter(login_attempts::Column::Succeeded.eq(true))
        .filter(login_attempts::Column::AttemptedAt.gt(since))
        .order_by_desc(login_attempts::Column::AttemptedAt)
        .into_tuple()
        .one(conn)
        .await?;
    let since = last_success.map_or(since, |t| Ord::max(t, since));
    let failures: Vec<DateTime<Utc>> = login_attempts::Entity::find()
        .select_only()
        .column(login_attempts::Column::AttemptedAt)
        .filter(login_attempts::Column::Email.eq(email))
        .filter(login_attempts::Column::Succeeded.eq(false))
        .filter(login_attempts::Column::AttemptedAt.gt(since))
        .order_by_desc(login_attempts::Column::AttemptedAt)
        .limit(ACCOUNT_MAX_FAILURES)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(oldest_if_full(&failures, ACCOUNT_MAX_FAILURES))
}

/// The same for an address: failures of any account from it count, except those an account's
/// own later success (from this address) cleared. A success never clears the failures of
/// *other* accounts, so an attacker cannot reset the address's count with an account of theirs.
async fn address_locked_until<C: ConnectionTrait>(
    conn: &C,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let since = now - window();
    let rows: Vec<(String, bool, DateTime<Utc>)> = login_attempts::Entity::find()
        .select_only()
        .column(login_attempts::Column::Email)
        .column(login_attempts::Column::Succeeded)
        .column(login_attempts::Column::AttemptedAt)
        .filter(login_attempts::Column::Ip.eq(address))
        .filter(login_attempts::Column::AttemptedAt.gt(since))
        .order_by_desc(login_attempts::Column::AttemptedAt)
        .into_tuple()
        .all(conn)
        .await?;
    // Newest first: an account's failures older than its newest success are cleared.
    let mut succeeded: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for (email, ok, at) in &rows {
        if *ok {
            succeeded.insert(email.as_str());
        } else if !succeeded.contains(email.as_str()) {
            failures.push(*at);
        }
    }
    failures.truncate(usize::try_from(IP_MAX_FAILURES).unwrap_or(usize::MAX));
    Ok(oldest_if_full(&failures, IP_MAX_FAILURES))
}

fn oldest_if_full(newest_first: &[DateTime<Utc>], limit: u64) -> Option<DateTime<Utc>> {
    if (newest_first.len() as u64) < limit {
        return None;
    }
    newest_first.last().map(|oldest| *oldest + window())
}

/// Which limit refused an attempt, as the key its refusals are counted under: the account
/// (any address) or the address (any account). So neither rotating addresses against a locked
/// account nor rotating emails from a blocked address adds audit rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockKey {
    /// The account, or empty when the address limit refused.
    pub email: String,
    /// The address, or empty when the account limit refused.
    pub address: String,
}

/// A refused attempt: what to tell the person, and the key it counts under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// "Too many failed sign-in attempts. Try again in N minutes."
    pub message: String,
    /// See [`BlockKey`].
    pub key: BlockKey,
}

/// Whether the account or the address is over its limit (the address first: it covers every
/// account tried from it).
pub async fn check<C: ConnectionTrait>(
    conn: &C,
    email: &str,
    address: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>> {
    let by_address = match address {
        Some(address) => address_locked_until(conn, address, now)
            .await?
            .filter(|until| *until > now),
        None => None,
    };
    let by_account = account_locked_until(conn, email, now)
        .await?
        .filter(|until| *until > now);
    let (until, key) = match (by_address, by_account) {
        (Some(a), b) => (
            Ord::max(a, b.unwrap_or(a)),
            BlockKey {
                email: String::new(),
                address: address.unwrap_or_default().to_owned(),
            },
        ),
        (None, Some(b)) => (
            b,
            BlockKey {
                email: email.chars().take(254).collect(),
                address: String::new(),
            },
        ),
        (None, None) => return Ok(None),
    };
    let minutes = ((until - now).num_seconds() + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    Ok(Some(Refusal {
        message: format!("Too many failed sign-in attempts. Try again in {minutes} {unit}."),
        key,
    }))
}

/// A login attempt counted before its password is verified (see [`reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation(i64);

/// Checks the limits and, when the attempt is allowed, records it as a failure in the same
/// transaction, *before* the password is verified. Reservations are serialized (one lock row,
/// `settings['lock.logins']`, on both engines), so N concurrent attempts can never get more
/// verdicts than the limit allows: the others see the reserved failures and are refused.
/// A correct password then turns the reservation into a success ([`succeed`]).
pub async fn reserve(
    db: &DatabaseConnection,
    email: &str,
    address: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Result<Reservation, Refusal>> {
    let txn = db.begin().await?;
    crate::db::lock_row(&txn, "lock.logins", now).await?;
    if let Some(refusal) = check(&txn, email, address, now).await? {
        return Ok(Err(refusal));
    }
    let id = login_attempts::Entity::insert(login_attempts::ActiveModel {
        email: Set(email.chars().take(254).collect()),
        ip: Set(address.map(str::to_owned)),
        succeeded: Set(false),
        attempted_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?
    .last_insert_id;
    txn.commit().await?;
    Ok(Ok(Reservation(id)))
}

/// Marks a reserved attempt as a success (on the login's own transaction).
pub async fn succeed<C: ConnectionTrait>(conn: &C, reservation: Reservation) -> Result<()> {
    login_attempts::Entity::update_many()
        .col_expr(login_attempts::Column::Succeeded, Expr::value(true))
        .filter(login_attempts::Column::Id.eq(reservation.0))
        .exec(conn)
        .await?;
    Ok(())
}

/// Forgets a reserved attempt whose password was never verified (the server was too busy).
pub async fn release<C: ConnectionTrait>(conn: &C, reservation: Reservation) -> Result<()> {
    login_attempts::Entity::delete_by_id(reservation.0)
        .exec(conn)
        .await?;
    Ok(())
}

/// The start of the lockout window `now` falls in (consecutive slots of [`WINDOW_MINUTES`]).
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let slot = WINDOW_MINUTES * 60;
    let start = now.timestamp().div_euclid(slot) * slot;
    DateTime::from_timestamp(start, 0).unwrap_or(now)
}

/// Counts a refused attempt under its key ([`BlockKey`]). The first refusal of a key in a
/// window writes an `auth.login_blocked` audit row; later ones only raise the window's count,
/// which [`close_windows`] writes to the audit log once the window is over. A flood therefore
/// writes at most two audit rows per key and window.
pub async fn record_blocked(
    db: &DatabaseConnection,
    actor: &crate::audit::Actor,
    key: &BlockKey,
    now: DateTime<Utc>,
) -> Result<()> {
    let start = window_start(now);
    let email = key.email.clone();
    let address = key.address.clone();
    let txn = db.begin().await?;
    let inserted = login_blocks::Entity::insert(login_blocks::ActiveModel {
        email: Set(email.clone()),
        address: Set(address.clone()),
        window_start: Set(start),
        blocked_count: Set(1),
        last_user_agent: Set(actor.user_agent.clone()),
        first_at: Set(now),
        last_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            login_blocks::Column::Email,
            login_blocks::Column::Address,
            login_blocks::Column::WindowStart,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if inserted == 1 {
        crate::audit::record(
            &txn,
            actor,
            "auth.login_blocked",
            ("user", None),
            serde_json::json!({
                "reason": "too many failures",
                "limit": if key.email.is_empty() { "address" } else { "account" },
                "window_start": start,
                "window_minutes": WINDOW_MINUTES,
            }),
            now,
        )
        .await?;
    } else {
        login_blocks::Entity::update_many()
            .col_expr(
                login_blocks::Column::BlockedCount,
                Expr::col(login_blocks::Column::BlockedCount).add(1),
            )
            .col_expr(login_blocks::Column::LastAt, Expr::value(now))
            .col_expr(
                login_blocks::Column::LastUserAgent,
                Expr::value(actor.user_agent.clone()),
            )
            .filter(login_blocks::Column::Email.eq(email))
            .filter(login_blocks::Column::Address.eq(address))
            .filter(login_blocks::Column::WindowStart.eq(start))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Writes one `auth.login_blocked` row with the count of each window that is over (when more
/// than its first refusal happened) and forgets the window; returns how many windows closed.
pub async fn close_windows(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64> {
    let closed = login_blocks::Entity::find()
        .filter(login_blocks::Column::WindowStart.lte(now - window()))
        .order_by_asc(login_blocks::Column::Id)
        .limit(1000)
        .all(db)
        .await?;
    let mut count = 0;
    for block in closed {
        let txn = db.begin().await?;
        // Conditional, so two replicas closing the same window write its row once.
        let deleted = login_blocks::Entity::delete_by_id(block.id)
            .exec(&txn)
            .await?
            .rows_affected;
        if deleted == 1 && block.blocked_count > 1 {
            let actor = crate::audit::Actor {
                user_id: None,
                email: if block.email.is_empty() {
                    "(any account)".to_owned()
                } else {
                    block.email.clone()
                },
                ip: Some(block.address.clone()).filter(|a| !a.is_empty()),
                user_agent: block.last_user_agent.clone(),
            };
            crate::audit::record(
                &txn,
                &actor,
                "auth.login_blocked",
                ("user", None),
                serde_json::json!({
                    "reason": "too many failures",
                    "limit": if block.email.is_empty() { "address" } else { "account" },
                    "window_start": block.window_start,
                    "window_minutes": WINDOW_MINUTES,
                    "count": block.blocked_count,
                    "first_at": block.first_at,
                    "last_at": block.last_at,
                }),
                block.last_at,
            )
            .await?;
        }
        txn.commit().await?;
        count += deleted;
    }
    Ok(count)
}

/// Deletes attempts older than a day (they no longer affect any limit).
pub async fn purge_old<C: ConnectionTrait>(conn: &C, now: DateTime<Utc>) -> Result<u64> {
    let result = login_attempts::Entity::delete_many()
        .filter(login_attempts::Column::AttemptedAt.lt(now - Duration::days(1)))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_slash_64_and_ipv4_per_address() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:bbbb:cccc:dddd:eeee".parse().unwrap());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, address_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(address_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(
            address_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7"
        );
    }
}
