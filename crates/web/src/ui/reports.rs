//! The KPI dashboard for supervisors and admins: every figure of the period beside the
//! previous period's, a "how this is calculated" note under each, charts per day or week
//! (server-drawn SVG), a breakdown table, the conversations behind each figure, and CSV
//! exports of every table.

use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use seva_app::AppError;
use seva_app::reports::{Figures, KpiReport, ReportQuery};
use seva_app::workspace::Directory;
use seva_domain::kpi::{Answers, Ratio, Stats};
use seva_domain::sla::total;
use seva_store::reports::{Dimension, Drill, DrillRow};

use super::format::Format;
use super::inbox::Choice;
use super::mailboxes::unavailable;
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::api::reports::{KpiQuery, drill_of, report_query};
use crate::i18n::Tr;

/// A figure on the dashboard.
pub struct Card {
    pub id: &'static str,
    pub title: String,
    pub value: String,
    /// What it rests on: "median of 41 conversations", "12 of 15", ...
    pub basis: String,
    pub previous: String,
    pub note: String,
    /// The conversations behind it.
    pub drill: Option<String>,
}

pub struct Chart {
    pub title: String,
    pub svg: String,
}

pub struct TableRow {
    pub label: String,
    pub cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "reports.html")]
pub struct ReportsPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub form: FormView,
    pub cards: Vec<Card>,
    pub backlog: String,
    pub charts: Vec<Chart>,
    pub breakdown_title: String,
    /// Which table the page shows: `breakdown` or `series`.
    pub table: &'static str,
    pub columns: Vec<String>,
    pub rows: Vec<TableRow>,
    pub query: String,
}

/// The form's current values and choices.
pub struct FormView {
    pub from: String,
    pub to: String,
    pub tz: String,
    pub business: bool,
    pub step: String,
    pub tag: String,
    pub by: Vec<Choice>,
    pub channels: Vec<Choice>,
    pub teams: Vec<Choice>,
    pub agents: Vec<Choice>,
    pub brands: Vec<Choice>,
    pub segments: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "report_conversations.html")]
pub struct DrillPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub title: String,
    /// What the rows are: conversations or customers.
    pub id_header: String,
    /// What the page says when there are none.
    pub empty: String,
    pub back: String,
    pub csv: String,
    pub rows: Vec<DrillView>,
}

pub struct DrillView {
    pub href: String,
    pub id: String,
    pub at: String,
    pub value: String,
}

/// A duration in words: "2 d 3 h", "1 h 5 min", "4 min", "30 s".
pub fn duration(tr: &Tr<'_>, fmt: Format, seconds: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let s = seconds.round() as i64;
    let n = |v: i64| fmt.number(v);
    if s >= 86_400 {
        tr.t_args(
            "duration-days",
            &[("d", &n(s / 86_400)), ("h", &n(s % 86_400 / 3600))],
        )
    } else if s >= 3600 {
        tr.t_args(
            "duration-hours",
            &[("h", &n(s / 3600)), ("m", &n(s % 3600 / 60))],
        )
    } else if s >= 60 {
        tr.t_args("duration-minutes", &[("m", &n(s / 60))])
    } else {
        tr.t_args("duration-seconds", &[("s", &n(s))])
    }
}

fn percent(fmt: Format, value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |p| fmt.digits(&format!("{p:.1}%")))
}

fn one_decimal(fmt: Format, value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| fmt.digits(&format!("{v:.1}")))
}

fn ratio_basis(tr: &Tr<'_>, fmt: Format, r: Ratio) -> String {
    tr.t_args(
        "kpi-of",
        &[
            ("numerator", &fmt.number(r.numerator)),
            ("denominator", &fmt.number(r.denominator)),
        ],
    )
}

fn median_text(tr: &Tr<'_>, fmt: Format, s: &Stats) -> String {
    s.median
        .map_or_else(|| "—".to_owned(), |m| duration(tr, fmt, m))
}

fn stats_basis(tr: &Tr<'_>, fmt: Format, s: &Stats) -> String {
    let p90 = s.p90.map_or_else(
        || "—".to_owned(),
        |p| {
            #[allow(clippy::cast_precision_loss)]
            duration(tr, fmt, p as f64)
        },
    );
    let mean = s
        .mean
        .map_or_else(|| "—".to_owned(), |m| duration(tr, fmt, m));
    tr.t_args(
        "kpi-stats",
        &[
            ("count", &fmt.number(s.count)),
            ("p90", &p90),
            ("mean", &mean),
        ],
    )
}

fn answers_basis(tr: &Tr<'_>, fmt: Format, a: &Answers) -> String {
    tr.t_args("kpi-answers", &[("count", &fmt.number(a.count()))])
}

struct Ctx<'t, 'a> {
    tr: &'t Tr<'a>,
    fmt: Format,
    /// The query string of this report, for drill-down links.
    query: String,
}

impl Ctx<'_, '_> {
    fn drill(&self, figure: &str) -> String {
        format!("/reports/conversations?figure={figure}&{}", self.query)
    }

