//! Admin access: the first-run setup, login and logout, sessions with idle and absolute
//! timeouts, brute-force limits, and managing platform admins (superadmin only).
//!
//! Every change writes its audit row in the same transaction. Changes to the set of admins take
//! a lock row (`settings.key = 'lock.admins'`) first, so concurrent requests are serialized on
//! both engines (a race to be the first admin, two superadmins demoting each other).

pub mod password;
pub mod rate_limit;
pub mod session_store;
pub mod two_factor;

use app::backend::{AdminsBackend, RequestInfo};
use app::error::AppError;
use app::models::{
    AddedAdmin, AdminIdentity, AdminRole, AdminSummary, Caller, Email, InitialPassword,
    LoginOutcome,
};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::{self, Actor};
use crate::clock::{Clock, hex, random_hex};
use crate::entities::{platform_admins, user_tokens, users};
use crate::error::{Error, Result};
use session_store::{DbSessionStore, LOGGED_IN_AT_KEY, USER_ID_KEY};

/// The one message for an unknown email and a wrong password alike.
pub const BAD_CREDENTIALS: &str = "Email or password is incorrect.";
/// How long a one-time set-password link stays valid.
pub const SET_PASSWORD_LINK_HOURS: i64 = 48;

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after login, active or not.
    pub absolute: Duration,
}

impl SessionPolicy {
    /// The lifetimes configured by `NEST_SESSION_IDLE_MINUTES` and `NEST_SESSION_ABSOLUTE_HOURS`.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            idle: Duration::minutes(i64::from(config.session_idle_minutes)),
            absolute: Duration::hours(i64::from(config.session_absolute_hours)),
        }
    }
}

/// Implements [`AdminsBackend`].
#[derive(Clone)]
pub struct AdminService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Session lifetimes.
    pub policy: SessionPolicy,
    /// Where ended sessions are announced (open live streams re-check theirs); `None` in the
    /// command line.
    pub events: Option<crate::events::Events>,
}

fn session_err(e: tower_sessions::session::Error) -> Error {
    Error::Internal(format!("session: {e}"))
}

fn parse_email(raw: &str) -> Result<Email> {
    raw.parse()
        .map_err(|e: app::models::ParseError| Error::Validation {
            field: "email",
            message: e.to_string(),
        })
}

/// SHA-256 of a one-time token, as stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Serializes changes to the set of admins (see the module docs).
async fn lock_admins(txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<()> {
    crate::db::lock_row(txn, "lock.admins", now).await?;
    Ok(())
}

async fn superadmin_count<C: ConnectionTrait>(conn: &C) -> Result<u64> {
    Ok(platform_admins::Entity::find()
        .filter(platform_admins::Column::Role.eq(AdminRole::Superadmin))
        .count(conn)
        .await?)
}

async fn admin_of<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<platform_admins::Model> {
    platform_admins::Entity::find()
        .filter(platform_admins::Column::UserId.eq(user_id))
        .one(conn)
        .await?
        .ok_or_else(|| Error::NotFound("admin".to_owned()))
}

/// Creates a user with a platform role, or gives an existing user one. Returns the user.
async fn grant<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
    password_hash: Option<String>,
    role: AdminRole,
    created_by: Option<i64>,
    now: DateTime<Utc>,
) -> Result<users::Model> {
    let user = match users::Entity::find()
        .filter(users::Column::Email.eq(email.clone()))
        .one(conn)
        .await?
    {
        Some(user) => {
            if let Some(hash) = password_hash {
                let mut active: users::ActiveModel = user.into();
                active.password_hash = Set(Some(hash));
                active.updated_at = Set(now);
                active.update(conn).await?
            } else {
                user
            }
        }
        None => {
            users::ActiveModel {
                email: Set(email.clone()),
                password_hash: Set(password_hash),
                created_at: Set(now),
                updated_at: Set(now),
                last_login_at: Set(None),
                ..Default::default()
            }
            .insert(conn)
            .await?
        }
    };
    if platform_admins::Entity::find()
        .filter(platform_admins::Column::UserId.eq(user.id))
        .one(conn)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "{email} is already a platform admin"
        )));
    }
    platform_admins::ActiveModel {
        user_id: Set(user.id),
        role: Set(role),
        created_by_user_id: Set(created_by),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(user)
}

