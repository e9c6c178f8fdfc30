//! TOTP two-factor sign-in (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, ±1 step):
//! enrolment with a QR code rendered on the server, the second sign-in step, single-use codes,
//! hashed recovery codes, and the superadmin's "required for every admin" setting.
//!
//! - The secret is sealed with the VPS secrets' key box, bound to its user
//!   (`nest/user/<id>/totp` as associated data), and re-sealed by `nest reseal-secrets`.
//! - A code is accepted once: the accepted time step is stored, and the update is conditional
//!   on it being later than the last one, so two concurrent uses of one code cannot both pass.
//!   A recovery code is marked used by a conditional update too.
//! - Every code typed to sign in, turn two-factor off or replace the recovery codes is a sign-in
//!   attempt (`rate_limit::reserve`): failures count toward the same lockout as wrong
//!   passwords. The password step of a two-factor account stays counted as a failure until its
//!   second step succeeds.
//! - Between the two steps the session holds only [`PendingSignIn`] (for [`PENDING_MINUTES`]),
//!   never a user id: nothing that needs a signed-in admin accepts it.

use app::backend::{RequestInfo, TwoFactorBackend};
use app::error::AppError;
use app::models::{AdminIdentity, AdminRole, Caller, TotpEnrolment, TwoFactorStatus};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::session_store::DbSessionStore;
use super::{AdminService, rate_limit, session_err};
use crate::audit::{self, Actor};
use crate::clock::hex;
use crate::entities::{platform_admins, recovery_codes, settings, totp_factors, users};
use crate::error::{Error, Result};
use crate::provisioning::secrets::{Sealed, SecretBox};

/// The `settings` key of the policy; the value is `true` or `false`.
pub const REQUIRED_SETTING: &str = "auth.two_factor_required";
/// The session key holding a verified password awaiting its second step.
pub const PENDING_KEY: &str = "auth.pending_sign_in";
/// How long a verified password waits for its second step (or enrolment).
pub const PENDING_MINUTES: i64 = 5;
/// Recovery codes issued at once.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Shown in authenticator apps.
const ISSUER: &str = "Nest";
const DIGITS: usize = 6;
const STEP_SECS: u64 = 30;
const SECRET_BYTES: usize = 20;

/// A password verified for an account that still needs its second step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// Whose password it was.
    pub user_id: i64,
    /// When it was verified (Unix seconds).
    pub at: i64,
    /// `true` when the account has no authenticator and the policy requires one: enrolment is
    /// the second step.
    pub enrol: bool,
}

/// Keeps a verified password in the session (with a new session id) for the second step.
pub async fn remember_pending(
    req: &RequestInfo,
    user_id: i64,
    enrol: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    req.session.cycle_id().await.map_err(session_err)?;
    req.session
        .insert(
            PENDING_KEY,
            PendingSignIn {
                user_id,
                at: now.timestamp(),
                enrol,
            },
        )
        .await
        .map_err(session_err)
}

/// The pending sign-in of this session, if it has not expired.
async fn pending(req: &RequestInfo, now: DateTime<Utc>) -> Result<Option<PendingSignIn>> {
    let found: Option<PendingSignIn> = req.session.get(PENDING_KEY).await.map_err(session_err)?;
    Ok(found.filter(|p| {
        DateTime::from_timestamp(p.at, 0)
            .is_some_and(|at| now - at < Duration::minutes(PENDING_MINUTES))
    }))
}

fn expired() -> Error {
    Error::Validation {
        field: "form",
        message: "This sign-in has expired. Sign in again with your password.".to_owned(),
    }
}

fn bad_code() -> Error {
    Error::Validation {
        field: "code",
        message: "That code is not valid (or was already used).".to_owned(),
    }
}

/// Whether `user_id` has a confirmed authenticator.
pub async fn enrolled<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<bool> {
    Ok(totp_factors::Entity::find_by_id(user_id)
        .filter(totp_factors::Column::ConfirmedAt.is_not_null())
        .one(conn)
        .await?
        .is_some())
}

