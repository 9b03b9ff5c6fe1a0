//! `seva import orders FILE.csv` and `seva import customers FILE.csv`: a shop's history from a
//! spreadsheet or another system's export. Every order (one or more consecutive rows with the
//! same `order_id`, one per line item) is checked whole and recorded in its own transaction, so
//! a bad row refuses its order and nothing of it is written; the rest goes on. `--dry-run`
//! checks everything and writes nothing. Refused rows are listed with their line numbers (and
//! written to `--errors FILE` as CSV). Recording is idempotent: importing a file twice changes
//! nothing the second time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use seva_app::App;
use seva_app::commerce::{OrderInput, check_input};
use seva_app::customers::CustomerInput;
use seva_domain::commerce::{Currency, OrderLine, OrderSource, parse_amount};
use seva_store::commerce::Recorded;

pub struct Options {
    pub dry_run: bool,
    pub errors: Option<PathBuf>,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// `(line, id, why)` of each refused record.
    pub refused: Vec<(u64, String, String)>,
    pub seconds: f64,
}

impl Summary {
    pub fn accepted(&self) -> u64 {
        self.created + self.updated + self.unchanged
    }
}

fn progress(file: &Path) -> anyhow::Result<ProgressBar> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Ok(bar)
}

fn reader(file: &Path) -> anyhow::Result<csv::Reader<std::fs::File>> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_path(file)
        .with_context(|| format!("cannot open {}", file.display()))
}

/// One data row, by column name; a missing column reads as empty.
struct Row {
    line: u64,
    fields: std::collections::HashMap<String, String>,
}

impl Row {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A data row with the byte offset after it, or the line of a row that is not CSV and why.
type RowRead = Result<(Row, u64), (u64, String)>;

fn rows(file: &Path) -> anyhow::Result<(impl Iterator<Item = RowRead>, Vec<String>)> {
    let mut reader = reader(file)?;
    let headers: Vec<String> = reader
        .headers()
        .context("the first line must name the columns")?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let names = headers.clone();
    let mut records = reader.into_records();
    let iter = std::iter::from_fn(move || {
        let record = records.next()?;
        let byte = records.reader().position().byte();
        Some(match record {
            Ok(r) => {
                let line = r.position().map_or(0, csv::Position::line);
                Ok((
                    Row {
                        line,
                        fields: names
                            .iter()
                            .cloned()
                            .zip(r.iter().map(str::to_owned))
                            .collect(),
                    },
                    byte,
                ))
            }
            Err(e) => Err((e.position().map_or(0, csv::Position::line), e.to_string())),
        })
    });
    Ok((iter, headers))
}

fn time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("placed_at '{text}' is not a date (2026-11-01 or RFC 3339)"))
}

fn parsed<T: std::str::FromStr>(row: &Row, name: &str, default: T) -> Result<T, String> {
    match row.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("{name} '{text}' is not one of the allowed values")),
    }
}

/// The order the first row describes, with a line from each row that has a title; a refusal
/// names the line at fault.
fn order_of(rows: &[Row]) -> Result<OrderInput, (u64, String)> {
    let first = &rows[0];
    let at = |row: &Row| {
        let line = row.line;
        move |why: String| (line, why)
    };
    let whole = at(first);
    let currency_text = first
        .get("currency")
        .ok_or_else(|| whole("currency is required".into()))?;
    let currency = Currency::parse(currency_text).map_err(|e| whole(e.to_string()))?;
    let money = |row: &Row, name: &str| -> Result<Option<i64>, String> {
        row.get(name)
            .map(|t| {
                parse_amount(t, &currency).map_err(|_| format!("{name} '{t}' is not an amount"))
            })
            .transpose()
    };
    let mut lines = Vec::new();
    for row in rows {
        let Some(title) = row.get("title") else {
            continue;
        };
        let quantity: i64 = parsed(row, "quantity", 1).map_err(at(row))?;
        let unit_price = money(row, "unit_price").map_err(at(row))?.unwrap_or(0);
        let total = match money(row, "line_total").map_err(at(row))? {
            Some(t) => t,
            None => unit_price
                .checked_mul(quantity)
                .ok_or_else(|| (row.line, "the line total is too large".to_owned()))?,
        };
        lines.push(OrderLine {
            sku: row.get("sku").map(str::to_owned),
            title: title.to_owned(),
            quantity,
            unit_price,
            total,
        });
    }
    let text = |name: &str| first.get(name).map(str::to_owned);
    Ok(OrderInput {
        source: OrderSource::Csv,
        external_id: text("order_id").unwrap_or_default(),
        number: text("number"),
        customer: CustomerInput {
            external_id: text("customer_id"),
            email: text("email"),
            phone: text("phone"),
            name: text("name"),
            language: None,
            country: text("country"),
        },
        status: parsed(
            first,
            "status",
            seva_domain::commerce::OrderStatus::Completed,
        )
        .map_err(at(first))?,
        payment_status: parsed(
            first,
            "payment_status",
            seva_domain::commerce::PaymentStatus::Paid,
        )
        .map_err(at(first))?,
        fulfilment_status: parsed(
            first,
            "fulfilment_status",
            seva_domain::commerce::FulfilmentStatus::Fulfilled,
        )
        .map_err(at(first))?,
        currency: currency.as_str().to_owned(),
        total: money(first, "total")
            .map_err(at(first))?
            .ok_or_else(|| whole("total is required".into()))?,
        refunded: money(first, "refunded").map_err(at(first))?.unwrap_or(0),
        placed_at: time(
            first
                .get("placed_at")
                .ok_or_else(|| whole("placed_at is required".into()))?,
        )
        .map_err(at(first))?,
        source_updated_at: None,
        shipping_address: None,
        lines,
    })
}