    fn customers(&self, figure: &str) -> String {
        format!("/reports/customers?figure={figure}&{}", self.query)
    }

    /// The cards of one period, each with the previous period's value.
    fn cards(&self, r: &KpiReport) -> Vec<Card> {
        let (tr, fmt) = (self.tr, self.fmt);
        let f = &r.figures;
        let p = r.previous.as_deref();
        let pf = p.map(|p| &p.figures);
        let card = |id, value, basis, previous: Option<String>, drill| {
            self.card(id, value, basis, previous, drill)
        };
        let unanswered_age = r.unanswered_oldest_seconds.map_or_else(String::new, |s| {
            #[allow(clippy::cast_precision_loss)]
            tr.t1("kpi-oldest", "age", &duration(tr, fmt, s as f64))
        });
        vec![
            card(
                "first-response",
                median_text(tr, fmt, &f.first_response),
                stats_basis(tr, fmt, &f.first_response),
                pf.map(|p| median_text(tr, fmt, &p.first_response)),
                Some(self.drill("first_response")),
            ),
            card(
                "unanswered",
                fmt.number(r.unanswered),
                unanswered_age,
                p.map(|p| fmt.number(p.unanswered)),
                Some(self.drill("unanswered")),
            ),
            card(
                "average-response",
                f.average_response
                    .mean
                    .map_or_else(|| "—".to_owned(), |m| duration(tr, fmt, m)),
                tr.t_args(
                    "kpi-turns",
                    &[
                        ("count", &fmt.number(f.average_response.count)),
                        ("median", &median_text(tr, fmt, &f.average_response)),
                    ],
                ),
                pf.and_then(|p| p.average_response.mean)
                    .map(|m| duration(tr, fmt, m)),
                Some(self.drill("average_response")),
            ),
            card(
                "first-resolution",
                median_text(tr, fmt, &f.first_resolution),
                stats_basis(tr, fmt, &f.first_resolution),
                pf.map(|p| median_text(tr, fmt, &p.first_resolution)),
                Some(self.drill("first_resolution")),
            ),
            card(
                "full-resolution",
                median_text(tr, fmt, &f.full_resolution),
                stats_basis(tr, fmt, &f.full_resolution),
                pf.map(|p| median_text(tr, fmt, &p.full_resolution)),
                Some(self.drill("full_resolution")),
            ),
            card(
                "one-touch",
                percent(fmt, f.one_touch.percent()),
                ratio_basis(tr, fmt, f.one_touch),
                pf.map(|p| percent(fmt, p.one_touch.percent())),
                Some(self.drill("resolved")),
            ),
            card(
                "fcr",
                percent(fmt, f.fcr.percent()),
                format!(
                    "{} · {}",
                    ratio_basis(tr, fmt, f.fcr),
                    tr.t1("kpi-pending", "count", &fmt.number(f.fcr_pending))
                ),
                pf.map(|p| percent(fmt, p.fcr.percent())),
                Some(self.drill("resolved")),
            ),
            card(
                "sla",
                percent(fmt, total(&f.sla).percent()),
                format!(
                    "{} · {}",
                    ratio_basis(tr, fmt, total(&f.sla)),
                    tr.t_args(
                        "kpi-sla-basis",
                        &[
                            ("first", &percent(fmt, f.sla[0].percent())),
                            ("next", &percent(fmt, f.sla[1].percent())),
                            ("resolution", &percent(fmt, f.sla[2].percent())),
                        ],
                    )
                ),
                pf.map(|p| percent(fmt, total(&p.sla).percent())),
                Some(self.drill("sla")),
            ),
        ]
    }
    /// The cards of what service leads to: survey answers and purchases.
    fn outcome_cards(&self, r: &KpiReport) -> Vec<Card> {
        let (tr, fmt) = (self.tr, self.fmt);
        let f = &r.figures;
        let p = r.previous.as_deref();
        let pf = p.map(|p| &p.figures);
        let card = |id, value, basis, previous: Option<String>, drill| {
            self.card(id, value, basis, previous, drill)
        };
        vec![
            card(
                "csat",
                percent(fmt, f.csat.csat().percent()),
                format!(
                    "{} · {}",
                    answers_basis(tr, fmt, &f.csat),
                    tr.t1("kpi-mean", "mean", &one_decimal(fmt, f.csat.mean()))
                ),
                pf.map(|p| percent(fmt, p.csat.csat().percent())),
                Some(self.drill("answers")),
            ),
            card(
                "nps",
                one_decimal(fmt, f.nps.nps().score()),
                tr.t_args(
                    "kpi-nps-basis",
                    &[
                        ("promoters", &fmt.number(f.nps.nps().promoters)),
                        ("detractors", &fmt.number(f.nps.nps().detractors)),
                        ("count", &fmt.number(f.nps.count())),
                    ],
                ),
                pf.map(|p| one_decimal(fmt, p.nps.nps().score())),
                Some(self.drill("answers")),
            ),
            card(
                "ces",
                one_decimal(fmt, f.ces.mean()),
                format!(
                    "{} · {}",
                    answers_basis(tr, fmt, &f.ces),
                    tr.t1(
                        "kpi-agree",
                        "percent",
                        &percent(fmt, f.ces.ces_agree().percent())
                    )
                ),
                pf.map(|p| one_decimal(fmt, p.ces.mean())),
                Some(self.drill("answers")),
            ),
            card(
                "repeat-purchase",
                percent(fmt, r.repeat_purchase.percent()),
                ratio_basis(tr, fmt, r.repeat_purchase),
                p.map(|p| percent(fmt, p.repeat_purchase.percent())),
                Some(self.customers("repeat_purchase")),
            ),
            card(
                "retention",
                percent(fmt, r.retention.percent()),
                ratio_basis(tr, fmt, r.retention),
                p.map(|p| percent(fmt, p.retention.percent())),
                Some(self.customers("retention")),
            ),
            card(
                "churned",
                fmt.number(r.churned),
                tr.t1(
                    "kpi-horizon",
                    "days",
                    &fmt.number(seva_domain::kpi::CHURN_HORIZON_DAYS),
                ),
                p.map(|p| fmt.number(p.churned)),
                Some(self.customers("churned")),
            ),
        ]
    }

