//! Business hours: admins keep named schedules and give them to teams and brands; the widget
//! asks whether its brand is open now, and reports will run on the same clock.

use chrono::Weekday;
use seva_domain::chat::Widget;
use seva_domain::hours::{
    BusinessHours, BusinessHoursId, Interval, Schedule, WEEKDAYS, parse_day, parse_holiday,
};
use seva_domain::values::{bounded_text, limits};
use seva_domain::{BrandId, Role, TeamId, Timestamp};
use seva_store::{StoreError, hours as store};

use crate::{App, AppError, Caller, Result, not_found};

/// A schedule as an admin writes it.
#[derive(Debug, Clone, Default)]
pub struct HoursInput {
    pub name: String,
    /// An IANA time zone such as Asia/Tehran.
    pub time_zone: String,
    /// Each open day's intervals as `09:00-13:00 16:00-20:00`; a day left out is closed.
    pub week: Vec<(Weekday, String)>,
    /// Local dates, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
}

/// Whether a widget's brand is open, and if not, when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    pub open: bool,
    /// When closed: the next opening, if there is one within two years.
    pub opens_at: Option<Timestamp>,
}

fn checked(input: &HoursInput) -> Result<(String, Schedule)> {
    let name = bounded_text("name", &input.name, limits::NAME)?;
    let mut week: [Vec<Interval>; 7] = Default::default();
    for (day, text) in &input.week {
        week[day.num_days_from_monday() as usize].extend(parse_day(text)?);
    }
    let holidays = input
        .holidays
        .iter()
        .filter(|h| !h.trim().is_empty())
        .map(|h| parse_holiday(h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, Schedule::new(&input.time_zone, week, holidays)?))
}

fn taken(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict { .. } => AppError::AlreadyExists("business hours with this name"),
        StoreError::NotFound => AppError::NotFound("business hours"),
        other => other.into(),
    }
}

/// The week's keys and texts as forms and the API show them: Monday first, every day.
pub fn week_texts(schedule: &Schedule) -> Vec<(&'static str, String)> {
    WEEKDAYS
        .iter()
        .map(|(day, key)| (*key, seva_domain::hours::format_day(schedule.day(*day))))
        .collect()
}

impl App {
    pub async fn create_business_hours(
        &self,
        caller: &Caller,
        input: &HoursInput,
    ) -> Result<BusinessHours> {
        caller.require_role(Role::Admin)?;
        let (name, schedule) = checked(input)?;
        let mut tx = self.store.begin().await?;
        let id = store::insert(&mut tx, &name, &schedule, self.now())
            .await
            .map_err(taken)?;
        let hours = store::get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(hours)
    }

    pub async fn update_business_hours(
        &self,
        caller: &Caller,
        id: BusinessHoursId,
        input: &HoursInput,
    ) -> Result<BusinessHours> {
        caller.require_role(Role::Admin)?;
        let (name, schedule) = checked(input)?;
        let mut tx = self.store.begin().await?;
        store::update(&mut tx, id, &name, &schedule, self.now())
            .await
            .map_err(taken)?;
        let hours = store::get(&mut tx, id).await?;
        tx.commit().await?;
        // Deadlines of running SLA targets move with the hours.
        self.reapply_sla_later();
        Ok(hours)
    }

    /// Deletes a schedule that no team or brand keeps.
    pub async fn delete_business_hours(&self, caller: &Caller, id: BusinessHoursId) -> Result<()> {
        caller.require_role(Role::Admin)?;
        let mut tx = self.store.begin().await?;
        store::delete(&mut tx, id).await.map_err(|e| match e {
            StoreError::Conflict { .. } => AppError::InUse("business hours"),
            other => not_found("business hours")(other),
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// Every schedule; anyone signed in may read them (reports show which clock they use).
    pub async fn business_hours(&self, _caller: &Caller) -> Result<Vec<BusinessHours>> {
        let mut conn = self.store.conn().await?;
        Ok(store::all(&mut conn).await?)
    }

    pub async fn business_hours_by_id(
        &self,
        _caller: &Caller,
        id: BusinessHoursId,
    ) -> Result<BusinessHours> {
        let mut conn = self.store.conn().await?;
        store::get(&mut conn, id)
            .await
            .map_err(not_found("business hours"))
    }

    /// Gives a brand a schedule, or none (always open).
    pub async fn set_brand_hours(
        &self,
        caller: &Caller,
        brand: BrandId,
        hours: Option<BusinessHoursId>,
    ) -> Result<()> {
        caller.require_role(Role::Admin)?;
        let mut tx = self.store.begin().await?;
        if let Some(id) = hours {
            store::get(&mut tx, id)
                .await
                .map_err(not_found("business hours"))?;
        }
        store::set_for_brand(&mut tx, brand, hours)
            .await
            .map_err(not_found("brand"))?;
        tx.commit().await?;
        self.directory_changed();
        self.reapply_sla_later();
        Ok(())
    }

    /// Gives a team a schedule, or none (its conversations' brand decides).
    pub async fn set_team_hours(
        &self,
        caller: &Caller,
        team: TeamId,
        hours: Option<BusinessHoursId>,
    ) -> Result<()> {
        caller.require_role(Role::Admin)?;
        let mut tx = self.store.begin().await?;
        if let Some(id) = hours {
            store::get(&mut tx, id)
                .await
                .map_err(not_found("business hours"))?;
        }
        store::set_for_team(&mut tx, team, hours)
            .await
            .map_err(not_found("team"))?;
        tx.commit().await?;
        self.directory_changed();
        self.reapply_sla_later();
        Ok(())
    }

    /// Whether the widget's brand is open now; a widget without a brand, or a brand without
    /// business hours, is always open.
    pub async fn widget_availability(&self, widget: &Widget) -> Result<Availability> {
        let now = self.now();
        let Some(brand) = widget.brand_id else {
            return Ok(Availability {
                open: true,
                opens_at: None,
            });
        };
        let mut conn = self.store.conn().await?;
        let Some(hours) = store::of_brand(&mut conn, brand).await? else {
            return Ok(Availability {
                open: true,
                opens_at: None,
            });
        };
        let open = hours.schedule.is_open(now);
        Ok(Availability {
            open,
            opens_at: if open {
                None
            } else {
                hours.schedule.next_open(now)
            },
        })
    }
}
