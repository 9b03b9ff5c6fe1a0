//! Who may come in: users and their passwords, API tokens, browser sessions, sign-in
//! throttling, and the one-time link that creates the first admin.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use chrono::Duration;
use seva_domain::values::{bounded_text, limits, parse_language};
use seva_domain::{Email, Role, Timestamp, User, UserId};
use seva_store::StoreError;
use seva_store::staff::{self, NewUser, Throttle};

use crate::secrets::{hash_secret, new_secret};
use crate::{App, AppError, Caller, Result};

pub const MIN_PASSWORD_LEN: usize = 10;
pub const SESSION_LIFETIME: Duration = Duration::hours(12);
pub const SETUP_LINK_LIFETIME: Duration = Duration::hours(24);

/// After this many consecutive failures each further attempt must wait, doubling each time.
const FREE_FAILURES: i64 = 3;
/// After this many, the account is locked for [`LOCK_FOR`].
const LOCK_AFTER: i64 = 10;
const LOCK_FOR: Duration = Duration::minutes(15);
const MAX_WAIT_SECS: i64 = 60;

/// Whether a sign-in may be tried now, given the failures so far.
pub fn throttle_check(state: Option<&Throttle>, now: Timestamp) -> Result<()> {
    let Some(state) = state else { return Ok(()) };
    if let Some(until) = state.locked_until
        && until > now
    {
        return Err(AppError::SignInThrottled {
            retry_after_secs: (until - now).num_seconds().max(1),
        });
    }
    if state.failures >= FREE_FAILURES && state.locked_until.is_none() {
        let wait = Duration::seconds(
            (1_i64 << (state.failures - FREE_FAILURES).min(6)).min(MAX_WAIT_SECS),
        );
        let allowed_at = state.last_failure_at + wait;
        if allowed_at > now {
            return Err(AppError::SignInThrottled {
                retry_after_secs: (allowed_at - now).num_seconds().max(1),
            });
        }
    }
    Ok(())
}

/// The throttle state after one more failure.
pub fn throttle_after_failure(state: Option<&Throttle>, now: Timestamp) -> Throttle {
    // A lock that has run out starts the count again.
    let previous = state
        .filter(|s| s.locked_until.is_none_or(|until| until > now))
        .map_or(0, |s| s.failures);
    let failures = previous + 1;
    Throttle {
        failures,
        last_failure_at: now,
        locked_until: (failures >= LOCK_AFTER).then_some(now + LOCK_FOR),
    }
}

fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::WeakPassword {
            min: MIN_PASSWORD_LEN,
        });
    }
    if password.len() > 1024 {
        return Err(seva_domain::ValueError::TooLong {
            field: "password",
            max: 1024,
        }
        .into());
    }
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).expect("the operating system's random generator is available");
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a valid salt");
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id with default parameters hashes any password")
        .to_string())
}

fn verify_password(password: &str, hash: Option<&str>) -> bool {
    // Without a hash, verify against a throwaway one anyway, so that unknown emails take as
    // long as wrong passwords and timing does not reveal which accounts exist.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password(&new_secret("")).unwrap_or_default());
    let parsed = PasswordHash::new(hash.unwrap_or(dummy));
    let ok = parsed.is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    });
    ok && hash.is_some()
}

/// A new browser session: the cookie value (secret) and the CSRF token for its forms.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub user: User,
}