    fn card(
        &self,
        id: &'static str,
        value: String,
        basis: String,
        previous: Option<String>,
        drill: Option<String>,
    ) -> Card {
        let tr = self.tr;
        Card {
            id,
            title: tr.t(&format!("kpi-{id}")),
            value,
            basis,
            previous: previous.map_or_else(String::new, |v| tr.t1("kpi-previous", "value", &v)),
            note: tr.t(&format!("kpi-note-{id}")),
            drill,
        }
    }
}

/// A bar chart of one value per bucket, drawn as SVG. Labels are escaped; the rest is
/// numbers written here.
fn bar_chart(title: &str, labels: &[String], values: &[Option<f64>], shown: &[String]) -> String {
    let (width, height, top, bottom) = (720.0_f64, 180.0_f64, 14.0_f64, 28.0_f64);
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    #[allow(clippy::cast_precision_loss)]
    let slot = width / labels.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">",
        escape(title)
    );
    for (i, (value, label)) in values.iter().zip(labels).enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let x = i as f64 * slot;
        let v = value.unwrap_or(0.0);
        let h = if max > 0.0 {
            v / max * (height - top - bottom)
        } else {
            0.0
        };
        let y = height - bottom - h;
        let text = shown.get(i).map_or("", String::as_str);
        let _ = write!(
            svg,
            "<g><title>{} · {}</title><rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" class=\"bar\"/>",
            escape(label),
            escape(text),
            x + slot * 0.15,
            slot * 0.7
        );
        // Every label when there are few buckets; else about eight of them.
        let every = labels.len().div_ceil(8).max(1);
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
                x + slot / 2.0,
                height - 8.0,
                escape(label)
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a chart plots per bucket, and how a value is written in its tooltip.
type Value<'a> = Box<dyn Fn(&Figures) -> Option<f64> + 'a>;
type Shown<'a> = Box<dyn Fn(Option<f64>) -> String + 'a>;

fn charts(c: &Ctx<'_, '_>, r: &KpiReport) -> Vec<Chart> {
    let (tr, fmt) = (c.tr, c.fmt);
    let labels: Vec<String> = r.series.iter().map(|(at, _)| fmt.date(*at)).collect();
    let series = |get: &dyn Fn(&Figures) -> Option<f64>, show: &dyn Fn(Option<f64>) -> String| {
        let values: Vec<Option<f64>> = r.series.iter().map(|(_, f)| get(f)).collect();
        let shown: Vec<String> = values.iter().map(|v| show(*v)).collect();
        (values, shown)
    };
    #[allow(clippy::cast_precision_loss)]
    let specs: [(&str, Value<'_>, Shown<'_>); 3] = [
        (
            "kpi-chart-resolved",
            Box::new(|f| Some(f.full_resolution.count as f64)),
            Box::new(move |v| fmt.number(v.unwrap_or(0.0))),
        ),
        (
            "kpi-chart-first-response",
            Box::new(|f| f.first_response.median),
            Box::new(move |v| v.map_or_else(|| "—".into(), |m| duration(tr, fmt, m))),
        ),
        (
            "kpi-chart-csat",
            Box::new(|f| f.csat.csat().percent()),
            Box::new(move |v| percent(fmt, v)),
        ),
    ];
    specs
        .iter()
        .map(|(key, get, show)| {
            let (values, shown) = series(get.as_ref(), show.as_ref());
            let title = tr.t(key);
            Chart {
                svg: bar_chart(&title, &labels, &values, &shown),
                title,
            }
        })
        .collect()
}