/// Whether a superadmin requires two-factor sign-in of every admin.
pub async fn required<C: ConnectionTrait>(conn: &C) -> Result<bool> {
    Ok(settings::Entity::find_by_id(REQUIRED_SETTING.to_owned())
        .one(conn)
        .await?
        .is_some_and(|s| s.value == "true"))
}

/// The authenticator parameters of RFC 6238 as Nest uses them.
fn totp(secret: &[u8], account: &str) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::from(secret.to_vec()))
        .with_issuer(Some(ISSUER))
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|e| Error::Internal(format!("totp: {e}")))
}

fn aad(user_id: i64) -> Vec<u8> {
    format!("nest/user/{user_id}/totp").into_bytes()
}

/// The code typed, without the spaces and dashes people add.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .take(64)
        .collect()
}

/// SHA-256 of a normalized recovery code. Recovery codes carry 50 random bits, so a fast hash
/// is enough: nothing is gained by guessing against the table.
fn code_hash(normalized: &str) -> String {
    hex(&Sha256::digest(normalized.as_bytes()))
}

/// A recovery code: ten characters of base32 (50 bits), shown as `xxxxx-xxxxx`.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    // The OS RNG failing means the machine cannot do cryptography at all.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    let chars: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The QR code of `uri` as an SVG element, ready to be placed in the page.
fn qr_svg(uri: &str) -> Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| Error::Internal(format!("qr code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" ",
        1,
    ))
}

/// Re-seals with the current key every TOTP secret sealed with another key (see
/// `provisioning::secrets::reseal_all`); returns how many moved. Running it twice is harmless.
pub async fn reseal_all(db: &DatabaseConnection, secret_box: &SecretBox) -> Result<usize> {
    let stale = totp_factors::Entity::find()
        .filter(totp_factors::Column::SecretKeyId.ne(secret_box.current_key_id()))
        .all(db)
        .await?;
    let mut moved = 0;
    for factor in stale {
        let user_id = factor.user_id;
        let fail = |e: crate::provisioning::secrets::SecretsError| Error::Validation {
            field: "secrets",
            message: format!("two-factor secret of user {user_id}: {e}"),
        };
        let secret = secret_box
            .open_bytes(
                &aad(user_id),
                &Sealed {
                    ciphertext: factor.secret_ciphertext,
                    nonce: factor.secret_nonce,
                    key_id: factor.secret_key_id,
                },
            )
            .map_err(fail)?;
        let sealed = secret_box
            .seal_bytes(&aad(user_id), &secret)
            .map_err(fail)?;
        totp_factors::Entity::update_many()
            .col_expr(
                totp_factors::Column::SecretCiphertext,
                Expr::value(sealed.ciphertext),
            )
            .col_expr(totp_factors::Column::SecretNonce, Expr::value(sealed.nonce))
            .col_expr(
                totp_factors::Column::SecretKeyId,
                Expr::value(sealed.key_id),
            )
            .filter(totp_factors::Column::UserId.eq(user_id))
            .exec(db)
            .await?;
        moved += 1;
    }
    Ok(moved)
}

/// How a second step was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A code from the authenticator.
    Totp,
    /// One of the recovery codes (now used).
    RecoveryCode,
}

impl SecondFactor {
    fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

/// Who is enrolling: a signed-in admin, or an account signing in under the policy.
struct Enroller {
    user_id: i64,
    email: String,
    at_login: bool,
}

/// Implements [`TwoFactorBackend`].
#[derive(Clone)]
pub struct TwoFactorService {
    /// Sessions, callers and the clock.
    pub admins: AdminService,
    /// Seals the TOTP secrets.
    pub secrets: SecretBox,
}

impl TwoFactorService {
    fn db(&self) -> &DatabaseConnection {
        &self.admins.db
    }

    fn open_secret(&self, factor: &totp_factors::Model) -> Result<Vec<u8>> {
        self.secrets
            .open_bytes(
                &aad(factor.user_id),
                &Sealed {
                    ciphertext: factor.secret_ciphertext.clone(),
                    nonce: factor.secret_nonce.clone(),
                    key_id: factor.secret_key_id.clone(),
                },
            )
            .map_err(|e| Error::Internal(format!("totp secret of user {}: {e}", factor.user_id)))
    }