fn check_confirmation(password: &str, confirm: &str) -> Result<()> {
    if password != confirm {
        return Err(Error::Validation {
            field: "confirm",
            message: "does not match the password".to_owned(),
        });
    }
    Ok(())
}

impl AdminService {
    /// Whether no platform admin exists.
    pub async fn needs_setup(&self) -> Result<bool> {
        Ok(platform_admins::Entity::find().count(&self.db).await? == 0)
    }

    /// Creates an admin from the command line (`nest create-admin`); the first superadmin made
    /// this way closes `/setup` like the wizard would.
    pub async fn create_from_cli(
        &self,
        email: &str,
        role: AdminRole,
        password: String,
    ) -> Result<users::Model> {
        let email = parse_email(email)?;
        password::check_strength(&password, email.as_str())?;
        let hash = password::hash(password).await?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        lock_admins(&txn, now).await?;
        let user = grant(&txn, &email, Some(hash), role, None, now).await?;
        let actor = Actor {
            user_id: None,
            email: "cli".to_owned(),
            ip: None,
            user_agent: Some("nest create-admin".to_owned()),
        };
        audit::record(
            &txn,
            &actor,
            "admin.added",
            ("user", Some(user.id.to_string())),
            json!({"email": email, "role": role, "via": "cli"}),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(user)
    }

    async fn setup_inner(
        &self,
        req: &RequestInfo,
        email: String,
        password: String,
        confirm: String,
    ) -> Result<AdminIdentity> {
        let email = parse_email(&email)?;
        password::check_strength(&password, email.as_str())?;
        check_confirmation(&password, &confirm)?;
        if !self.needs_setup().await? {
            return Err(Error::Conflict(
                "Setup is already complete: sign in instead.".to_owned(),
            ));
        }
        let hash = password::hash(password).await?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        lock_admins(&txn, now).await?;
        // Re-checked under the lock: of two racing requests, only the first gets here with zero.
        if platform_admins::Entity::find().count(&txn).await? > 0 {
            return Err(Error::Conflict(
                "Setup is already complete: sign in instead.".to_owned(),
            ));
        }
        let user = grant(&txn, &email, Some(hash), AdminRole::Superadmin, None, now).await?;
        // Finishing setup signs the new superadmin in: that is their first login.
        let mut active: users::ActiveModel = user.clone().into();
        active.last_login_at = Set(Some(now));
        active.update(&txn).await?;
        let actor = Actor::new(req, Some(user.id), email.as_str());
        audit::record(
            &txn,
            &actor,
            "setup.completed",
            ("user", Some(user.id.to_string())),
            json!({"email": email, "role": "superadmin"}),
            now,
        )
        .await?;
        txn.commit().await?;
        self.start_session(req, user.id, now).await?;
        Ok(AdminIdentity {
            user_id: user.id,
            email: email.to_string(),
            role: AdminRole::Superadmin,
        })
    }

    async fn start_session(
        &self,
        req: &RequestInfo,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // A new id at every login: a session id planted before login is useless after it.
        req.session.cycle_id().await.map_err(session_err)?;
        req.session
            .insert(USER_ID_KEY, user_id)
            .await
            .map_err(session_err)?;
        req.session
            .insert(LOGGED_IN_AT_KEY, now.timestamp())
            .await
            .map_err(session_err)?;
        Ok(())
    }

    async fn login_inner(
        &self,
        req: &RequestInfo,
        email: String,
        password: String,
    ) -> Result<LoginOutcome> {
        let typed = email.trim().to_lowercase();
        if typed.is_empty() {
            return Err(Error::Validation {
                field: "email",
                message: "is required".to_owned(),
            });
        }
        if password.is_empty() {
            return Err(Error::Validation {
                field: "password",
                message: "is required".to_owned(),
            });
        }
        let now = self.clock.now();
        let address = rate_limit::request_address(req);
        // The attempt is counted before the password is hashed, atomically: a burst of
        // concurrent guesses gets at most the allowed number of verdicts.
        let reservation =
            match rate_limit::reserve(&self.db, &typed, address.as_deref(), now).await? {
                Ok(reservation) => reservation,
                Err(refusal) => {
                    rate_limit::record_blocked(
                        &self.db,
                        &Actor::new(req, None, &typed),
                        &refusal.key,
                        now,
                    )
                    .await?;
                    crate::metrics::login_failure("rate_limited");
                    return Err(Error::RateLimited(refusal.message));
                }
            };
        let user = match typed.parse::<Email>() {
            Ok(email) => {
                users::Entity::find()
                    .filter(users::Column::Email.eq(email))
                    .one(&self.db)
                    .await?
            }
            Err(_) => None,
        };
        // Verified even for unknown accounts (against a dummy hash) so timing reveals nothing.
        let ok = match password::verify(
            password.chars().take(password::MAX_LEN * 4).collect(),
            user.as_ref().and_then(|u| u.password_hash.clone()),
        )
        .await
        {
            Ok(ok) => ok,
            Err(e) => {
                // Never verified: the attempt does not count against the account.
                rate_limit::release(&self.db, reservation).await?;
                return Err(e);
            }
        };
        let now = self.clock.now();
        let Some(user) = user.filter(|_| ok) else {
            let txn = self.db.begin().await?;
            audit::record(
                &txn,
                &Actor::new(req, None, &typed),
                "auth.login_failed",
                ("user", None),
                json!({"reason": "bad credentials"}),
                now,
            )
            .await?;
            txn.commit().await?;
            crate::metrics::login_failure("bad_credentials");
            return Err(Error::Validation {
                field: "form",
                message: BAD_CREDENTIALS.to_owned(),
            });
        };
        // Read before the transaction: on SQLite a transaction that reads, then writes, fails
        // at once when another write committed in between (its snapshot is stale).
        let role = platform_admins::Entity::find()
            .filter(platform_admins::Column::UserId.eq(user.id))
            .one(&self.db)
            .await?
            .map(|a| a.role);
        // A second step comes next: the password's attempt stays counted as a failure until
        // it succeeds, so guessing codes with a known password still meets the lockout.
        let second_step = if two_factor::enrolled(&self.db, user.id).await? {
            Some(LoginOutcome::CodeRequired)
        } else if role.is_some() && two_factor::required(&self.db).await? {
            Some(LoginOutcome::EnrolmentRequired)
        } else {
            None
        };
        if let Some(outcome) = second_step {
            let enrol = outcome == LoginOutcome::EnrolmentRequired;
            two_factor::remember_pending(req, user.id, enrol, now).await?;
            return Ok(outcome);
        }
        let txn = self.db.begin().await?;
        rate_limit::succeed(&txn, reservation).await?;
        let mut active: users::ActiveModel = user.clone().into();
        active.last_login_at = Set(Some(now));
        active.update(&txn).await?;
        audit::record(
            &txn,
            &Actor::new(req, Some(user.id), user.email.as_str()),
            "auth.login",
            ("user", Some(user.id.to_string())),
            json!({"role": role}),
            now,
        )
        .await?;
        txn.commit().await?;
        self.start_session(req, user.id, now).await?;
        Ok(LoginOutcome::SignedIn(Caller {
            user_id: user.id,
            email: user.email.to_string(),
            role,
        }))
    }

    async fn logout_inner(&self, req: &RequestInfo) -> Result<()> {
        let caller = self.caller_inner(req).await?;
        if let Some(caller) = &caller {
            let now = self.clock.now();
            let txn = self.db.begin().await?;
            audit::record(
                &txn,
                &Actor::new(req, Some(caller.user_id), &caller.email),
                "auth.logout",
                ("user", Some(caller.user_id.to_string())),
                json!({}),
                now,
            )
            .await?;
            txn.commit().await?;
        }
        req.session.flush().await.map_err(session_err)?;
        if let Some(caller) = caller {
            self.announce_sessions_ended(caller.user_id);
        }
        Ok(())
    }

    fn announce_sessions_ended(&self, user_id: i64) {
        if let Some(events) = &self.events {
            events.publish(app::models::Change::Sessions(user_id));
        }
    }

    /// Tells open `/admins` pages that the list changed (an admin added, removed, given another
    /// role, or their two-factor sign-in reset).
    pub(crate) fn announce_admins_changed(&self) {
        if let Some(events) = &self.events {
            events.publish(app::models::Change::Admins);
        }
    }

    /// Whether the session `id` still belongs to a platform admin: it exists, has not expired
    /// (idle or absolute) and its user still has a role. Reads only: a live stream checking
    /// this does not keep a session alive.
    pub async fn session_is_admin(&self, id: &str) -> Result<bool> {
        let now = self.clock.now();
        let Some(row) = crate::entities::sessions::Entity::find_by_id(id.to_owned())
            .filter(crate::entities::sessions::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?
        else {
            return Ok(false);
        };
        let data: serde_json::Value = serde_json::from_str(&row.data).unwrap_or_default();
        let started = data
            .get(LOGGED_IN_AT_KEY)
            .and_then(serde_json::Value::as_i64)
            .and_then(|t| DateTime::from_timestamp(t, 0));
        if started.is_none_or(|t| now - t >= self.policy.absolute) {
            return Ok(false);
        }
        let Some(user_id) = row.user_id else {
            return Ok(false);
        };
        Ok(platform_admins::Entity::find()
            .filter(platform_admins::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The user behind a request; ends the session when it outlived the absolute timeout or
    /// its user is gone.
    pub async fn caller_inner(&self, req: &RequestInfo) -> Result<Option<Caller>> {
        let Some(user_id) = req
            .session
            .get::<i64>(USER_ID_KEY)
            .await
            .map_err(session_err)?
        else {
            return Ok(None);
        };
        let logged_in_at = req
            .session
            .get::<i64>(LOGGED_IN_AT_KEY)
            .await
            .map_err(session_err)?;
        let started = logged_in_at.and_then(|t| DateTime::from_timestamp(t, 0));
        if started.is_none_or(|t| self.clock.now() - t >= self.policy.absolute) {
            req.session.flush().await.map_err(session_err)?;
            return Ok(None);
        }
        let Some((user, admin)) = users::Entity::find_by_id(user_id)
            .find_also_related(platform_admins::Entity)
            .one(&self.db)
            .await?
        else {
            req.session.flush().await.map_err(session_err)?;
            return Ok(None);
        };
        Ok(Some(Caller {
            user_id: user.id,
            email: user.email.to_string(),
            role: admin.map(|a| a.role),
        }))
    }

    /// Every platform admin, superadmins first, then by email.
    pub async fn list_inner(&self) -> Result<Vec<AdminSummary>> {
        let rows = platform_admins::Entity::find()
            .find_also_related(users::Entity)
            .order_by_desc(platform_admins::Column::Role)
            .order_by_asc(platform_admins::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let with_two_factor: std::collections::HashSet<i64> =
            crate::entities::totp_factors::Entity::find()
                .filter(crate::entities::totp_factors::Column::ConfirmedAt.is_not_null())
                .all(&self.db)
                .await?
                .into_iter()
                .map(|f| f.user_id)
                .collect();
        let mut admins: Vec<AdminSummary> = rows
            .into_iter()
            .filter_map(|(admin, user)| {
                let user = user?;
                Some(AdminSummary {
                    user_id: user.id,
                    email: user.email.to_string(),
                    role: admin.role,
                    created_at: admin.created_at,
                    last_login_at: user.last_login_at,
                    password_pending: user.password_hash.is_none(),
                    two_factor: with_two_factor.contains(&user.id),
                })
            })
            .collect();
        admins.sort_by(|a, b| {
            (b.role == AdminRole::Superadmin)
                .cmp(&(a.role == AdminRole::Superadmin))
                .then(a.email.cmp(&b.email))
        });
        Ok(admins)
    }

    async fn add_inner(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        email: String,
        role: AdminRole,
        initial: InitialPassword,
        password: Option<String>,
    ) -> Result<AddedAdmin> {
        let email = parse_email(&email)?;
        let hash = match initial {
            InitialPassword::Typed => {
                let password = password.unwrap_or_default();
                password::check_strength(&password, email.as_str())?;
                Some(password::hash(password).await?)
            }
            InitialPassword::Link => None,
        };
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        lock_admins(&txn, now).await?;
        let user = grant(&txn, &email, hash, role, Some(actor.user_id), now).await?;
        let set_password_path = if user.password_hash.is_none() {
            let token = random_hex(32);
            user_tokens::ActiveModel {
                user_id: Set(user.id),
                token_hash: Set(token_hash(&token)),
                purpose: Set("set_password".to_owned()),
                expires_at: Set(now + Duration::hours(SET_PASSWORD_LINK_HOURS)),
                used_at: Set(None),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            Some(format!("/set-password?token={token}"))
        } else {
            None
        };
        let actor_row = Actor::new(req, Some(actor.user_id), &actor.email);
        audit::record(&txn, &actor_row, "admin.added", ("user", Some(user.id.to_string())), json!({"email": email, "role": role, "initial_password": if set_password_path.is_some() { "link" } else { "typed" }}), now).await?;
        txn.commit().await?;
        Ok(AddedAdmin {
            admin: AdminSummary {
                user_id: user.id,
                email: email.to_string(),
                role,
                created_at: now,
                last_login_at: user.last_login_at,
                password_pending: user.password_hash.is_none(),
                two_factor: false,
            },
            set_password_path,
        })
    }

    async fn change_role_inner(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
        role: AdminRole,
    ) -> Result<()> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        lock_admins(&txn, now).await?;
        let admin = admin_of(&txn, user_id).await?;
        if admin.role == role {
            return Err(Error::Conflict(format!(
                "this admin already has the {role} role"
            )));
        }
        if admin.role == AdminRole::Superadmin && superadmin_count(&txn).await? <= 1 {
            return Err(Error::Conflict(
                "the last superadmin cannot be demoted: make someone else superadmin first"
                    .to_owned(),
            ));
        }
        let from = admin.role;
        let mut active: platform_admins::ActiveModel = admin.into();
        active.role = Set(role);
        active.updated_at = Set(now);
        active.update(&txn).await?;
        let ended = DbSessionStore::delete_for_user(&txn, user_id).await?;
        audit::record(
            &txn,
            &Actor::new(req, Some(actor.user_id), &actor.email),
            "admin.role_changed",
            ("user", Some(user_id.to_string())),
            json!({"from": from, "to": role, "sessions_ended": ended}),
            now,
        )
        .await?;
        txn.commit().await?;
        self.announce_sessions_ended(user_id);
        Ok(())
    }

    async fn remove_inner(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
    ) -> Result<()> {
        if user_id == actor.user_id {
            return Err(Error::Conflict("you cannot remove yourself".to_owned()));
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        lock_admins(&txn, now).await?;
        let admin = admin_of(&txn, user_id).await?;
        if admin.role == AdminRole::Superadmin && superadmin_count(&txn).await? <= 1 {
            return Err(Error::Conflict(
                "the last superadmin cannot be removed".to_owned(),
            ));
        }
        let email = users::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .map(|u| u.email.to_string());
        platform_admins::Entity::delete_by_id(admin.id)
            .exec(&txn)
            .await?;
        let ended = DbSessionStore::delete_for_user(&txn, user_id).await?;
        audit::record(
            &txn,
            &Actor::new(req, Some(actor.user_id), &actor.email),
            "admin.removed",
            ("user", Some(user_id.to_string())),
            json!({"email": email, "role": admin.role, "sessions_ended": ended}),
            now,
        )
        .await?;
        txn.commit().await?;
        self.announce_sessions_ended(user_id);
        Ok(())
    }

    async fn set_password_inner(
        &self,
        req: &RequestInfo,
        token: String,
        password: String,
        confirm: String,
    ) -> Result<()> {
        let now = self.clock.now();
        let invalid = || Error::Validation {
            field: "token",
            message:
                "this link is invalid, expired or already used: ask a superadmin for a new one"
                    .to_owned(),
        };
        let row = user_tokens::Entity::find()
            .filter(user_tokens::Column::TokenHash.eq(token_hash(token.trim())))
            .filter(user_tokens::Column::Purpose.eq("set_password"))
            .one(&self.db)
            .await?
            .filter(|t| t.used_at.is_none() && t.expires_at > now)
            .ok_or_else(invalid)?;
        let user = users::Entity::find_by_id(row.user_id)
            .one(&self.db)
            .await?
            .ok_or_else(invalid)?;
        password::check_strength(&password, user.email.as_str())?;
        check_confirmation(&password, &confirm)?;
        let hash = password::hash(password).await?;
        let txn = self.db.begin().await?;
        // Marking the token used is conditional, so two racing uses cannot both succeed.
        let used = user_tokens::Entity::update_many()
            .col_expr(
                user_tokens::Column::UsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(user_tokens::Column::Id.eq(row.id))
            .filter(user_tokens::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if used.rows_affected != 1 {
            return Err(invalid());
        }
        let mut active: users::ActiveModel = user.clone().into();
        active.password_hash = Set(Some(hash));
        active.updated_at = Set(now);
        active.update(&txn).await?;
        audit::record(
            &txn,
            &Actor::new(req, Some(user.id), user.email.as_str()),
            "admin.password_set",
            ("user", Some(user.id.to_string())),
            json!({"via": "one-time link"}),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl AdminsBackend for AdminService {
    async fn needs_setup(&self) -> Result<bool, AppError> {
        Ok(AdminService::needs_setup(self).await?)
    }

    async fn setup(
        &self,
        req: &RequestInfo,
        email: String,
        password: String,
        confirm: String,
    ) -> Result<AdminIdentity, AppError> {
        Ok(self.setup_inner(req, email, password, confirm).await?)
    }

    async fn login(
        &self,
        req: &RequestInfo,
        email: String,
        password: String,
    ) -> Result<LoginOutcome, AppError> {
        Ok(self.login_inner(req, email, password).await?)
    }

    async fn logout(&self, req: &RequestInfo) -> Result<(), AppError> {
        Ok(self.logout_inner(req).await?)
    }

    async fn caller(&self, req: &RequestInfo) -> Result<Option<Caller>, AppError> {
        Ok(self.caller_inner(req).await?)
    }

    async fn list(&self, _actor: &AdminIdentity) -> Result<Vec<AdminSummary>, AppError> {
        Ok(self.list_inner().await?)
    }

    async fn add(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        email: String,
        role: AdminRole,
        initial: InitialPassword,
        password: Option<String>,
    ) -> Result<AddedAdmin, AppError> {
        require_superadmin(actor)?;
        let added = self
            .add_inner(actor, req, email, role, initial, password)
            .await?;
        self.announce_admins_changed();
        Ok(added)
    }

    async fn change_role(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
        role: AdminRole,
    ) -> Result<(), AppError> {
        require_superadmin(actor)?;
        self.change_role_inner(actor, req, user_id, role).await?;
        self.announce_admins_changed();
        Ok(())
    }

    async fn remove(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
    ) -> Result<(), AppError> {
        require_superadmin(actor)?;
        self.remove_inner(actor, req, user_id).await?;
        self.announce_admins_changed();
        Ok(())
    }

    async fn set_password(
        &self,
        req: &RequestInfo,
        token: String,
        password: String,
        confirm: String,
    ) -> Result<(), AppError> {
        Ok(self
            .set_password_inner(req, token, password, confirm)
            .await?)
    }
}

/// Defence in depth: the server functions check the role too, but services never trust them.
pub fn require_superadmin(actor: &AdminIdentity) -> Result<(), AppError> {
    if actor.role == AdminRole::Superadmin {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only a superadmin can do this".to_owned(),
        ))
    }
}
