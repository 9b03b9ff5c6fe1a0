//! The benchmark's data set: customers, agents, conversations, messages, tags and events with
//! realistic mixes of languages, channels, statuses and reply times over the past year, loaded in
//! bulk (multi-row INSERTs in large transactions) through the store's own schema.

use std::time::{SystemTime, UNIX_EPOCH};

use fastrand::Rng;
use seva_domain::search::normalize;
use seva_domain::{Actor, Change, Channel, MessageId, MessageKind, Status, UserId};
use seva_store::{Backend, Store};
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub name: &'static str,
    pub conversations: usize,
    pub customers: usize,
    pub agents: usize,
}

impl Scale {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        let (name, conversations) = match name {
            "quick" => ("quick", 2_000),
            "10k" => ("10k", 10_000),
            "100k" => ("100k", 100_000),
            "1m" => ("1m", 1_000_000),
            other => anyhow::bail!("unknown scale '{other}': use quick, 10k, 100k or 1m"),
        };
        Ok(Self {
            name,
            conversations,
            customers: conversations / 5,
            agents: 20.min(conversations / 50).max(4),
        })
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    pub customers: usize,
    pub conversations: usize,
    pub messages: usize,
    pub events: usize,
    pub orders: usize,
    pub seconds: f64,
}

const LANGS: [&str; 4] = ["en", "fa", "mr", "hi"];
const TAGS: [&str; 6] = [
    "order-status",
    "return",
    "refund",
    "damaged",
    "product-question",
    "payment",
];
/// (subject, customer message, agent reply), per language.
const TEXT: [[(&str, &str, &str); 3]; 4] = [
    [
        (
            "Where is my order?",
            "Hi, the tracking page has not changed for three days. Can you check my parcel?",
            "Thanks for waiting! Your parcel left our warehouse yesterday and arrives within two days.",
        ),
        (
            "Return request",
            "The cushion covers are a different colour from the photos. Can I return them?",
            "Sorry about that. A free return label is on its way to your inbox.",
        ),
        (
            "Refund not received",
            "I returned my order two weeks ago and still have no refund.",
            "The refund was issued today; it shows on your card within 3 to 5 working days.",
        ),
    ],
    [
        (
            "سفارشم کجاست؟",
            "سلام، سه روزه وضعیت رهگیری بسته‌ام تغییر نکرده. لطفاً بررسی کنید.",
            "ممنون از صبرتون! بسته دیروز از انبار ارسال شد و تا دو روز دیگه می‌رسه.",
        ),
        (
            "درخواست مرجوعی",
            "رنگ روکش کوسن‌ها با عکس‌ها فرق داره. می‌تونم مرجوعش کنم؟",
            "بابت این موضوع متأسفیم. برچسب ارسال رایگان به ایمیلتون فرستاده شد.",
        ),
        (
            "مبلغ برگشتی واریز نشده",
            "دو هفته پیش سفارش رو مرجوع کردم ولی هنوز پولم برنگشته.",
            "مبلغ امروز واریز شد و ظرف ۳ تا ۵ روز کاری به حسابتون می‌رسه.",
        ),
    ],
    [
        (
            "माझी ऑर्डर कुठे आहे?",
            "नमस्कार, तीन दिवसांपासून ट्रॅकिंग बदललेले नाही. कृपया तपासा.",
            "थांबल्याबद्दल धन्यवाद! पार्सल काल निघाले आहे आणि दोन दिवसांत पोहोचेल.",
        ),
        (
            "ऑर्डर परत करायची आहे",
            "साडीचा रंग फोटोपेक्षा वेगळा आहे. मी ती परत करू शकते का?",
            "क्षमस्व. मोफत रिटर्न लेबल तुमच्या ईमेलवर पाठवले आहे.",
        ),
        (
            "परतावा मिळाला नाही",
            "दोन आठवड्यांपूर्वी ऑर्डर परत केली, पण अजून पैसे आले नाहीत.",
            "परतावा आज केला आहे; ३–५ कामकाजाच्या दिवसांत खात्यात दिसेल.",
        ),
    ],
    [
        (
            "मेरा ऑर्डर कहाँ है?",
            "नमस्ते, तीन दिन से ट्रैकिंग नहीं बदली। कृपया जाँच करें।",
            "इंतज़ार के लिए धन्यवाद! पार्सल कल निकल चुका है और दो दिन में पहुँचेगा।",
        ),
        (
            "ऑर्डर की वापसी",
            "कुर्ती का रंग फ़ोटो से अलग है। क्या मैं इसे लौटा सकती हूँ?",
            "खेद है। मुफ़्त रिटर्न लेबल आपके ईमेल पर भेज दिया है।",
        ),
        (
            "रिफ़ंड नहीं मिला",
            "दो हफ़्ते पहले ऑर्डर लौटाया था, पर अब तक पैसे नहीं आए।",
            "रिफ़ंड आज जारी हुआ है; 3–5 कार्यदिवसों में खाते में दिखेगा।",
        ),
    ],
];
const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// One SQL value; the two null kinds keep the parameter types PostgreSQL expects.
enum V {
    I(i64),
    T(String),
    S(&'static str),
    NullI,
    NullT,
}

/// A batch of rows for one table, flushed as multi-row INSERTs.
struct Rows {
    table: &'static str,
    columns: &'static [&'static str],
    values: Vec<V>,
}

