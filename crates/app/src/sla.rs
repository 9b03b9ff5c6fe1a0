//! SLA policies: admins set first reply, next reply and resolution targets for the
//! conversations a policy's conditions cover; the reports measure attainment. A new, changed or
//! deleted policy applies, within moments, to every target still running (of unresolved
//! conversations); a target already done (replied to, resolved) keeps the outcome it had.

use seva_domain::sla::{Conditions, SlaPolicy, SlaPolicyId, Targets};
use seva_domain::values::{bounded_text, limits};
use seva_domain::{ConversationId, Role, ValueError};
use seva_store::{StoreError, sla as store, staff};

use crate::{App, AppError, Caller, Result, not_found};

/// The longest target: a year, in minutes.
const MAX_MINUTES: i64 = 366 * 24 * 60;

/// A policy as an admin writes it; targets in minutes.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub name: String,
    pub position: i64,
    pub conditions: Conditions,
    pub first_reply_minutes: Option<i64>,
    pub next_reply_minutes: Option<i64>,
    pub resolution_minutes: Option<i64>,
    pub business_hours: bool,
}

fn checked(input: &PolicyInput) -> Result<(String, Targets)> {
    let name = bounded_text("name", &input.name, limits::NAME)?;
    let seconds = |field: &'static str, minutes: Option<i64>| -> Result<Option<i64>> {
        match minutes {
            None => Ok(None),
            Some(m) if (1..=MAX_MINUTES).contains(&m) => Ok(Some(m * 60)),
            Some(m) => Err(AppError::Invalid(ValueError::UnknownValue {
                field,
                value: m.to_string(),
            })),
        }
    };
    let targets = Targets {
        first_reply: seconds(
            "first_reply_minutes (1 to 527040)",
            input.first_reply_minutes,
        )?,
        next_reply: seconds("next_reply_minutes (1 to 527040)", input.next_reply_minutes)?,
        resolution: seconds("resolution_minutes (1 to 527040)", input.resolution_minutes)?,
    };
    if targets == Targets::default() {
        return Err(AppError::Invalid(ValueError::Empty {
            field: "targets (first reply, next reply or resolution)",
        }));
    }
    if !(0..=1_000_000).contains(&input.position) {
        return Err(AppError::Invalid(ValueError::UnknownValue {
            field: "position (0 to 1000000)",
            value: input.position.to_string(),
        }));
    }
    Ok((name, targets))
}

fn new_policy<'a>(
    input: &'a PolicyInput,
    name: &'a str,
    targets: &'a Targets,
) -> store::NewPolicy<'a> {
    store::NewPolicy {
        name,
        position: input.position,
        conditions: &input.conditions,
        targets,
        business_hours: input.business_hours,
    }
}

fn taken(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict { .. } => AppError::AlreadyExists("an SLA policy with this name"),
        other => not_found("SLA policy")(other),
    }
}

impl App {
    /// The brand and team a policy names must exist.
    async fn check_conditions(&self, conn: &mut seva_store::Conn, c: &Conditions) -> Result<()> {
        if let Some(brand) = c.brand
            && !staff::brand_exists(conn, brand).await?
        {
            return Err(AppError::NotFound("brand"));
        }
        if let Some(team) = c.team
            && !staff::team_exists(conn, team).await?
        {
            return Err(AppError::NotFound("team"));
        }
        Ok(())
    }

    /// After the policies or the business hours changed: judges the running targets again in
    /// the background (every unresolved conversation: some seconds per ten thousand), one
    /// round at a time. Until it is done, a conversation's next change judges it anyway.
    pub(crate) fn reapply_sla_later(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            let _turn = app.sla_reapply.lock().await;
            if let Err(e) = app.reapply_sla().await {
                tracing::warn!(error = %e, "SLA targets not judged again; each follows its next change");
            }
        });
    }

    /// Judges the targets of every unresolved conversation again: a target still running
    /// follows the change (one done keeps its outcome). Small batches of conversations per
    /// transaction, each locked as any change to it is, so a message arriving meanwhile is
    /// never overwritten with older facts, and live traffic waits little for the writer.
    pub async fn reapply_sla(&self) -> Result<()> {
        let ids = {
            let mut conn = self.store.conn().await?;
            if !store::in_use(&mut conn).await? {
                return Ok(());
            }
            store::unresolved(&mut conn).await?
        };
        for batch in ids.chunks(50) {
            let mut tx = self.store.begin().await?;
            for &id in batch {
                match seva_store::conversations::get(&mut tx, id).await {
                    Ok(_) => seva_store::kpi::refresh(&mut tx, id).await?,
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            tx.commit().await?;
        }
        Ok(())
    }

    pub async fn create_sla_policy(
        &self,
        caller: &Caller,
        input: &PolicyInput,
    ) -> Result<SlaPolicy> {
        caller.require_role(Role::Admin)?;
        let (name, targets) = checked(input)?;
        let mut tx = self.store.begin().await?;
        self.check_conditions(&mut tx, &input.conditions).await?;
        let new = new_policy(input, &name, &targets);
        let id = store::insert(&mut tx, &new, self.now())
            .await
            .map_err(taken)?;
        let policy = store::get(&mut tx, id).await?;
        tx.commit().await?;
        self.reapply_sla_later();
        Ok(policy)
    }

    pub async fn update_sla_policy(
        &self,
        caller: &Caller,
        id: SlaPolicyId,
        input: &PolicyInput,
    ) -> Result<SlaPolicy> {
        caller.require_role(Role::Admin)?;
        let (name, targets) = checked(input)?;
        let mut tx = self.store.begin().await?;
        self.check_conditions(&mut tx, &input.conditions).await?;
        let new = new_policy(input, &name, &targets);
        store::update(&mut tx, id, &new, self.now())
            .await
            .map_err(taken)?;
        let policy = store::get(&mut tx, id).await?;
        tx.commit().await?;
        self.reapply_sla_later();
        Ok(policy)
    }

    pub async fn delete_sla_policy(&self, caller: &Caller, id: SlaPolicyId) -> Result<()> {
        caller.require_role(Role::Admin)?;
        let mut tx = self.store.begin().await?;
        store::delete(&mut tx, id)
            .await
            .map_err(not_found("SLA policy"))?;
        tx.commit().await?;
        self.reapply_sla_later();
        Ok(())
    }

    /// Every policy, in the order they are tried; anyone signed in may read them.
    pub async fn sla_policies(&self, _caller: &Caller) -> Result<Vec<SlaPolicy>> {
        let mut conn = self.store.conn().await?;
        Ok(store::all(&mut conn).await?)
    }

    pub async fn sla_policy(&self, _caller: &Caller, id: SlaPolicyId) -> Result<SlaPolicy> {
        let mut conn = self.store.conn().await?;
        store::get(&mut conn, id)
            .await
            .map_err(not_found("SLA policy"))
    }

    /// A conversation's SLA targets.
    pub async fn conversation_sla(&self, id: ConversationId) -> Result<Vec<store::Kept>> {
        self.conversation(id).await?;
        let mut conn = self.store.conn().await?;
        Ok(store::of_conversation(&mut conn, id).await?)
    }
}
