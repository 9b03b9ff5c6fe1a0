//! Commerce: orders and their lines, as the shop's platform reports them. Money is integer
//! minor units with an ISO 4217 currency code, never floating point, never summed across
//! currencies.

use std::collections::BTreeMap;

use crate::Timestamp;
use crate::ids::{ConversationId, CustomerId};
use crate::macros::{id_type, string_enum};
use crate::values::{ValueError, bounded_text, limits};

id_type!(OrderId, OrderRequestId, ProductId);

string_enum! {
    /// Where an order came from; with its `external_id`, what makes a redelivery the same order.
    pub enum OrderSource {
        Api => "api",
        Csv => "csv",
        Shopify => "shopify",
        Woocommerce => "woocommerce",
    }
}

string_enum! {
    /// The order as a whole.
    pub enum OrderStatus {
        Open => "open",
        Completed => "completed",
        Cancelled => "cancelled",
    }
}

string_enum! {
    /// Whether it was paid.
    pub enum PaymentStatus {
        Pending => "pending",
        Paid => "paid",
        PartiallyRefunded => "partially_refunded",
        Refunded => "refunded",
        Failed => "failed",
    }
}

string_enum! {
    /// Whether it was shipped.
    pub enum FulfilmentStatus {
        Unfulfilled => "unfulfilled",
        Partial => "partial",
        Fulfilled => "fulfilled",
    }
}

/// An ISO 4217 code such as IRR, INR or EUR: three capital letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(String);