impl Rows {
    fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            table,
            columns,
            values: Vec::new(),
        }
    }

    fn push(&mut self, row: impl IntoIterator<Item = V>) {
        let before = self.values.len();
        self.values.extend(row);
        debug_assert_eq!(self.values.len() - before, self.columns.len());
    }

    fn len(&self) -> usize {
        self.values.len() / self.columns.len()
    }

    async fn flush(&mut self, conn: &mut seva_store::Conn) -> anyhow::Result<()> {
        // PostgreSQL takes large statements well. SQLite looks `$N` parameters up by name with
        // a linear scan, so very wide statements cost quadratic time there: keep them small.
        let max_params = if seva_store::dialect::is_postgres(conn) {
            30_000
        } else {
            900
        };
        let per_statement = (max_params / self.columns.len()).max(1);
        let values = std::mem::take(&mut self.values);
        let mut values = values.into_iter().peekable();
        while values.peek().is_some() {
            let chunk: Vec<V> = values
                .by_ref()
                .take(per_statement * self.columns.len())
                .collect();
            let rows = chunk.len() / self.columns.len();
            let mut sql = format!(
                "INSERT INTO {} ({}) VALUES ",
                self.table,
                self.columns.join(", ")
            );
            let mut n = 0;
            for r in 0..rows {
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..self.columns.len() {
                    n += 1;
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
                sql.push(')');
            }
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for v in chunk {
                query = match v {
                    V::I(i) => query.bind(i),
                    V::T(t) => query.bind(t),
                    V::S(s) => query.bind(s),
                    V::NullI => query.bind(None::<i64>),
                    V::NullT => query.bind(None::<String>),
                };
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// `count` times drawn by `draw`, oldest first. Ids are given in this order, as in a live shop
/// where each new conversation or order gets the next id, so a day's rows lie together on
/// disk (ids in random time order would scatter them: one page read per row of a day).
fn in_time_order(seed: u64, count: usize, mut draw: impl FnMut(&mut Rng) -> i64) -> Vec<i64> {
    let mut rng = Rng::with_seed(seed);
    let mut times: Vec<i64> = (0..count).map(|_| draw(&mut rng)).collect();
    times.sort_unstable();
    times
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn json(change: &Change) -> String {
    serde_json::to_string(change).expect("changes serialise")
}

/// Fills an empty, migrated store. Ids are assigned here, so rows can refer to each other
/// without reading back; sequences are moved past them at the end.
#[allow(clippy::too_many_lines)] // one pass over the data set reads best in one place
pub async fn generate(store: &Store, scale: Scale, seed: u64) -> anyhow::Result<Loaded> {
    let started = std::time::Instant::now();
    let mut rng = Rng::with_seed(seed);
    let now = now_micros();
    let mut loaded = Loaded::default();

    let mut tx = store.begin().await?;
    let mut brands = Rows::new("brands", &["id", "name", "created_at"]);
    brands.push([V::I(1), V::S("Kahroba Home"), V::I(now - 400 * DAY)]);
    brands.push([V::I(2), V::S("Saanjh Fashion"), V::I(now - 400 * DAY)]);
    brands.flush(&mut tx).await?;
    let mut teams = Rows::new("teams", &["id", "name", "created_at"]);
    for (i, name) in ["Customer care", "Returns & refunds", "Pre-sales"]
        .into_iter()
        .enumerate()
    {
        teams.push([V::I(i as i64 + 1), V::S(name), V::I(now - 400 * DAY)]);
    }
    teams.flush(&mut tx).await?;
    // SLA policies, as a shop would set them: urgent conversations answered within an hour
    // on the calendar; the rest within 4 business hours, next replies within 8, resolved
    // within 3 business days (the facts computed at start measure every target).
    let mut policies = Rows::new(
        "sla_policies",
        &[
            "id",
            "name",
            "position",
            "priority",
            "first_reply_secs",
            "next_reply_secs",
            "resolution_secs",
            "business_hours",
            "created_at",
            "updated_at",
        ],
    );
    policies.push([
        V::I(1),
        V::S("Urgent"),
        V::I(1),
        V::S("urgent"),
        V::I(3600),
        V::NullI,
        V::NullI,
        V::I(0),
        V::I(now - 400 * DAY),
        V::I(now - 400 * DAY),
    ]);
    policies.push([
        V::I(2),
        V::S("Standard"),
        V::I(2),
        V::NullT,
        V::I(4 * 3600),
        V::I(8 * 3600),
        V::I(3 * 24 * 3600),
        V::I(1),
        V::I(now - 400 * DAY),
        V::I(now - 400 * DAY),
    ]);
    policies.flush(&mut tx).await?;
    let mut users = Rows::new(
        "users",
        &[
            "id",
            "email",
            "name",
            "role",
            "password_hash",
            "deactivated_at",
            "language",
            "created_at",
            "updated_at",
        ],
    );
    for a in 1..=scale.agents as i64 {
        users.push([
            V::I(a),
            V::T(format!("agent{a}@bench.example")),
            V::T(format!("Agent {a}")),
            V::S("agent"),
            V::NullT,
            V::NullI,
            V::S(LANGS[a as usize % 4]),
            V::I(now - 400 * DAY),
            V::I(now - 400 * DAY),
        ]);
    }
    users.flush(&mut tx).await?;

    let mut customers = Rows::new(
        "customers",
        &[
            "id",
            "name",
            "language",
            "attributes",
            "created_at",
            "updated_at",
        ],
    );
    let mut identities = Rows::new(
        "customer_identities",
        &["id", "customer_id", "kind", "value", "created_at"],
    );
    let mut keys = Rows::new("customer_match_keys", &["kind", "value", "customer_id"]);
    let key = |keys: &mut Rows, c: i64, kind: seva_domain::IdentityKind, value: &str| {
        let identity = seva_domain::Identity {
            kind,
            value: value.to_owned(),
        };
        for k in seva_store::crm::identity_keys(&identity) {
            keys.push([V::S(k.kind()), V::T(k.value().to_owned()), V::I(c)]);
        }
    };
    let mut identity_id = 0;
    for c in 1..=scale.customers as i64 {
        let lang = LANGS[c as usize % 4];
        let created = now - rng.i64(0..400 * DAY);
        customers.push([
            V::I(c),
            V::T(format!("Customer {c}")),
            V::S(lang),
            V::S("{}"),
            V::I(created),
            V::I(created),
        ]);
        identity_id += 1;
        identities.push([
            V::I(identity_id),
            V::I(c),
            V::S("email"),
            V::T(format!("c{c}@bench.example")),
            V::I(created),
        ]);
        key(
            &mut keys,
            c,
            seva_domain::IdentityKind::Email,
            &format!("c{c}@bench.example"),
        );
        if c % 2 == 0 {
            identity_id += 1;
            identities.push([
                V::I(identity_id),
                V::I(c),
                V::S("phone"),
                V::T(format!("+98912{c:07}")),
                V::I(created),
            ]);
            key(
                &mut keys,
                c,
                seva_domain::IdentityKind::Phone,
                &format!("+98912{c:07}"),
            );
        }
        if customers.len() >= 20_000 {
            customers.flush(&mut tx).await?;
            identities.flush(&mut tx).await?;
            keys.flush(&mut tx).await?;
        }
    }
    customers.flush(&mut tx).await?;
    identities.flush(&mut tx).await?;
    keys.flush(&mut tx).await?;
    tx.commit().await?;
    loaded.customers = scale.customers;

    let mut conversations = Rows::new(
        "conversations",
        &[
            "id",
            "customer_id",
            "brand_id",
            "channel",
            "status",
            "priority",
            "subject",
            "assignee_id",
            "team_id",
            "created_at",
            "updated_at",
            "last_activity_at",
        ],
    );
    let mut tags = Rows::new("conversation_tags", &["conversation_id", "tag"]);
    let mut messages = Rows::new(
        "messages",
        &[
            "id",
            "conversation_id",
            "kind",
            "direction",
            "author_kind",
            "author_user_id",
            "body_text",
            "body_html",
            "external_id",
            "created_at",
        ],
    );
    let mut events = Rows::new(
        "events",
        &[
            "id",
            "conversation_id",
            "customer_id",
            "actor_kind",
            "actor_id",
            "kind",
            "data",
            "at",
        ],
    );
    // Search documents are keyed by `seva_store::search::{message_doc, subject_doc}`; the key
    // column is named differently on each backend.
    let search_columns: &'static [&'static str] = match store.backend() {
        Backend::Sqlite => &["rowid", "body", "conversation_id"],
        Backend::Postgres => &["doc_id", "body", "conversation_id"],
    };
    let mut search = Rows::new("search_index", search_columns);
    let mut surveys = Rows::new(
        "surveys",
        &[
            "customer_id",
            "conversation_id",
            "brand_id",
            "channel",
            "asks",
            "csat",
            "nps",
            "created_at",
            "answered_at",
        ],
    );
    let (mut message_id, mut event_id) = (0_i64, 0_i64);
    // Newer conversations are more frequent: the shop is growing, twice as busy now as a year
    // ago (density 2 - age/365; this inverts its distribution function).
    let created_times = in_time_order(seed ^ 0x5eed_7105, scale.conversations, |r| {
        let age = ((730.0 - 730.0 * (1.0 - 0.75 * r.f64()).sqrt()) * DAY as f64) as i64;
        now - age - r.i64(0..HOUR)
    });
    let mut tx = store.begin().await?;
    for id in 1..=scale.conversations as i64 {
        let customer = rng.i64(1..=scale.customers as i64);
        let lang = customer as usize % 4;
        let brand = if lang == 1 { 1 } else { 2 };
        let (subject, opener, answer) = TEXT[lang][rng.usize(0..3)];
        let channel = Channel::at_retail_percentile(rng.u32(0..100));
        let created = created_times[(id - 1) as usize];
        let assignee = (rng.u32(0..10) > 0).then(|| rng.i64(1..=scale.agents as i64));
        let team = rng.i64(1..=3);
        let mut at = created;
        let mut event = |events: &mut Rows, actor: Actor, change: Change, at: i64| {
            event_id += 1;
            events.push([
                V::I(event_id),
                V::I(id),
                V::I(customer),
                V::S(actor.kind.as_str()),
                actor.id.map_or(V::NullI, V::I),
                V::S(change.kind()),
                V::T(json(&change)),
                V::I(at),
            ]);
        };
        let as_agent = Actor::user(UserId(assignee.unwrap_or(1)));
        event(
            &mut events,
            as_agent,
            Change::ConversationCreated {
                channel,
                subject: Some(subject.to_owned()),
            },
            at,
        );
        // 2 to 8 messages, 5 on average: customer and agent take turns, with some notes.
        let count = 2 + rng.usize(0..4) + rng.usize(0..4);
        let mut last_from_customer = true;
        for m in 0..count {
            let kind = if m % 2 == 0 {
                MessageKind::Customer
            } else if rng.u32(0..6) == 0 {
                MessageKind::Note
            } else {
                MessageKind::Reply
            };
            if m > 0 {
                at += match kind {
                    MessageKind::Customer => rng.i64(HOUR..2 * DAY),
                    _ => rng.i64(5 * MINUTE..8 * HOUR),
                };
            }
            if at > now - MINUTE {
                break;
            }
            if m == 1
                && let Some(agent) = assignee
            {
                event(
                    &mut events,
                    as_agent,
                    Change::Assigned {
                        from: None,
                        to: Some(UserId(agent)),
                    },
                    at,
                );
            }
            message_id += 1;
            let (author_kind, author) = match kind {
                MessageKind::Customer => ("customer", V::NullI),
                _ => ("agent", V::I(assignee.unwrap_or(1))),
            };
            let text = match kind {
                MessageKind::Customer => opener,
                MessageKind::Reply => answer,
                MessageKind::Note => "Checked the order in the shop system.",
            };
            search.push([
                V::I(seva_store::search::message_doc(MessageId(message_id))),
                V::T(normalize(text)),
                V::I(id),
            ]);
            messages.push([
                V::I(message_id),
                V::I(id),
                V::S(kind.as_str()),
                V::S(kind.direction().as_str()),
                V::S(author_kind),
                author,
                V::S(text),
                V::NullT,
                if channel == Channel::Email {
                    V::T(format!("<m{message_id}@bench.example>"))
                } else {
                    V::NullT
                },
                V::I(at),
            ]);
            let actor = if kind == MessageKind::Customer {
                Actor {
                    kind: seva_domain::event::ActorKind::Customer,
                    id: Some(customer),
                }
            } else {
                as_agent
            };
            event(
                &mut events,
                actor,
                Change::MessageAdded {
                    message_id: MessageId(message_id),
                    kind,
                },
                at,
            );
            loaded.messages += 1;
            last_from_customer = kind == MessageKind::Customer;
        }
        let settled = now - at > 3 * DAY;
        let status = match (last_from_customer, settled, rng.u32(0..100)) {
            // Threads the customer ended ("thanks!") days ago were resolved; a few wait still.
            (true, true, r) if r < 97 => Status::Resolved,
            (true, _, r) if r < 85 => Status::Open,
            (true, _, _) => Status::OnHold,
            (false, true, r) if r < 72 => Status::Resolved,
            (false, true, r) if r < 95 => Status::Closed,
            (false, _, r) if r < 60 => Status::Pending,
            (false, _, _) => Status::Resolved,
        };
        if status != Status::Open {
            event(
                &mut events,
                as_agent,
                Change::StatusChanged {
                    from: Status::Open,
                    to: status,
                },
                at,
            );
        }
        // A quarter of resolutions are rated (CSAT, and NPS one time in three) within a day.
        if matches!(status, Status::Resolved | Status::Closed) && rng.u32(0..4) == 0 {
            let answered = at + rng.i64(MINUTE..DAY);
            if answered < now {
                let csat = [1, 2, 3, 4, 4, 5, 5, 5, 5, 5][rng.usize(0..10)];
                let nps = (rng.u32(0..3) == 0).then(|| rng.i64(0..=10));
                surveys.push([
                    V::I(customer),
                    V::I(id),
                    V::I(brand),
                    V::S("email"),
                    V::S(if nps.is_some() { "csat,nps" } else { "csat" }),
                    V::I(csat),
                    nps.map_or(V::NullI, V::I),
                    V::I(at),
                    V::I(answered),
                ]);
            }
        }
        let priority = ["low", "normal", "normal", "normal", "high", "urgent"][rng.usize(0..6)];
        conversations.push([
            V::I(id),
            V::I(customer),
            V::I(brand),
            V::S(channel.as_str()),
            V::S(status.as_str()),
            V::S(priority),
            V::S(subject),
            assignee.map_or(V::NullI, V::I),
            V::I(team),
            V::I(created),
            V::I(at),
            V::I(at),
        ]);
        search.push([
            V::I(seva_store::search::subject_doc(
                seva_domain::ConversationId(id),
            )),
            V::T(normalize(subject)),
            V::I(id),
        ]);
        tags.push([V::I(id), V::S(TAGS[rng.usize(0..TAGS.len())])]);
        if rng.u32(0..10) == 0 {
            tags.push([V::I(id), V::S("vip")]);
        }
        if conversations.len() >= 10_000 {
            for rows in [
                &mut conversations,
                &mut tags,
                &mut messages,
                &mut events,
                &mut search,
                &mut surveys,
            ] {
                rows.flush(&mut tx).await?;
            }
            tx.commit().await?;
            tx = store.begin().await?;
        }
    }
    for rows in [
        &mut conversations,
        &mut tags,
        &mut messages,
        &mut events,
        &mut search,
        &mut surveys,
    ] {
        rows.flush(&mut tx).await?;
    }
    tx.commit().await?;
    loaded.conversations = scale.conversations;
    loaded.events = event_id as usize;
    loaded.orders = generate_orders(store, scale, &mut rng, now).await?;

    if store.backend() == Backend::Postgres {
        // Ids were given explicitly; move each sequence past them.
        let mut conn = store.conn().await?;
        for table in [
            "brands",
            "teams",
            "sla_policies",
            "users",
            "customers",
            "customer_identities",
            "conversations",
            "messages",
            "events",
            "orders",
        ] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))::BIGINT"
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
        }
        sqlx::query("ANALYZE").execute(&mut *conn).await?;
    } else {
        let mut conn = store.conn().await?;
        sqlx::query("ANALYZE").execute(&mut *conn).await?;
    }
    loaded.seconds = started.elapsed().as_secs_f64();
    Ok(loaded)
}

/// What the two brands sell: sku, title, unit price in minor units (rials, paise).
const PRODUCTS: [[(&str, &str, i64); 2]; 2] = [
    [
        ("KH-RUG-01", "فرش دستباف", 4_800_000_000),
        ("KH-TEA-03", "سرویس چای‌خوری", 92_000_000),
    ],
    [
        ("SJ-SAREE-01", "Paithani saree", 1_249_900),
        ("SJ-KURTA-02", "कॉटन कुर्ता", 189_900),
    ],
];

/// Half as many orders as conversations (PRODUCT.md's 500,000 at a million), over the past 400
/// days: in rials for Persian-speaking customers and rupees for the others, one or two lines,
/// a few cancelled or partly refunded.
async fn generate_orders(
    store: &Store,
    scale: Scale,
    rng: &mut Rng,
    now: i64,
) -> anyhow::Result<usize> {
    let mut orders = Rows::new(
        "orders",
        &[
            "id",
            "source",
            "external_id",
            "number",
            "customer_id",
            "status",
            "payment_status",
            "fulfilment_status",
            "currency",
            "total",
            "refunded",
            "placed_at",
            "fingerprint",
            "created_at",
            "updated_at",
        ],
    );
    let mut lines = Rows::new(
        "order_lines",
        &[
            "order_id",
            "position",
            "sku",
            "title",
            "quantity",
            "unit_price",
            "total",
        ],
    );
    let count = scale.conversations / 2;
    let placed_times = in_time_order(0x0_7de5, count, |r| now - r.i64(HOUR..400 * DAY));
    let mut tx = store.begin().await?;
    for id in 1..=count as i64 {
        let customer = rng.i64(1..=scale.customers as i64);
        let persian = customer as usize % 4 == 1;
        let (currency, products) = if persian {
            ("IRR", PRODUCTS[0])
        } else {
            ("INR", PRODUCTS[1])
        };
        let placed = placed_times[(id - 1) as usize];
        let mut total = 0;
        for position in 0..rng.i64(1..3) {
            let (sku, title, price) = products[rng.usize(0..2)];
            let quantity = rng.i64(1..3);
            total += price * quantity;
            lines.push([
                V::I(id),
                V::I(position),
                V::S(sku),
                V::S(title),
                V::I(quantity),
                V::I(price),
                V::I(price * quantity),
            ]);
        }
        let fate = rng.u32(0..30);
        let (status, payment, refunded) = match fate {
            0 => ("cancelled", "refunded", total),
            1..=2 => ("completed", "partially_refunded", total / 2),
            _ => ("completed", "paid", 0),
        };
        orders.push([
            V::I(id),
            V::S("api"),
            V::T(format!("bench-{id}")),
            V::T(format!("#{}", 100_000 + id)),
            V::I(customer),
            V::S(status),
            V::S(payment),
            V::S("fulfilled"),
            V::S(currency),
            V::I(total),
            V::I(refunded),
            V::I(placed),
            V::T(format!("{id:064x}")),
            V::I(placed),
            V::I(placed),
        ]);
        if orders.len() >= 10_000 {
            orders.flush(&mut tx).await?;
            lines.flush(&mut tx).await?;
            tx.commit().await?;
            tx = store.begin().await?;
        }
    }
    orders.flush(&mut tx).await?;
    lines.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(count)
}
