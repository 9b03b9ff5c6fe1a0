//! Segments: saved customer rules with a live count, a member list and an inbox filter.

use seva_domain::segment::{Rules, Segment};
use seva_domain::values::{bounded_text, limits};
use seva_domain::{Customer, CustomerId, Role, SegmentId};
use seva_store::{StoreError, customers, segments as store};

use crate::{App, AppError, Caller, Result, not_found};

impl App {
    pub async fn create_segment(
        &self,
        caller: &Caller,
        name: &str,
        rules: Rules,
    ) -> Result<Segment> {
        caller.require_write()?;
        let name = bounded_text("name", name, limits::NAME)?;
        let rules = rules.check()?;
        let mut tx = self.store.begin().await?;
        let id = store::insert(&mut tx, &name, &rules, Some(caller.user.id), self.now())
            .await
            .map_err(taken)?;
        tx.commit().await?;
        Ok(Segment { id, name, rules })
    }

    pub async fn update_segment(
        &self,
        caller: &Caller,
        id: SegmentId,
        name: &str,
        rules: Rules,
    ) -> Result<Segment> {
        caller.require_write()?;
        let name = bounded_text("name", name, limits::NAME)?;
        let rules = rules.check()?;
        let mut tx = self.store.begin().await?;
        store::update(&mut tx, id, &name, &rules, self.now())
            .await
            .map_err(taken)?;
        tx.commit().await?;
        Ok(Segment { id, name, rules })
    }

    pub async fn delete_segment(&self, caller: &Caller, id: SegmentId) -> Result<()> {
        caller.require_write()?;
        let mut tx = self.store.begin().await?;
        store::delete(&mut tx, id)
            .await
            .map_err(not_found("segment"))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn segment(&self, _caller: &Caller, id: SegmentId) -> Result<Segment> {
        let mut conn = self.store.conn().await?;
        store::get(&mut conn, id)
            .await
            .map_err(not_found("segment"))
    }

    pub async fn segments(&self, _caller: &Caller) -> Result<Vec<Segment>> {
        let mut conn = self.store.conn().await?;
        Ok(store::all(&mut conn).await?)
    }

    /// How many customers the rules take in now (also for rules not saved yet: the form's
    /// live count).
    pub async fn segment_count(&self, _caller: &Caller, rules: Rules) -> Result<i64> {
        let rules = rules.check()?;
        let mut conn = self.store.conn().await?;
        Ok(store::count(&mut conn, &rules, self.now()).await?)
    }

    /// A page of members, by id after `after`.
    pub async fn segment_members(
        &self,
        _caller: &Caller,
        rules: &Rules,
        after: Option<CustomerId>,
        limit: i64,
    ) -> Result<Vec<Customer>> {
        let mut conn = self.store.conn().await?;
        let ids = store::members(&mut conn, rules, self.now(), after, limit).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(customers::get(&mut conn, id).await?);
        }
        Ok(out)
    }
}

impl App {
    /// The segment's members as CSV (id, name, emails, phones, language, created_at), read a
    /// page at a time.
    /// Supervisors and admins only: a file of many customers' contacts leaves Seva with it. A
    /// cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`) is prefixed with `'`.
    pub async fn segment_csv(&self, caller: &Caller, id: SegmentId) -> Result<Vec<u8>> {
        if !matches!(caller.user.role, Role::Admin | Role::Supervisor) {
            return Err(AppError::Forbidden);
        }
        let segment = self.segment(caller, id).await?;
        let cell = |text: String| {
            if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{text}")
            } else {
                text
            }
        };
        let mut out = csv::Writer::from_writer(Vec::new());
        // Writing to memory cannot fail; should it, it is a server error.
        let io = |e: csv::Error| AppError::Store(StoreError::Corrupt(format!("csv: {e}")));
        out.write_record(["id", "name", "emails", "phones", "language", "created_at"])
            .map_err(io)?;
        let mut after = None;
        loop {
            let page = self
                .segment_members(caller, &segment.rules, after, 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for c in &page {
                out.write_record([
                    c.id.0.to_string(),
                    cell(c.name.clone().unwrap_or_default()),
                    cell(c.emails().collect::<Vec<_>>().join(" ")),
                    c.phones().collect::<Vec<_>>().join(" "),
                    c.language.clone().unwrap_or_default(),
                    c.created_at.to_rfc3339(),
                ])
                .map_err(io)?;
            }
        }
        out.into_inner()
            .map_err(|e| AppError::Store(StoreError::Corrupt(format!("csv: {e}"))))
    }
}

fn taken(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict { .. } => AppError::AlreadyExists("segment"),
        StoreError::NotFound => AppError::NotFound("segment"),
        other => other.into(),
    }
}