impl Currency {
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let code = input.trim().to_ascii_uppercase();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(ValueError::UnknownValue {
                field: "currency",
                value: input.chars().take(20).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits after the decimal point in its minor unit (ISO 4217): 0 for yen or won, 3 for
    /// the Gulf dinars, 2 for the rest (rial, rupee, euro, ...).
    pub fn exponent(&self) -> u32 {
        match self.0.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

/// An amount written in major units, as platforms send it (`"199.00"`, `"-10.5"`, `1499`), in
/// minor units of `currency`: exact, no floating point. More decimals than the currency has
/// are refused.
pub fn parse_amount(text: &str, currency: &Currency) -> Result<i64, ValueError> {
    let invalid = || ValueError::UnknownValue {
        field: "amount",
        value: text.chars().take(40).collect(),
    };
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let (units, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let exponent = currency.exponent() as usize;
    let fraction = fraction.trim_end_matches('0');
    if units.is_empty()
        || !units
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        || fraction.len() > exponent
    {
        return Err(invalid());
    }
    let scale = 10_i64.pow(currency.exponent());
    let units: i64 = units.parse().map_err(|_| invalid())?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<exponent$}")
            .parse()
            .map_err(|_| invalid())?
    };
    let minor = units
        .checked_mul(scale)
        .and_then(|m| m.checked_add(fraction))
        .ok_or_else(invalid)?;
    Ok(if negative { -minor } else { minor })
}

/// A shop platform that sends order webhooks, and the secret that signs them.
#[derive(Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: i64,
    /// shopify or woocommerce.
    pub platform: OrderSource,
    pub name: String,
    pub secret: String,
}

/// The secret stays out of logs.
impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("platform", &self.platform)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where an order is shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Address {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. IR, IN.
    pub country: Option<String>,
    pub phone: Option<String>,
}

/// One product line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub sku: Option<String>,
    pub title: String,
    pub quantity: i64,
    /// Minor units of the order's currency.
    pub unit_price: i64,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub source: OrderSource,
    /// The platform's id of the order.
    pub external_id: String,
    /// What the shopper sees, e.g. `#1042`.
    pub number: String,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub fulfilment_status: FulfilmentStatus,
    pub currency: Currency,
    /// Minor units.
    pub total: i64,
    /// Minor units refunded so far.
    pub refunded: i64,
    pub placed_at: Timestamp,
    pub shipping_address: Option<Address>,
    pub lines: Vec<OrderLine>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Checks an order's money and lines: non-negative amounts, refunds within the total, 1 to 500
/// lines of positive quantity, titles present.
pub fn check_order(total: i64, refunded: i64, lines: &[OrderLine]) -> Result<(), ValueError> {
    let amount = |field: &'static str, value: i64| {
        if value < 0 {
            Err(ValueError::UnknownValue {
                field,
                value: value.to_string(),
            })
        } else {
            Ok(())
        }
    };
    amount("total", total)?;
    amount("refunded", refunded)?;
    if refunded > total {
        return Err(ValueError::UnknownValue {
            field: "refunded (more than the total)",
            value: refunded.to_string(),
        });
    }
    if lines.len() > MAX_LINES {
        return Err(ValueError::TooLong {
            field: "lines",
            max: MAX_LINES,
        });
    }
    for line in lines {
        bounded_text("line title", &line.title, limits::NAME)?;
        if line.quantity <= 0 {
            return Err(ValueError::UnknownValue {
                field: "quantity",
                value: line.quantity.to_string(),
            });
        }
        amount("unit_price", line.unit_price)?;
        amount("line total", line.total)?;
    }
    Ok(())
}

/// Lines one order may have.
pub const MAX_LINES: usize = 500;

string_enum! {
    /// What the customer asks for after an order.
    pub enum RequestKind {
        Return => "return",
        Exchange => "exchange",
        Refund => "refund",
    }
}

string_enum! {
    /// Where a return, exchange or refund request stands.
    pub enum RequestStatus {
        Requested => "requested",
        Approved => "approved",
        Rejected => "rejected",
        /// The goods came back.
        Received => "received",
        /// Refunded, or the replacement sent.
        Completed => "completed",
    }
}

impl RequestStatus {
    /// The moves an agent may make: forward along requested → approved → received →
    /// completed, or rejected from requested or approved. An approved request may complete
    /// without goods coming back (a refund request has nothing to send back).
    pub fn can_become(self, to: RequestStatus) -> bool {
        use RequestStatus::{Approved, Completed, Received, Rejected, Requested};
        matches!(
            (self, to),
            (Requested, Approved | Rejected)
                | (Approved, Received | Completed | Rejected)
                | (Received, Completed)
        )
    }
}

/// One item of a request: what goes back (or is exchanged), how many.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestItem {
    pub sku: Option<String>,
    pub title: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub id: OrderRequestId,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub conversation_id: Option<ConversationId>,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub reason: String,
    pub items: Vec<RequestItem>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Checks a request against its order: a reason, 1 to 100 items, each with a positive
/// quantity; an item with a SKU the order has may not ask for more than was ordered.
pub fn check_request(
    reason: &str,
    items: &[RequestItem],
    order_lines: &[OrderLine],
) -> Result<String, ValueError> {
    let reason = bounded_text("reason", reason, 2_000)?;
    if items.is_empty() {
        return Err(ValueError::Empty { field: "items" });
    }
    if items.len() > 100 {
        return Err(ValueError::TooLong {
            field: "items",
            max: 100,
        });
    }
    for item in items {
        bounded_text("item title", &item.title, limits::NAME)?;
        let ordered: i64 = order_lines
            .iter()
            .filter(|l| l.sku.is_some() && l.sku == item.sku)
            .map(|l| l.quantity)
            .sum();
        if item.quantity <= 0 || (ordered > 0 && item.quantity > ordered) {
            return Err(ValueError::UnknownValue {
                field: "item quantity",
                value: item.quantity.to_string(),
            });
        }
    }
    Ok(reason)
}

/// A product of the shop's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub sku: String,
    pub title: String,
    /// The list price, when known, in minor units of `currency`.
    pub price: Option<(Currency, i64)>,
    pub url: Option<String>,
    pub updated_at: Timestamp,
}

/// A customer's spending in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spend {
    pub orders: i64,
    /// Order totals less refunds, minor units; cancelled orders count nothing.
    pub lifetime_value: i64,
    pub first_order_at: Option<Timestamp>,
    pub last_order_at: Option<Timestamp>,
}