    /// Checks `code` against the user's authenticator (confirmed, or the one being enrolled
    /// when `enrolling`) and, when it matches a step later than the last accepted one, records
    /// that step. `false` for a wrong or replayed code.
    async fn accept_totp<C: ConnectionTrait>(
        &self,
        conn: &C,
        factor: &totp_factors::Model,
        email: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        let secret = self.open_secret(factor)?;
        let at = u64::try_from(now.timestamp()).unwrap_or_default();
        let Some(step) = totp(&secret, email)?.check(code, at) else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let accepted = totp_factors::Entity::update_many()
            .col_expr(totp_factors::Column::LastStep, Expr::value(step))
            .filter(totp_factors::Column::UserId.eq(factor.user_id))
            .filter(
                Condition::any()
                    .add(totp_factors::Column::LastStep.is_null())
                    .add(totp_factors::Column::LastStep.lt(step)),
            )
            .exec(conn)
            .await?;
        Ok(accepted.rows_affected == 1)
    }

    /// The confirmed authenticator of `user_id`, read before any transaction that writes (see
    /// `admins::login_inner` on SQLite snapshots).
    async fn confirmed_factor(&self, user_id: i64) -> Result<totp_factors::Model> {
        totp_factors::Entity::find_by_id(user_id)
            .filter(totp_factors::Column::ConfirmedAt.is_not_null())
            .one(self.db())
            .await?
            .ok_or_else(|| Error::Conflict("two-factor sign-in is not on".to_owned()))
    }