fn breakdown_label(
    tr: &Tr<'_>,
    directory: &Directory,
    segments: &[Choice],
    by: Dimension,
    key: Option<&str>,
) -> String {
    let Some(key) = key else {
        return tr.t("kpi-none");
    };
    let id = key.parse::<i64>().ok();
    match by {
        Dimension::Channel => tr.t(&format!("channel-{key}")),
        Dimension::Team => id
            .and_then(|i| directory.team_name(seva_domain::TeamId(i)))
            .map_or_else(|| key.to_owned(), str::to_owned),
        Dimension::Agent => id
            .and_then(|i| directory.user_name(seva_domain::UserId(i)))
            .map_or_else(|| key.to_owned(), str::to_owned),
        Dimension::Brand => id
            .and_then(|i| directory.brand_name(seva_domain::BrandId(i)))
            .map_or_else(|| key.to_owned(), str::to_owned),
        Dimension::Tag => key.to_owned(),
        Dimension::Segment => segments
            .iter()
            .find(|s| s.value == key)
            .map_or_else(|| key.to_owned(), |s| s.label.clone()),
    }
}

/// The figures of one row of a table (a bucket or a breakdown key).
fn row_cells(tr: &Tr<'_>, fmt: Format, f: &Figures) -> Vec<String> {
    vec![
        fmt.number(f.first_response.count),
        median_text(tr, fmt, &f.first_response),
        f.average_response
            .mean
            .map_or_else(|| "—".to_owned(), |m| duration(tr, fmt, m)),
        median_text(tr, fmt, &f.full_resolution),
        fmt.number(f.full_resolution.count),
        percent(fmt, f.one_touch.percent()),
        percent(fmt, f.fcr.percent()),
        percent(fmt, total(&f.sla).percent()),
        percent(fmt, f.csat.csat().percent()),
        fmt.number(f.csat.count()),
    ]
}

fn columns(tr: &Tr<'_>) -> Vec<String> {
    [
        "kpi-col-answered",
        "kpi-first-response",
        "kpi-average-response",
        "kpi-full-resolution",
        "kpi-col-resolved",
        "kpi-one-touch",
        "kpi-fcr",
        "kpi-sla",
        "kpi-csat",
        "kpi-col-answers",
    ]
    .iter()
    .map(|k| tr.t(k))
    .collect()
}

/// The report's query with the page's defaults: the last 30 days in the reader's time zone,
/// per day.
fn with_defaults(agent: &Agent, mut q: KpiQuery, today: NaiveDate) -> KpiQuery {
    if q.to.trim().is_empty() {
        q.to = today.to_string();
    }
    if q.from.trim().is_empty() {
        q.from = (today - Duration::days(29)).to_string();
    }
    if q.tz.as_deref().unwrap_or("").is_empty() {
        q.tz = Some(
            agent
                .caller
                .user
                .time_zone
                .clone()
                .unwrap_or_else(|| "UTC".to_owned()),
        );
    }
    if q.step.as_deref().unwrap_or("").is_empty() {
        q.step = Some("day".to_owned());
    }
    q
}