/// Lifetime value and order count per currency (never summed across currencies). Cancelled
/// orders are left out.
pub fn spend_by_currency<'a>(
    orders: impl IntoIterator<Item = &'a Order>,
) -> BTreeMap<Currency, Spend> {
    let mut spend: BTreeMap<Currency, Spend> = BTreeMap::new();
    for order in orders {
        if order.status == OrderStatus::Cancelled {
            continue;
        }
        let s = spend.entry(order.currency.clone()).or_default();
        s.orders += 1;
        s.lifetime_value += order.total - order.refunded;
        s.first_order_at = Some(
            s.first_order_at
                .map_or(order.placed_at, |t| t.min(order.placed_at)),
        );
        s.last_order_at = Some(
            s.last_order_at
                .map_or(order.placed_at, |t| t.max(order.placed_at)),
        );
    }
    spend
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    #[test]
    fn requests_move_forward_or_are_rejected_and_never_exceed_the_order() {
        use RequestStatus::*;
        assert!(Requested.can_become(Approved));
        assert!(Approved.can_become(Completed));
        assert!(Received.can_become(Completed));
        assert!(!Completed.can_become(Requested));
        assert!(!Rejected.can_become(Approved));
        assert!(!Requested.can_become(Received));
        let lines = [OrderLine {
            sku: Some("SH-42".into()),
            title: "Shoes".into(),
            quantity: 2,
            unit_price: 100,
            total: 200,
        }];
        let item = |quantity| RequestItem {
            sku: Some("SH-42".into()),
            title: "Shoes".into(),
            quantity,
        };
        assert_eq!(
            check_request(" too small ", &[item(2)], &lines).unwrap(),
            "too small"
        );
        assert!(check_request("too small", &[item(3)], &lines).is_err());
        assert!(check_request("too small", &[item(0)], &lines).is_err());
        assert!(check_request("too small", &[], &lines).is_err());
        assert!(check_request("  ", &[item(1)], &lines).is_err());
    }

    fn order(currency: &str, total: i64, refunded: i64, status: OrderStatus, at: i64) -> Order {
        let at = DateTime::from_timestamp(at, 0).unwrap();
        Order {
            id: OrderId(1),
            source: OrderSource::Api,
            external_id: "1".into(),
            number: "#1".into(),
            customer_id: CustomerId(1),
            status,
            payment_status: PaymentStatus::Paid,
            fulfilment_status: FulfilmentStatus::Fulfilled,
            currency: Currency::parse(currency).unwrap(),
            total,
            refunded,
            placed_at: at,
            shipping_address: None,
            lines: Vec::new(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn spend_is_per_currency_less_refunds_without_cancelled_orders() {
        let orders = [
            order("IRR", 5_000_000, 0, OrderStatus::Completed, 100),
            order("IRR", 2_000_000, 500_000, OrderStatus::Completed, 300),
            order("INR", 149_900, 0, OrderStatus::Open, 200),
            order("IRR", 9_000_000, 0, OrderStatus::Cancelled, 400),
        ];
        let spend = spend_by_currency(&orders);
        let irr = &spend[&Currency::parse("irr").unwrap()];
        assert_eq!(irr.orders, 2);
        assert_eq!(irr.lifetime_value, 6_500_000);
        assert_eq!(irr.first_order_at.unwrap().timestamp(), 100);
        assert_eq!(irr.last_order_at.unwrap().timestamp(), 300);
        assert_eq!(
            spend[&Currency::parse("INR").unwrap()].lifetime_value,
            149_900
        );
        assert_eq!(spend.len(), 2, "never summed across currencies");
    }

    #[test]
    fn amounts_are_read_exactly_in_minor_units() {
        let inr = Currency::parse("INR").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(parse_amount("199.00", &inr), Ok(19_900));
        assert_eq!(parse_amount("0.1", &inr), Ok(10));
        assert_eq!(parse_amount("1499", &inr), Ok(149_900));
        assert_eq!(parse_amount("-10.50", &inr), Ok(-1_050));
        assert_eq!(
            parse_amount("520000.00", &Currency::parse("IRR").unwrap()),
            Ok(52_000_000)
        );
        assert_eq!(parse_amount("1200", &jpy), Ok(1_200));
        assert_eq!(parse_amount("1.250", &kwd), Ok(1_250));
        for bad in [
            "",
            "abc",
            "1.999",
            "1,000.00",
            "1e3",
            ".5",
            "--1",
            "99999999999999999999",
        ] {
            assert!(parse_amount(bad, &inr).is_err(), "{bad}");
        }
        assert!(parse_amount("1.5", &jpy).is_err(), "yen has no minor unit");
    }

    #[test]
    fn bad_money_and_lines_are_refused() {
        let line = |quantity, unit_price| OrderLine {
            sku: None,
            title: "Scarf".into(),
            quantity,
            unit_price,
            total: unit_price * quantity,
        };
        assert!(check_order(100, 0, &[line(1, 100)]).is_ok());
        assert!(check_order(-1, 0, &[]).is_err());
        assert!(
            check_order(100, 101, &[]).is_err(),
            "refund above the total"
        );
        assert!(check_order(100, 0, &[line(0, 100)]).is_err());
        assert!(check_order(100, 0, &[line(1, -5)]).is_err());
        for bad in ["", "RI", "IRRR", "ir1", "€"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Currency::parse(" inr ").unwrap().as_str(), "INR");
    }
}