    /// A second factor: an authenticator code, or else an unused recovery code (used up here).
    /// Only writes, conditionally: safe as a transaction's first statements.
    async fn verify<C: ConnectionTrait>(
        &self,
        conn: &C,
        factor: &totp_factors::Model,
        user: &users::Model,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SecondFactor>> {
        let code = normalize(code);
        if self
            .accept_totp(conn, factor, user.email.as_str(), &code, now)
            .await?
        {
            return Ok(Some(SecondFactor::Totp));
        }
        let used = recovery_codes::Entity::update_many()
            .col_expr(recovery_codes::Column::UsedAt, Expr::value(now))
            .filter(recovery_codes::Column::UserId.eq(user.id))
            .filter(recovery_codes::Column::CodeHash.eq(code_hash(&code)))
            .filter(recovery_codes::Column::UsedAt.is_null())
            .exec(conn)
            .await?;
        Ok((used.rows_affected == 1).then_some(SecondFactor::RecoveryCode))
    }

    /// Replaces the user's recovery codes with ten new ones; returns them (shown once).
    async fn issue_codes<C: ConnectionTrait>(
        conn: &C,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .exec(conn)
            .await?;
        let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
            .map(|_| new_recovery_code())
            .collect();
        recovery_codes::Entity::insert_many(codes.iter().map(|c| recovery_codes::ActiveModel {
            user_id: Set(user_id),
            code_hash: Set(code_hash(&normalize(c))),
            used_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        }))
        .exec_without_returning(conn)
        .await?;
        Ok(codes)
    }

    async fn user(&self, user_id: i64) -> Result<users::Model> {
        users::Entity::find_by_id(user_id)
            .one(self.db())
            .await?
            .ok_or_else(expired)
    }

    async fn enroller(&self, req: &RequestInfo) -> Result<Enroller> {
        if let Some(caller) = self.admins.caller_inner(req).await? {
            if caller.role.is_none() {
                return Err(Error::Forbidden("this needs a platform admin".to_owned()));
            }
            return Ok(Enroller {
                user_id: caller.user_id,
                email: caller.email,
                at_login: false,
            });
        }
        let now = self.admins.clock.now();
        match pending(req, now).await? {
            Some(p) if p.enrol => {
                let user = self.user(p.user_id).await?;
                Ok(Enroller {
                    user_id: user.id,
                    email: user.email.to_string(),
                    at_login: true,
                })
            }
            _ => Err(Error::Unauthenticated),
        }
    }

    /// Counts a code about to be checked as a sign-in attempt of `user` (a failure until
    /// [`rate_limit::succeed`]); refused while the account or address is locked out.
    async fn reserve_attempt(
        &self,
        req: &RequestInfo,
        user: &users::Model,
    ) -> Result<rate_limit::Reservation> {
        let now = self.admins.clock.now();
        let address = rate_limit::request_address(req);
        let email = user.email.to_string();
        match rate_limit::reserve(self.db(), &email, address.as_deref(), now).await? {
            Ok(reservation) => Ok(reservation),
            Err(refusal) => {
                rate_limit::record_blocked(
                    self.db(),
                    &Actor::new(req, Some(user.id), &email),
                    &refusal.key,
                    now,
                )
                .await?;
                crate::metrics::login_failure("rate_limited");
                Err(Error::RateLimited(refusal.message))
            }
        }
    }

    /// Records a wrong code (its reservation stays a failure) and returns the error to show.
    async fn wrong_code(&self, req: &RequestInfo, user: &users::Model) -> Result<Error> {
        let txn = self.db().begin().await?;
        audit::record(
            &txn,
            &Actor::new(req, Some(user.id), user.email.as_str()),
            "auth.second_factor_failed",
            ("user", Some(user.id.to_string())),
            json!({}),
            self.admins.clock.now(),
        )
        .await?;
        txn.commit().await?;
        crate::metrics::login_failure("bad_second_factor");
        Ok(bad_code())
    }

    async fn begin_inner(&self, req: &RequestInfo) -> Result<TotpEnrolment> {
        let who = self.enroller(req).await?;
        if enrolled(self.db(), who.user_id).await? {
            return Err(Error::Conflict(
                "two-factor sign-in is already on: turn it off first to use another authenticator"
                    .to_owned(),
            ));
        }
        let mut secret = [0u8; SECRET_BYTES];
        // The OS RNG failing means the machine cannot do cryptography at all.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut secret)
            .expect("the operating system's random number generator failed");
        let totp = totp(&secret, &who.email)?;
        let uri = totp
            .to_url()
            .map_err(|e| Error::Internal(format!("totp: {e}")))?;
        let sealed = self
            .secrets
            .seal_bytes(&aad(who.user_id), &secret)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let now = self.admins.clock.now();
        // One unconfirmed authenticator per user: starting again replaces it.
        totp_factors::Entity::insert(totp_factors::ActiveModel {
            user_id: Set(who.user_id),
            secret_ciphertext: Set(sealed.ciphertext),
            secret_nonce: Set(sealed.nonce),
            secret_key_id: Set(sealed.key_id),
            confirmed_at: Set(None),
            last_step: Set(None),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(totp_factors::Column::UserId)
                .update_columns([
                    totp_factors::Column::SecretCiphertext,
                    totp_factors::Column::SecretNonce,
                    totp_factors::Column::SecretKeyId,
                    totp_factors::Column::LastStep,
                    totp_factors::Column::CreatedAt,
                ])
                .action_and_where(totp_factors::Column::ConfirmedAt.is_null())
                .to_owned(),
        )
        .exec_without_returning(self.db())
        .await?;
        Ok(TotpEnrolment {
            secret: totp.secret().to_base32(),
            uri: uri.clone(),
            qr_svg: qr_svg(&uri)?,
        })
    }

    async fn confirm_inner(&self, req: &RequestInfo, code: String) -> Result<Vec<String>> {
        let who = self.enroller(req).await?;
        let now = self.admins.clock.now();
        let factor = totp_factors::Entity::find_by_id(who.user_id)
            .one(self.db())
            .await?
            .filter(|f| f.confirmed_at.is_none())
            .ok_or_else(|| {
                Error::Conflict(
                    "no authenticator is being set up: start again with “Set up an authenticator”"
                        .to_owned(),
                )
            })?;
        let txn = self.db().begin().await?;
        if !self
            .accept_totp(&txn, &factor, &who.email, &normalize(&code), now)
            .await?
        {
            return Err(Error::Validation {
                field: "code",
                message: "That code does not match: check the time on your device and type the current code."
                    .to_owned(),
            });
        }
        let confirmed = totp_factors::Entity::update_many()
            .col_expr(totp_factors::Column::ConfirmedAt, Expr::value(now))
            .filter(totp_factors::Column::UserId.eq(who.user_id))
            .filter(totp_factors::Column::ConfirmedAt.is_null())
            .exec(&txn)
            .await?;
        if confirmed.rows_affected != 1 {
            return Err(Error::Conflict(
                "two-factor sign-in is already on".to_owned(),
            ));
        }
        let codes = Self::issue_codes(&txn, who.user_id, now).await?;
        let actor = Actor::new(req, Some(who.user_id), &who.email);
        audit::record(
            &txn,
            &actor,
            "auth.two_factor_enabled",
            ("user", Some(who.user_id.to_string())),
            json!({"at_login": who.at_login}),
            now,
        )
        .await?;
        if who.at_login {
            // Enrolling under the policy completes the sign-in.
            self.complete_sign_in(&txn, req, &who.email, who.user_id, None, now)
                .await?;
        }
        txn.commit().await?;
        if who.at_login {
            self.start_session(req, who.user_id, now).await?;
        }
        Ok(codes)
    }

    /// The success half of a sign-in, on the caller's transaction: last login, the audit row.
    async fn complete_sign_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        req: &RequestInfo,
        email: &str,
        user_id: i64,
        factor: Option<SecondFactor>,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminRole>> {
        users::Entity::update_many()
            .col_expr(users::Column::LastLoginAt, Expr::value(now))
            .filter(users::Column::Id.eq(user_id))
            .exec(conn)
            .await?;
        let role = platform_admins::Entity::find()
            .filter(platform_admins::Column::UserId.eq(user_id))
            .one(conn)
            .await?
            .map(|a| a.role);
        audit::record(
            conn,
            &Actor::new(req, Some(user_id), email),
            "auth.login",
            ("user", Some(user_id.to_string())),
            json!({"role": role, "second_factor": factor.map_or("enrolled", SecondFactor::as_str)}),
            now,
        )
        .await?;
        Ok(role)
    }

    async fn start_session(
        &self,
        req: &RequestInfo,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        req.session
            .remove::<PendingSignIn>(PENDING_KEY)
            .await
            .map_err(session_err)?;
        self.admins.start_session(req, user_id, now).await
    }

    async fn sign_in_inner(&self, req: &RequestInfo, code: String) -> Result<Caller> {
        let now = self.admins.clock.now();
        let pending = pending(req, now)
            .await?
            .filter(|p| !p.enrol)
            .ok_or_else(expired)?;
        let user = self.user(pending.user_id).await?;
        let email = user.email.to_string();
        let factor = self.confirmed_factor(user.id).await?;
        let reservation = self.reserve_attempt(req, &user).await?;
        let txn = self.db().begin().await?;
        let Some(factor) = self.verify(&txn, &factor, &user, &code, now).await? else {
            drop(txn);
            return Err(self.wrong_code(req, &user).await?);
        };
        rate_limit::succeed(&txn, reservation).await?;
        let role = self
            .complete_sign_in(&txn, req, &email, user.id, Some(factor), now)
            .await?;
        txn.commit().await?;
        self.start_session(req, user.id, now).await?;
        Ok(Caller {
            user_id: user.id,
            email,
            role,
        })
    }

    /// Checks a current code of the signed-in admin (a counted attempt) before a change to
    /// their second factor; returns the transaction the change is to be made in.
    async fn check_current_code(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        code: &str,
    ) -> Result<(sea_orm::DatabaseTransaction, DateTime<Utc>)> {
        let user = self.user(actor.user_id).await?;
        let factor = self.confirmed_factor(user.id).await?;
        let now = self.admins.clock.now();
        let reservation = self.reserve_attempt(req, &user).await?;
        let txn = self.db().begin().await?;
        if self
            .verify(&txn, &factor, &user, code, now)
            .await?
            .is_none()
        {
            drop(txn);
            return Err(self.wrong_code(req, &user).await?);
        }
        rate_limit::succeed(&txn, reservation).await?;
        Ok((txn, now))
    }

    async fn remove_factor<C: ConnectionTrait>(conn: &C, user_id: i64) -> Result<bool> {
        recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .exec(conn)
            .await?;
        let removed = totp_factors::Entity::delete_by_id(user_id)
            .exec(conn)
            .await?;
        Ok(removed.rows_affected == 1)
    }
}

#[async_trait::async_trait]
impl TwoFactorBackend for TwoFactorService {
    async fn status(&self, actor: &AdminIdentity) -> Result<TwoFactorStatus, AppError> {
        let factor = totp_factors::Entity::find_by_id(actor.user_id)
            .one(self.db())
            .await
            .map_err(Error::from)?;
        let left = recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(actor.user_id))
            .filter(recovery_codes::Column::UsedAt.is_null())
            .count(self.db())
            .await
            .map_err(Error::from)?;
        Ok(TwoFactorStatus {
            enabled_at: factor.and_then(|f| f.confirmed_at),
            recovery_codes_left: u32::try_from(left).unwrap_or(u32::MAX),
            required: required(self.db()).await?,
        })
    }

    async fn begin(&self, req: &RequestInfo) -> Result<TotpEnrolment, AppError> {
        Ok(self.begin_inner(req).await?)
    }

    async fn confirm(&self, req: &RequestInfo, code: String) -> Result<Vec<String>, AppError> {
        Ok(self.confirm_inner(req, code).await?)
    }

    async fn sign_in(&self, req: &RequestInfo, code: String) -> Result<Caller, AppError> {
        Ok(self.sign_in_inner(req, code).await?)
    }

    async fn disable(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        code: String,
    ) -> Result<(), AppError> {
        if required(self.db()).await? {
            return Err(Error::Conflict(
                "two-factor sign-in is required for every admin: it cannot be turned off"
                    .to_owned(),
            )
            .into());
        }
        let (txn, now) = self.check_current_code(actor, req, &code).await?;
        Self::remove_factor(&txn, actor.user_id).await?;
        audit::record(
            &txn,
            &Actor::new(req, Some(actor.user_id), &actor.email),
            "auth.two_factor_disabled",
            ("user", Some(actor.user_id.to_string())),
            json!({}),
            now,
        )
        .await?;
        txn.commit().await.map_err(Error::from)?;
        Ok(())
    }

    async fn regenerate_codes(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        code: String,
    ) -> Result<Vec<String>, AppError> {
        let (txn, now) = self.check_current_code(actor, req, &code).await?;
        let codes = Self::issue_codes(&txn, actor.user_id, now).await?;
        audit::record(
            &txn,
            &Actor::new(req, Some(actor.user_id), &actor.email),
            "auth.recovery_codes_regenerated",
            ("user", Some(actor.user_id.to_string())),
            json!({"count": codes.len()}),
            now,
        )
        .await?;
        txn.commit().await.map_err(Error::from)?;
        Ok(codes)
    }

    async fn set_required(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        required_now: bool,
    ) -> Result<(), AppError> {
        super::require_superadmin(actor)?;
        if required_now && !enrolled(self.db(), actor.user_id).await? {
            return Err(Error::Conflict(
                "turn on two-factor sign-in for your own account first (on “Your account”)"
                    .to_owned(),
            )
            .into());
        }
        let now = self.admins.clock.now();
        let txn = self.db().begin().await.map_err(Error::from)?;
        crate::db::lock_row(&txn, "lock.admins", now)
            .await
            .map_err(Error::from)?;
        let before = required(&txn).await?;
        if before == required_now {
            return Ok(());
        }
        settings::Entity::insert(settings::ActiveModel {
            key: Set(REQUIRED_SETTING.to_owned()),
            value: Set(required_now.to_string()),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(settings::Column::Key)
                .update_columns([settings::Column::Value, settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(Error::from)?;
        // From now on every admin signs in with a code: those without an authenticator are
        // signed out, and set one up at their next sign-in.
        let mut signed_out = Vec::new();
        let mut sessions_ended = 0;
        if required_now {
            let with_factor = sea_orm::sea_query::Query::select()
                .column(totp_factors::Column::UserId)
                .from(totp_factors::Entity)
                .and_where(totp_factors::Column::ConfirmedAt.is_not_null())
                .to_owned();
            let without: Vec<i64> = platform_admins::Entity::find()
                .filter(platform_admins::Column::UserId.not_in_subquery(with_factor))
                .all(&txn)
                .await
                .map_err(Error::from)?
                .into_iter()
                .map(|a| a.user_id)
                .collect();
            for user_id in without {
                sessions_ended += DbSessionStore::delete_for_user(&txn, user_id)
                    .await
                    .map_err(Error::from)?;
                signed_out.push(user_id);
            }
        }
        audit::record(
            &txn,
            &Actor::new(req, Some(actor.user_id), &actor.email),
            "settings.two_factor_required",
            ("setting", Some(REQUIRED_SETTING.to_owned())),
            json!({"from": before, "to": required_now, "sessions_ended": sessions_ended}),
            now,
        )
        .await?;
        txn.commit().await.map_err(Error::from)?;
        for user_id in signed_out {
            self.admins.announce_sessions_ended(user_id);
        }
        self.admins.announce_admins_changed();
        Ok(())
    }

    async fn reset(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
    ) -> Result<(), AppError> {
        super::require_superadmin(actor)?;
        if user_id == actor.user_id {
            return Err(Error::Conflict(
                "use “Your account” to change your own two-factor sign-in".to_owned(),
            )
            .into());
        }
        let now = self.admins.clock.now();
        let target = users::Entity::find_by_id(user_id)
            .one(self.db())
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound("admin".to_owned()))?;
        let txn = self.db().begin().await.map_err(Error::from)?;
        if !Self::remove_factor(&txn, user_id).await? {
            return Err(Error::Conflict(format!(
                "{} has no two-factor sign-in to reset",
                target.email
            ))
            .into());
        }
        let ended = DbSessionStore::delete_for_user(&txn, user_id)
            .await
            .map_err(Error::from)?;
        audit::record(
            &txn,
            &Actor::new(req, Some(actor.user_id), &actor.email),
            "admin.two_factor_reset",
            ("user", Some(user_id.to_string())),
            json!({"email": target.email, "sessions_ended": ended}),
            now,
        )
        .await?;
        txn.commit().await.map_err(Error::from)?;
        self.admins.announce_sessions_ended(user_id);
        self.admins.announce_admins_changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_characters_in_two_groups_from_an_unambiguous_alphabet() {
        for _ in 0..100 {
            let code = new_recovery_code();
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(&code[5..6], "-");
            assert!(
                code.chars()
                    .filter(|c| *c != '-')
                    .all(|c| "abcdefghijkmnpqrstuvwxyz23456789".contains(c)),
                "{code}"
            );
        }
    }

    #[test]
    fn a_code_is_read_without_the_spaces_dashes_and_capitals_people_type() {
        assert_eq!(normalize(" 123 456 "), "123456");
        assert_eq!(normalize("ABCDE-fghij"), "abcdefghij");
        assert_eq!(
            code_hash(&normalize("ABCDE-FGHIJ")),
            code_hash("abcdefghij")
        );
    }

    #[test]
    fn the_authenticator_uri_names_nest_and_the_account_with_rfc_6238_defaults() {
        let t = totp(&[7u8; SECRET_BYTES], "ada@example.com").unwrap();
        let uri = t.to_url().unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Nest:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Nest"), "{uri}");
        assert!(uri.contains("secret="), "{uri}");
        // RFC 6238 appendix B, SHA-1 at T = 59 s, truncated to 6 digits.
        let rfc = totp(b"12345678901234567890", "x@example.com").unwrap();
        assert_eq!(rfc.generate(59).to_string(), "287082");
        assert_eq!(
            rfc.check("287082", 59 + 30),
            Some(1),
            "one step late is accepted"
        );
        assert_eq!(rfc.check("287082", 59 + 60), None, "two steps late is not");
    }

    #[test]
    fn the_qr_code_is_an_accessible_svg_element() {
        let svg = qr_svg("otpauth://totp/Nest:a?secret=AAAA&issuer=Nest").unwrap();
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label="),
            "{}",
            &svg[..60]
        );
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