/// Checks the order and, unless dry, records it. An order's rows must be together: an id seen
/// before is refused rather than replacing the lines recorded from its earlier rows.
async fn take(
    app: &App,
    group: &[Row],
    seen: &mut std::collections::HashSet<String>,
    options: &Options,
    summary: &mut Summary,
) {
    let line = group[0].line;
    let id = group[0].get("order_id").unwrap_or("").to_owned();
    if !id.is_empty() && !seen.insert(id.clone()) {
        let why = "this order_id appeared on earlier rows; keep an order's rows together".into();
        summary.refused.push((line, id, why));
        return;
    }
    let input = match order_of(group) {
        Ok(input) => input,
        Err((at, why)) => {
            summary.refused.push((at, id, why));
            return;
        }
    };
    if let Err(e) = check_input(&input) {
        summary.refused.push((line, id, e.to_string()));
        return;
    }
    if options.dry_run {
        summary.created += 1;
        return;
    }
    match app.import_order(&input).await {
        Ok((_, Recorded::Created(_))) => summary.created += 1,
        Ok((_, Recorded::Updated(_))) => summary.updated += 1,
        Ok((_, Recorded::Unchanged(_))) => summary.unchanged += 1,
        Err(e) => summary.refused.push((line, id, e.to_string())),
    }
}

/// Takes the gathered order, or refuses it whole when an unreadable row was among its rows.
async fn finish(
    app: &App,
    group: &[Row],
    broken: bool,
    seen: &mut std::collections::HashSet<String>,
    options: &Options,
    summary: &mut Summary,
) {
    let Some(first) = group.first() else {
        return;
    };
    if broken {
        let id = first.get("order_id").unwrap_or("").to_owned();
        let why = "an unreadable row is among its rows".into();
        summary.refused.push((first.line, id, why));
    } else {
        take(app, group, seen, options, summary).await;
    }
}

pub async fn orders(app: &App, file: &Path, options: &Options) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let bar = progress(file)?;
    let (rows, headers) = rows(file)?;
    for needed in ["order_id", "currency", "total", "placed_at"] {
        anyhow::ensure!(
            headers.iter().any(|h| h == needed),
            "the file has no '{needed}' column; orders need order_id, currency, total and \
             placed_at (and customer_id, email or phone)"
        );
    }
    let mut summary = Summary::default();
    let mut seen = std::collections::HashSet::new();
    let mut group: Vec<Row> = Vec::new();
    // An unreadable row may belong to the order being gathered: that order is refused whole.
    let mut broken = false;
    for row in rows {
        match row {
            Ok((row, byte)) => {
                bar.set_position(byte);
                if group
                    .first()
                    .is_some_and(|g| g.get("order_id") != row.get("order_id"))
                {
                    finish(app, &group, broken, &mut seen, options, &mut summary).await;
                    group.clear();
                    broken = false;
                    bar.set_message(format!("{} orders", summary.accepted()));
                }
                group.push(row);
            }
            Err((line, why)) => {
                summary.refused.push((line, String::new(), why));
                broken = !group.is_empty();
            }
        }
    }
    finish(app, &group, broken, &mut seen, options, &mut summary).await;
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    report(&summary, options)?;
    Ok(summary)
}

pub async fn customers(app: &App, file: &Path, options: &Options) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let bar = progress(file)?;
    let (rows, headers) = rows(file)?;
    anyhow::ensure!(
        ["customer_id", "email", "phone"]
            .iter()
            .any(|c| headers.iter().any(|h| h == c)),
        "the file needs a customer_id, email or phone column"
    );
    let mut summary = Summary::default();
    for row in rows {
        let (row, byte) = match row {
            Ok(r) => r,
            Err((line, why)) => {
                summary.refused.push((line, String::new(), why));
                continue;
            }
        };
        bar.set_position(byte);
        let text = |name: &str| row.get(name).map(str::to_owned);
        let input = CustomerInput {
            external_id: text("customer_id"),
            email: text("email"),
            phone: text("phone"),
            name: text("name"),
            language: text("language"),
            country: text("country"),
        };
        let label = input
            .email
            .clone()
            .or(input.external_id.clone())
            .or(input.phone.clone())
            .unwrap_or_default();
        if options.dry_run {
            summary.created += 1;
            continue;
        }
        match app.import_customer(&input).await {
            Ok(_) => summary.created += 1,
            Err(e) => summary.refused.push((row.line, label, e.to_string())),
        }
    }
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    report(&summary, options)?;
    Ok(summary)
}

fn report(summary: &Summary, options: &Options) -> anyhow::Result<()> {
    for (line, id, why) in summary.refused.iter().take(50) {
        eprintln!("line {line} ({id}): {why}");
    }
    if summary.refused.len() > 50 {
        eprintln!("… and {} more refused", summary.refused.len() - 50);
    }
    if let Some(path) = &options.errors {
        let mut out = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.write_record(["line", "id", "error"])?;
        for (line, id, why) in &summary.refused {
            out.write_record([line.to_string().as_str(), id, why])?;
        }
        out.flush()?;
    }
    let rate = summary.accepted() as f64 / summary.seconds.max(0.001);
    println!(
        "{}{} accepted ({} new, {} updated, {} unchanged), {} refused, in {:.1} s ({:.0}/s)",
        if options.dry_run { "dry run: " } else { "" },
        summary.accepted(),
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.refused.len(),
        summary.seconds,
        rate
    );
    Ok(())
}