impl App {
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password: Option<&str>,
        language: Option<&str>,
    ) -> Result<User> {
        let email = Email::parse(email)?;
        let name = bounded_text("name", name, limits::NAME)?;
        let language = language.map(parse_language).transpose()?;
        let hash = password.map(hash_password).transpose()?;
        let mut tx = self.store.begin().await?;
        let id = staff::insert_user(
            &mut tx,
            &NewUser {
                email: email.as_str(),
                name: &name,
                role,
                password_hash: hash.as_deref(),
                language: language.as_deref(),
            },
            self.now(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => AppError::AlreadyExists("a user with this email"),
            other => other.into(),
        })?;
        let user = staff::user(&mut tx, id).await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(user)
    }

    pub async fn set_password(&self, user: UserId, password: &str) -> Result<()> {
        let hash = hash_password(password)?;
        let mut conn = self.store.conn().await?;
        staff::set_password(&mut conn, user, &hash, self.now()).await?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<User> {
        let email = Email::parse(email)?;
        let mut conn = self.store.conn().await?;
        staff::user_by_email(&mut conn, email.as_str())
            .await?
            .map(|(u, _)| u)
            .ok_or(AppError::NotFound("user"))
    }

    /// Issues an API token for a user. The token is returned once; only its hash is kept.
    pub async fn create_token(&self, email: &str, label: &str) -> Result<String> {
        let user = self.user_by_email(email).await?;
        let label = bounded_text("label", label, limits::NAME)?;
        let token = new_secret("seva_");
        let mut conn = self.store.conn().await?;
        staff::insert_token(&mut conn, user.id, &label, &hash_secret(&token), self.now()).await?;
        Ok(token)
    }

    /// The caller an API token stands for, if the token is valid.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<Caller>> {
        let mut conn = self.store.conn().await?;
        Ok(staff::user_by_token(&mut conn, &hash_secret(token))
            .await?
            .map(|user| Caller { user }))
    }

    /// Checks a password sign-in, with slow-down then lockout after repeated failures.
    ///
    /// Password checks in one process take turns (a one-permit semaphore): the throttle state is
    /// read after the permit is granted, so a burst of parallel guesses is counted guess by
    /// guess instead of all passing the same check, and queued guesses cannot occupy every
    /// thread. The hash itself runs on a blocking thread, off the async workers.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<NewSession> {
        let Ok(email) = Email::parse(email) else {
            return Err(AppError::InvalidCredentials);
        };
        let _turn = self
            .password_checks
            .acquire()
            .await
            .map_err(|_| AppError::InvalidCredentials)?;
        let now = self.now();
        let mut conn = self.store.conn().await?;
        let state = staff::throttle(&mut conn, email.as_str()).await?;
        throttle_check(state.as_ref(), now)?;
        let found = staff::user_by_email(&mut conn, email.as_str()).await?;
        let hash = found
            .as_ref()
            .and_then(|(u, h)| h.clone().filter(|_| u.active));
        let password = password.to_owned();
        let verified =
            tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
                .await
                .unwrap_or(false);
        if !verified {
            staff::save_throttle(
                &mut conn,
                email.as_str(),
                &throttle_after_failure(state.as_ref(), now),
            )
            .await?;
            return Err(AppError::InvalidCredentials);
        }
        staff::clear_throttle(&mut conn, email.as_str()).await?;
        drop(conn);
        let (user, _) = found.ok_or(AppError::InvalidCredentials)?;
        self.open_session(user).await
    }

    async fn open_session(&self, user: User) -> Result<NewSession> {
        let now = self.now();
        let token = new_secret("");
        let csrf_token = new_secret("");
        let mut conn = self.store.conn().await?;
        staff::insert_session(
            &mut conn,
            &hash_secret(&token),
            user.id,
            &csrf_token,
            now,
            now + SESSION_LIFETIME,
        )
        .await?;
        Ok(NewSession {
            token,
            csrf_token,
            user,
        })
    }

    /// The user and CSRF token of a live session.
    pub async fn session(&self, token: &str) -> Result<Option<(Caller, String)>> {
        let mut conn = self.store.conn().await?;
        Ok(staff::session(&mut conn, &hash_secret(token), self.now())
            .await?
            .map(|(user, csrf)| (Caller { user }, csrf)))
    }

    pub async fn sign_out(&self, token: &str) -> Result<()> {
        let mut conn = self.store.conn().await?;
        staff::delete_session(&mut conn, &hash_secret(token)).await?;
        Ok(())
    }

    /// Deletes sessions that have expired; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let mut conn = self.store.conn().await?;
        Ok(staff::delete_expired_sessions(&mut conn, self.now()).await?)
    }

    /// When no active admin exists, issues a new one-time set-up link token (replacing any
    /// earlier one) for the operator to open; otherwise `None`.
    pub async fn first_admin_setup_token(&self) -> Result<Option<String>> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        if staff::count_active_admins(&mut tx).await? > 0 {
            return Ok(None);
        }
        let token = new_secret("");
        staff::replace_setup_token(
            &mut tx,
            &hash_secret(&token),
            now,
            now + SETUP_LINK_LIFETIME,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(token))
    }

    pub async fn setup_token_valid(&self, token: &str) -> Result<bool> {
        let mut conn = self.store.conn().await?;
        Ok(staff::setup_token_valid(&mut conn, &hash_secret(token), self.now()).await?)
    }

    /// Creates the first admin from a set-up link, uses the link up, and signs them in.
    pub async fn complete_setup(
        &self,
        token: &str,
        email: &str,
        name: &str,
        password: &str,
    ) -> Result<NewSession> {
        let email = Email::parse(email)?;
        let name = bounded_text("name", name, limits::NAME)?;
        let hash = hash_password(password)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // A link printed before an admin was made another way no longer works.
        if staff::count_active_admins(&mut tx).await? > 0 {
            return Err(AppError::SetupLinkInvalid);
        }
        if !staff::use_setup_token(&mut tx, &hash_secret(token), now).await? {
            return Err(AppError::SetupLinkInvalid);
        }
        let id = staff::insert_user(
            &mut tx,
            &NewUser {
                email: email.as_str(),
                name: &name,
                role: Role::Admin,
                password_hash: Some(&hash),
                language: None,
            },
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => AppError::AlreadyExists("a user with this email"),
            other => other.into(),
        })?;
        let user = staff::user(&mut tx, id).await?;
        tx.commit().await?;
        self.directory_changed();
        self.open_session(user).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
    }

    #[test]
    fn the_first_failures_are_free_then_each_attempt_waits_longer() {
        let mut state = None;
        for i in 0..FREE_FAILURES {
            assert!(throttle_check(state.as_ref(), t(i)).is_ok());
            state = Some(throttle_after_failure(state.as_ref(), t(i)));
        }
        // Third failure at t(2): the next try must wait 1 s, then 2 s after the fourth.
        assert!(matches!(
            throttle_check(state.as_ref(), t(2)),
            Err(AppError::SignInThrottled {
                retry_after_secs: 1
            })
        ));
        assert!(throttle_check(state.as_ref(), t(3)).is_ok());
        state = Some(throttle_after_failure(state.as_ref(), t(3)));
        assert!(matches!(
            throttle_check(state.as_ref(), t(4)),
            Err(AppError::SignInThrottled {
                retry_after_secs: 1
            })
        ));
        assert!(throttle_check(state.as_ref(), t(5)).is_ok());
    }

    #[test]
    fn ten_failures_lock_the_account_for_fifteen_minutes() {
        let mut state = None;
        for i in 0..LOCK_AFTER {
            state = Some(throttle_after_failure(state.as_ref(), t(i * 100)));
        }
        let locked_at = t((LOCK_AFTER - 1) * 100);
        let Err(AppError::SignInThrottled { retry_after_secs }) =
            throttle_check(state.as_ref(), locked_at + Duration::minutes(5))
        else {
            panic!("expected a lockout");
        };
        assert_eq!(retry_after_secs, 600);
        assert!(throttle_check(state.as_ref(), locked_at + Duration::minutes(16)).is_ok());
        // After the lock runs out, counting starts again.
        let after = throttle_after_failure(state.as_ref(), locked_at + Duration::minutes(16));
        assert_eq!((after.failures, after.locked_until), (1, None));
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong horse battery", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
        assert!(matches!(
            hash_password("short"),
            Err(AppError::WeakPassword { .. })
        ));
    }
}