/// The query string that asks for the same report.
fn query_string(q: &KpiQuery) -> String {
    let mut pairs = vec![
        ("from", q.from.clone()),
        ("to", q.to.clone()),
        ("tz", q.tz.clone().unwrap_or_default()),
        ("clock", q.clock.clone().unwrap_or_default()),
        ("step", q.step.clone().unwrap_or_default()),
        ("by", q.by.clone().unwrap_or_default()),
        ("channel", q.channel.clone().unwrap_or_default()),
        ("tag", q.tag.clone().unwrap_or_default()),
    ];
    for (name, value) in [
        ("team", q.team),
        ("agent", q.agent),
        ("brand", q.brand),
        ("segment", q.segment),
    ] {
        pairs.push((name, value.map(|v| v.to_string()).unwrap_or_default()));
    }
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencoding(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page's query string: empty values are "not chosen", so the form can send them all.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct PageQuery {
    from: String,
    to: String,
    tz: String,
    clock: String,
    step: String,
    by: String,
    channel: String,
    team: String,
    agent: String,
    brand: String,
    tag: String,
    segment: String,
    figure: String,
    table: String,
}

impl PageQuery {
    fn kpi(&self) -> Result<KpiQuery, String> {
        let id = |raw: &str, name: &str| -> Result<Option<i64>, String> {
            let raw = super::mailboxes::latin_digits(raw.trim());
            if raw.is_empty() {
                Ok(None)
            } else {
                raw.parse().map(Some).map_err(|_| name.to_owned())
            }
        };
        let text = |raw: &str| Some(raw.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(KpiQuery {
            from: super::mailboxes::latin_digits(self.from.trim()),
            to: super::mailboxes::latin_digits(self.to.trim()),
            tz: text(&self.tz),
            clock: text(&self.clock),
            channel: text(&self.channel),
            team: id(&self.team, "team")?,
            agent: id(&self.agent, "agent")?,
            brand: id(&self.brand, "brand")?,
            tag: text(&self.tag),
            segment: id(&self.segment, "segment")?,
            by: text(&self.by),
            step: text(&self.step),
            compare: Some("previous".to_owned()),
            figure: text(&self.figure),
        })
    }
}

fn choices(
    pairs: impl IntoIterator<Item = (String, String)>,
    current: &str,
    tr: &Tr<'_>,
) -> Vec<Choice> {
    std::iter::once((String::new(), tr.t("kpi-any")))
        .chain(pairs)
        .map(|(value, label)| Choice {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

async fn form_view(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    q: &KpiQuery,
) -> Result<FormView, AppError> {
    let directory = state.app.directory().await?;
    let segments = state.app.segments(&agent.caller).await?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let by = q.by.clone().unwrap_or_default();
    Ok(FormView {
        from: q.from.clone(),
        to: q.to.clone(),
        tz: q.tz.clone().unwrap_or_default(),
        business: q.clock.as_deref() == Some("business"),
        step: q.step.clone().unwrap_or_default(),
        tag: q.tag.clone().unwrap_or_default(),
        by: std::iter::once((String::new(), tr.t("kpi-no-breakdown")))
            .chain(
                ["channel", "team", "agent", "brand", "tag", "segment"]
                    .iter()
                    .map(|d| ((*d).to_owned(), tr.t(&format!("kpi-by-{d}")))),
            )
            .map(|(value, label)| Choice {
                selected: value == by,
                value,
                label,
            })
            .collect(),
        channels: choices(
            seva_domain::Channel::ALL
                .iter()
                .map(|c| (c.as_str().to_owned(), tr.t(&format!("channel-{c}")))),
            q.channel.as_deref().unwrap_or(""),
            tr,
        ),
        teams: choices(
            directory
                .teams
                .iter()
                .map(|t| (t.id.0.to_string(), t.name.clone())),
            &opt(q.team),
            tr,
        ),
        agents: choices(
            directory
                .users
                .iter()
                .map(|u| (u.id.0.to_string(), u.name.clone())),
            &opt(q.agent),
            tr,
        ),
        brands: choices(
            directory
                .brands
                .iter()
                .map(|b| (b.id.0.to_string(), b.name.clone())),
            &opt(q.brand),
            tr,
        ),
        segments: choices(
            segments
                .iter()
                .map(|s| (s.id.0.to_string(), s.name.clone())),
            &opt(q.segment),
            tr,
        ),
    })
}

/// What went wrong with the query, in words.
fn refusal(tr: &Tr<'_>, e: &AppError) -> Option<String> {
    match e {
        AppError::Invalid(e) => Some(tr.t1("kpi-error-query", "detail", &e.to_string())),
        AppError::NotFound(_) => Some(tr.t("error-invalid-value")),
        AppError::Forbidden => Some(tr.t("error-supervisors-only")),
        _ => None,
    }
}

fn today(agent: &Agent, now: seva_domain::Timestamp) -> NaiveDate {
    let tz = agent
        .caller
        .user
        .time_zone
        .as_deref()
        .and_then(|t| t.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::Tz::UTC);
    now.with_timezone(&tz).date_naive()
}

/// Runs the page's report; `Err` is the response to give instead.
async fn run(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    page: &PageQuery,
) -> Result<(KpiQuery, ReportQuery, KpiReport), Response> {
    if !matches!(
        agent.caller.user.role,
        seva_domain::Role::Admin | seva_domain::Role::Supervisor
    ) {
        return Err((StatusCode::FORBIDDEN, tr.t("error-supervisors-only")).into_response());
    }
    let bad = |message: String| (StatusCode::UNPROCESSABLE_ENTITY, message).into_response();
    let q = page
        .kpi()
        .map_err(|field| bad(tr.t1("kpi-error-query", "detail", &field)))?;
    let q = with_defaults(agent, q, today(agent, state.app.now()));
    let (query, _) =
        report_query(&q).map_err(|e| bad(tr.t1("kpi-error-query", "detail", &e.message)))?;
    match Box::pin(state.app.kpi_report(&agent.caller, &query)).await {
        Ok(report) => Ok((q, query, report)),
        Err(e) => Err(match refusal(tr, &e) {
            Some(message) => bad(message),
            None => unavailable(&e),
        }),
    }
}

pub async fn show(
    State(state): State<AppState>,
    agent: Agent,
    Query(page): Query<PageQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let (q, query, report) = match Box::pin(run(&state, &agent, &tr, &page)).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let fmt = agent.fmt.in_zone(query.tz);
    let ctx = Ctx {
        tr: &tr,
        fmt,
        query: query_string(&q),
    };
    let directory = match state.app.directory().await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let form = match form_view(&state, &agent, &tr, &q).await {
        Ok(f) => f,
        Err(e) => return unavailable(&e),
    };
    let rows = match query.by {
        Some(by) => report
            .breakdown
            .iter()
            .map(|(key, f)| TableRow {
                label: breakdown_label(&tr, &directory, &form.segments, by, key.as_deref()),
                cells: row_cells(&tr, fmt, f),
            })
            .collect(),
        None => report
            .series
            .iter()
            .map(|(at, f)| TableRow {
                label: fmt.date(*at),
                cells: row_cells(&tr, fmt, f),
            })
            .collect(),
    };
    let backlog = report
        .backlog
        .iter()
        .map(|(status, n)| format!("{} {}", tr.t(&format!("status-{status}")), fmt.number(n)))
        .collect::<Vec<_>>()
        .join(" · ");
    let page = ReportsPage {
        shell: Shell::new(&agent, &tr, String::new()),
        cards: ctx
            .cards(&report)
            .into_iter()
            .chain(ctx.outcome_cards(&report))
            .collect(),
        backlog: tr.t_args(
            "kpi-backlog",
            &[
                (
                    "total",
                    &fmt.number(report.backlog.iter().map(|(_, n)| n).sum::<i64>()),
                ),
                ("detail", &backlog),
            ],
        ),
        charts: charts(&ctx, &report),
        breakdown_title: match query.by {
            Some(_) => tr.t("kpi-breakdown"),
            None => tr.t("kpi-per-bucket"),
        },
        table: if query.by.is_some() {
            "breakdown"
        } else {
            "series"
        },
        columns: columns(&tr),
        rows,
        query: ctx.query.clone(),
        form,
        tr,
    };
    render(&page, StatusCode::OK)
}

fn csv_cell(text: &str) -> String {
    // Cells a spreadsheet would read as a formula are neutralised.
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_response(name: &str, lines: Vec<Vec<String>>) -> Response {
    let mut body = String::new();
    for line in lines {
        body.push_str(
            &line
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        body.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Machine-readable figures: seconds and plain numbers, one row per bucket or breakdown key
/// (`table=series` or `table=breakdown`), or the period's summary (`table=summary`).
fn csv_row(label: &str, f: &Figures) -> Vec<String> {
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    let mut row = vec![
        label.to_owned(),
        f.first_response.count.to_string(),
        opt(f.first_response.median),
        f.first_response
            .p90
            .map(|v| v.to_string())
            .unwrap_or_default(),
        opt(f.average_response.mean),
        opt(f.first_resolution.median),
        opt(f.full_resolution.median),
        f.full_resolution.count.to_string(),
        f.one_touch.numerator.to_string(),
        f.one_touch.denominator.to_string(),
        f.fcr.numerator.to_string(),
        f.fcr.denominator.to_string(),
        f.fcr_pending.to_string(),
        f.csat.csat().numerator.to_string(),
        f.csat.count().to_string(),
        f.nps.nps().promoters.to_string(),
        f.nps.nps().detractors.to_string(),
        f.nps.count().to_string(),
        opt(f.ces.mean()),
        f.ces.count().to_string(),
    ];
    for r in f.sla {
        row.push(r.numerator.to_string());
        row.push(r.denominator.to_string());
    }
    row
}

const CSV_HEADER: [&str; 26] = [
    "group",
    "first_responses",
    "first_response_median_seconds",
    "first_response_p90_seconds",
    "average_response_mean_seconds",
    "first_resolution_median_seconds",
    "full_resolution_median_seconds",
    "resolved",
    "one_touch",
    "one_touch_of",
    "fcr",
    "fcr_of",
    "fcr_pending",
    "csat_satisfied",
    "csat_answers",
    "nps_promoters",
    "nps_detractors",
    "nps_answers",
    "ces_mean",
    "ces_answers",
    "sla_first_reply_met",
    "sla_first_reply_due",
    "sla_next_reply_met",
    "sla_next_reply_due",
    "sla_resolution_met",
    "sla_resolution_due",
];

pub async fn export(
    State(state): State<AppState>,
    agent: Agent,
    Query(page): Query<PageQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let (_, query, report) = match Box::pin(run(&state, &agent, &tr, &page)).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let mut lines = vec![CSV_HEADER.iter().map(|h| (*h).to_owned()).collect()];
    match page.table.as_str() {
        "breakdown" => lines.extend(
            report
                .breakdown
                .iter()
                .map(|(k, f)| csv_row(k.as_deref().unwrap_or(""), f)),
        ),
        "series" => {
            let tz = query.tz;
            lines.extend(
                report
                    .series
                    .iter()
                    .map(|(at, f)| csv_row(&at.with_timezone(&tz).date_naive().to_string(), f)),
            );
        }
        _ => {
            lines.push(csv_row("period", &report.figures));
            if let Some(p) = &report.previous {
                lines.push(csv_row("previous", &p.figures));
            }
        }
    }
    csv_response("seva-kpis", lines)
}

/// How a drill-down row shows what it contributed.
fn drill_value(tr: &Tr<'_>, fmt: Format, which: Drill, r: &DrillRow) -> String {
    match (r.seconds, which) {
        #[allow(clippy::cast_precision_loss)]
        (Some(s), _) => duration(tr, fmt, s as f64),
        (None, Drill::Resolved) => {
            let detail = r.detail.as_deref().unwrap_or("");
            let one_touch = tr.t(if detail.contains("one_touch=1") {
                "kpi-one-touch-yes"
            } else {
                "kpi-one-touch-no"
            });
            let fcr = tr.t(if detail.contains("fcr=yes") {
                "kpi-fcr-yes"
            } else if detail.contains("fcr=pending") {
                "kpi-fcr-pending"
            } else {
                "kpi-fcr-no"
            });
            format!("{one_touch} · {fcr}")
        }
        (None, Drill::Sla) => {
            // `first_reply met`: the target's name and its outcome, translated.
            let detail = r.detail.as_deref().unwrap_or("");
            let (target, outcome) = detail.split_once(' ').unwrap_or((detail, ""));
            format!(
                "{} · {}",
                tr.t(&format!("sla-target-{target}")),
                tr.t(&format!("sla-{outcome}"))
            )
        }
        (None, Drill::Backlog) => r
            .detail
            .as_deref()
            .map(|s| tr.t(&format!("status-{s}")))
            .unwrap_or_default(),
        (None, _) => fmt.digits(r.detail.as_deref().unwrap_or("")),
    }
}

/// The report query of a drill-down page (with the dashboard's defaults), or the page that
/// refuses it.
fn drill_query(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    page: &PageQuery,
) -> Result<(KpiQuery, seva_app::reports::ReportQuery), Box<Response>> {
    let invalid = || {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            tr.t("error-invalid-value"),
        )
            .into_response()
    };
    let q = match page.kpi() {
        Ok(q) => with_defaults(agent, q, today(agent, state.app.now())),
        Err(_) => return Err(Box::new(invalid())),
    };
    match report_query(&q) {
        Ok((query, _)) => Ok((q, query)),
        Err(e) => Err(Box::new(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                tr.t1("kpi-error-query", "detail", &e.message),
            )
                .into_response(),
        )),
    }
}

/// The page for a drill-down the app refused.
fn drill_refused(tr: &Tr<'_>, e: &AppError) -> Response {
    match refusal(tr, e) {
        Some(message) if matches!(e, AppError::Forbidden) => {
            (StatusCode::FORBIDDEN, message).into_response()
        }
        Some(message) => (StatusCode::UNPROCESSABLE_ENTITY, message).into_response(),
        None => unavailable(e),
    }
}

/// The customers behind a purchase figure, as a page or (`table=csv`) a file.
pub async fn customers(
    State(state): State<AppState>,
    agent: Agent,
    Query(page): Query<PageQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let Some(which) = crate::api::reports::customer_drill_of(&page.figure) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            tr.t("error-invalid-value"),
        )
            .into_response();
    };
    let (q, query) = match drill_query(&state, &agent, &tr, &page) {
        Ok(both) => both,
        Err(refused) => return *refused,
    };
    let rows = match state.app.kpi_customers(&agent.caller, &query, which).await {
        Ok(rows) => rows,
        Err(e) => return drill_refused(&tr, &e),
    };
    if page.table == "csv" {
        let mut lines = vec![vec![
            "customer_id".to_owned(),
            "at".to_owned(),
            "detail".to_owned(),
        ]];
        lines.extend(rows.iter().map(|r| {
            vec![
                r.customer_id.0.to_string(),
                r.at.to_rfc3339(),
                r.detail.clone().unwrap_or_default(),
            ]
        }));
        return csv_response(&format!("seva-{}", page.figure), lines);
    }
    let fmt = agent.fmt.in_zone(query.tz);
    let query_text = query_string(&q);
    let value = |detail: Option<&str>| match detail {
        Some(d) if d.starts_with("orders=") => tr.t1(
            "kpi-orders-count",
            "count",
            &fmt.digits(d.trim_start_matches("orders=")),
        ),
        Some("again=yes") => tr.t("kpi-ordered-again"),
        Some("again=no") => tr.t("kpi-not-again"),
        _ => String::new(),
    };
    let page_view = DrillPage {
        shell: Shell::new(&agent, &tr, String::new()),
        title: tr.t(&format!("kpi-drill-{}", page.figure)),
        id_header: tr.t("kpi-col-customer"),
        empty: tr.t("kpi-drill-empty-customers"),
        back: format!("/reports?{query_text}"),
        csv: format!(
            "/reports/customers?figure={}&table=csv&{query_text}",
            page.figure
        ),
        rows: rows
            .iter()
            .map(|r| DrillView {
                href: format!("/customers/{}", r.customer_id.0),
                id: format!("#{}", fmt.number(r.customer_id.0)),
                at: fmt.date_time(r.at),
                value: value(r.detail.as_deref()),
            })
            .collect(),
        tr,
    };
    render(&page_view, StatusCode::OK)
}

/// The conversations behind a figure, as a page or (`table=csv`) a file.
pub async fn conversations(
    State(state): State<AppState>,
    agent: Agent,
    Query(page): Query<PageQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let Some(which) = drill_of(&page.figure) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            tr.t("error-invalid-value"),
        )
            .into_response();
    };
    let (q, query) = match drill_query(&state, &agent, &tr, &page) {
        Ok(both) => both,
        Err(refused) => return *refused,
    };
    let rows = match state.app.kpi_drill(&agent.caller, &query, which).await {
        Ok(rows) => rows,
        Err(e) => return drill_refused(&tr, &e),
    };
    let fmt = agent.fmt.in_zone(query.tz);
    if page.table == "csv" {
        let mut lines = vec![vec![
            "conversation_id".to_owned(),
            "at".to_owned(),
            "seconds".to_owned(),
            "detail".to_owned(),
            "customer_id".to_owned(),
        ]];
        lines.extend(rows.iter().map(|r| {
            vec![
                r.conversation_id
                    .map(|c| c.0.to_string())
                    .unwrap_or_default(),
                r.at.to_rfc3339(),
                r.seconds.map(|s| s.to_string()).unwrap_or_default(),
                r.detail.clone().unwrap_or_default(),
                r.customer_id.0.to_string(),
            ]
        }));
        return csv_response(&format!("seva-{}", page.figure), lines);
    }
    let value = |r: &DrillRow| drill_value(&tr, fmt, which, r);
    let query_text = query_string(&q);
    let page_view = DrillPage {
        shell: Shell::new(&agent, &tr, String::new()),
        title: tr.t(&format!("kpi-drill-{}", page.figure)),
        id_header: tr.t("kpi-col-conversation"),
        empty: tr.t("kpi-drill-empty"),
        back: format!("/reports?{query_text}"),
        csv: format!(
            "/reports/conversations?figure={}&table=csv&{query_text}",
            page.figure
        ),
        rows: rows
            .iter()
            .map(|r| match r.conversation_id {
                Some(c) => DrillView {
                    href: format!("/conversations/{}", c.0),
                    id: format!("#{}", fmt.number(c.0)),
                    at: fmt.date_time(r.at),
                    value: value(r),
                },
                // Relationship NPS: the customer asked, about no conversation.
                None => DrillView {
                    href: format!("/customers/{}", r.customer_id.0),
                    id: tr.t1(
                        "kpi-drill-relationship",
                        "id",
                        &format!("#{}", fmt.number(r.customer_id.0)),
                    ),
                    at: fmt.date_time(r.at),
                    value: value(r),
                },
            })
            .collect(),
        tr,
    };
    render(&page_view, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "report_impact.html")]
pub struct ImpactPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub from: String,
    pub to: String,
    pub tz: String,
    pub back: String,
    pub rows: Vec<TableRow>,
    pub pending: String,
}

/// Service impact: resolved conversations against repeat purchases. Its period defaults to
/// the 30 days that ended 91 days ago, the latest whose 90 days have all passed.
pub async fn impact(
    State(state): State<AppState>,
    agent: Agent,
    Query(page): Query<PageQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let today = today(&agent, state.app.now());
    let q = match page.kpi() {
        Ok(mut q) => {
            if q.to.is_empty() {
                q.to = (today - Duration::days(91)).to_string();
            }
            if q.from.is_empty() {
                q.from = (today - Duration::days(120)).to_string();
            }
            with_defaults(&agent, q, today)
        }
        Err(_) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                tr.t("error-invalid-value"),
            )
                .into_response();
        }
    };
    let query = match report_query(&q) {
        Ok((query, _)) => query,
        Err(e) => {
            let message = tr.t1("kpi-error-query", "detail", &e.message);
            return (StatusCode::UNPROCESSABLE_ENTITY, message).into_response();
        }
    };
    let impact = match state.app.service_impact(&agent.caller, &query).await {
        Ok(i) => i,
        Err(AppError::Forbidden) => {
            return (StatusCode::FORBIDDEN, tr.t("error-supervisors-only")).into_response();
        }
        Err(e) => {
            return match refusal(&tr, &e) {
                Some(message) => (StatusCode::UNPROCESSABLE_ENTITY, message).into_response(),
                None => unavailable(&e),
            };
        }
    };
    let fmt = agent.fmt;
    let row = |key: &str, r: Ratio| TableRow {
        label: tr.t(key),
        cells: vec![
            fmt.number(r.denominator),
            fmt.number(r.numerator),
            percent(fmt, r.percent()),
        ],
    };
    let rows = vec![
        row("impact-all", impact.all),
        row("impact-csat-good", impact.csat_good),
        row("impact-csat-bad", impact.csat_bad),
        row("impact-csat-none", impact.csat_none),
        row("impact-fcr-yes", impact.fcr_yes),
        row("impact-fcr-no", impact.fcr_no),
        row("impact-fast", impact.first_response_within_target),
        row("impact-slow", impact.first_response_over_target),
        row("impact-no-conversation", impact.no_conversation),
    ];
    let page = ImpactPage {
        shell: Shell::new(&agent, &tr, String::new()),
        from: q.from.clone(),
        to: q.to.clone(),
        tz: q.tz.clone().unwrap_or_default(),
        back: format!("/reports?{}", query_string(&q)),
        rows,
        pending: tr.t1("impact-pending", "count", &fmt.number(impact.pending)),
        tr,
    };
    render(&page, StatusCode::OK)
}
