//! The demo shop: a retailer with two brands (a homeware store in Iran and a fashion label in
//! India), teams, agents, ~300 customers and ~1,000 conversations in English, Persian, Marathi
//! and Hindi, spread over the last 90 days with replies, resolutions and some reopenings.
//!
//! Everything goes through the same use cases as real traffic, so every message has its
//! events. Deterministic for a given seed.

use chrono::Duration;
use fastrand::Rng;
use seva_domain::{
    Actor, BrandId, Change, Channel, ConversationId, CustomerId, MessageKind, Priority, Role,
    Status, TeamId, Timestamp, User,
};
use seva_store::staff;

use seva_domain::commerce::{FulfilmentStatus, OrderLine, OrderSource, OrderStatus, PaymentStatus};

use crate::commerce::OrderInput;
use crate::conversations::{ConversationPatch, MessageInput, NewConversationInput};
use crate::customers::CustomerInput;
use crate::{App, AppError, Caller, Result};

#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub customers: usize,
    pub conversations: usize,
}

impl Default for DemoSize {
    fn default() -> Self {
        Self {
            customers: 300,
            conversations: 1_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoReport {
    pub customers: usize,
    pub conversations: usize,
    pub messages: usize,
    pub orders: usize,
}

/// A product: sku, title, unit price in minor units.
type DemoProduct = (&'static str, &'static str, i64);

/// What each demo brand sells, and its currency.
const PRODUCTS: [(&str, [DemoProduct; 3]); 2] = [
    (
        "IRR",
        [
            ("KH-RUG-01", "فرش دستباف ۱۲ متری", 4_800_000_000),
            ("KH-LAMP-02", "چراغ رومیزی مسی", 185_000_000),
            ("KH-TEA-03", "سرویس چای‌خوری", 92_000_000),
        ],
    ),
    (
        "INR",
        [
            ("SJ-SAREE-01", "Paithani saree", 1_249_900),
            ("SJ-KURTA-02", "कॉटन कुर्ता", 189_900),
            ("SJ-DUPATTA-03", "Silk dupatta", 74_900),
        ],
    ),
];

const BRANDS: [&str; 2] = ["Kahroba Home", "Saanjh Fashion"];
const TEAMS: [&str; 3] = ["Customer care", "Returns & refunds", "Pre-sales"];

/// (name, email, role, interface language)
const AGENTS: [(&str, &str, Role, &str); 6] = [
    ("Sara Ahmadi", "sara@kahroba.example", Role::Agent, "fa"),
    ("Reza Karimi", "reza@kahroba.example", Role::Agent, "fa"),
    ("Priya Deshpande", "priya@saanjh.example", Role::Agent, "mr"),
    ("Arjun Sharma", "arjun@saanjh.example", Role::Agent, "hi"),
    ("Emma Wilson", "emma@saanjh.example", Role::Agent, "en"),
    (
        "Neha Kulkarni",
        "neha@saanjh.example",
        Role::Supervisor,
        "mr",
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Fa,
    Mr,
    Hi,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fa => "fa",
            Lang::Mr => "mr",
            Lang::Hi => "hi",
        }
    }
}

/// Given names and family names with a Latin spelling for the email address.
/// (name in its script, Latin spelling for the email address)
type Names = &'static [(&'static str, &'static str)];

const NAMES: [(Lang, Names, Names); 4] = [
    (
        Lang::En,
        &[
            ("Olivia", "olivia"),
            ("James", "james"),
            ("Amelia", "amelia"),
            ("Noah", "noah"),
            ("Grace", "grace"),
            ("Leo", "leo"),
            ("Chloe", "chloe"),
            ("Oscar", "oscar"),
        ],
        &[
            ("Smith", "smith"),
            ("Brown", "brown"),
            ("Taylor", "taylor"),
            ("Evans", "evans"),
            ("Walker", "walker"),
            ("Hughes", "hughes"),
        ],
    ),
    (
        Lang::Fa,
        &[
            ("مریم", "maryam"),
            ("علی", "ali"),
            ("زهرا", "zahra"),
            ("محمد", "mohammad"),
            ("نگار", "negar"),
            ("امیر", "amir"),
            ("فاطمه", "fatemeh"),
            ("حسین", "hossein"),
        ],
        &[
            ("رضایی", "rezaei"),
            ("محمدی", "mohammadi"),
            ("حسینی", "hosseini"),
            ("کریمی", "karimi"),
            ("جعفری", "jafari"),
            ("نوروزی", "norouzi"),
        ],
    ),
    (
        Lang::Mr,
        &[
            ("स्नेहा", "sneha"),
            ("अमोल", "amol"),
            ("प्राजक्ता", "prajakta"),
            ("सचिन", "sachin"),
            ("मृणाल", "mrunal"),
            ("ओंकार", "omkar"),
        ],
        &[
            ("पाटील", "patil"),
            ("जोशी", "joshi"),
            ("कुलकर्णी", "kulkarni"),
            ("देशमुख", "deshmukh"),
            ("पवार", "pawar"),
        ],
    ),
    (
        Lang::Hi,
        &[
            ("अनीता", "anita"),
            ("राहुल", "rahul"),
            ("पूजा", "pooja"),
            ("विकास", "vikas"),
            ("कविता", "kavita"),
            ("रोहित", "rohit"),
        ],
        &[
            ("शर्मा", "sharma"),
            ("वर्मा", "verma"),
            ("गुप्ता", "gupta"),
            ("सिंह", "singh"),
            ("यादव", "yadav"),
        ],
    ),
];

/// One kind of request: subject, opening message, agent reply, customer follow-up, closing
/// reply; in each language; plus its tag, team and typical priority.
struct Scenario {
    tag: &'static str,
    team: usize,
    priority: Priority,
    lines: [[&'static str; 5]; 4],
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        tag: "order-status",
        team: 0,
        priority: Priority::Normal,
        lines: [
            [
                "Where is my order #{n}?",
                "Hi, I ordered on Monday and the tracking page hasn't changed for three days. Order #{n}.",
                "Thanks for waiting! Your parcel left our warehouse yesterday and should reach you within two days.",
                "Great, thank you. I'll watch the tracking.",
                "You're welcome. Happy to help any time.",
            ],
            [
                "سفارش {n} کجاست؟",
                "سلام، سفارشم رو دوشنبه ثبت کردم ولی سه روزه وضعیت رهگیری تغییر نکرده. شماره سفارش {n}.",
                "ممنون از صبرتون! بسته دیروز از انبار ارسال شد و تا دو روز دیگه به دستتون می‌رسه.",
                "عالیه، ممنونم. پیگیری می‌کنم.",
                "خواهش می‌کنم، هر وقت سؤالی داشتید در خدمتیم.",
            ],
            [
                "माझी ऑर्डर #{n} कुठे आहे?",
                "नमस्कार, मी सोमवारी ऑर्डर केली होती पण तीन दिवसांपासून ट्रॅकिंग बदललेले नाही. ऑर्डर #{n}.",
                "थांबल्याबद्दल धन्यवाद! तुमचे पार्सल काल गोदामातून निघाले आहे आणि दोन दिवसांत पोहोचेल.",
                "छान, धन्यवाद. मी ट्रॅकिंग पाहत राहीन.",
                "आपले स्वागत आहे. कधीही मदतीसाठी आम्ही आहोत.",
            ],
            [
                "मेरा ऑर्डर #{n} कहाँ है?",
                "नमस्ते, मैंने सोमवार को ऑर्डर किया था पर तीन दिन से ट्रैकिंग नहीं बदली। ऑर्डर #{n}.",
                "इंतज़ार के लिए धन्यवाद! आपका पार्सल कल गोदाम से निकल चुका है और दो दिन में पहुँच जाएगा।",
                "बढ़िया, धन्यवाद। मैं ट्रैकिंग देखता रहूँगा।",
                "आपका स्वागत है। कभी भी मदद चाहिए तो लिखिए।",
            ],
        ],
    },
    Scenario {
        tag: "return",
        team: 1,
        priority: Priority::Normal,
        lines: [
            [
                "Return request for order #{n}",
                "The cushion covers I received are a different colour from the photos. Can I return them?",
                "I'm sorry about that. I've created a free return label for you; you'll receive it by email shortly.",
                "Got the label, the parcel is on its way back.",
                "Thank you! We'll refund you as soon as it arrives.",
            ],
            [
                "درخواست مرجوعی سفارش {n}",
                "رنگ روکش کوسن‌هایی که رسید با عکس‌ها فرق داره. می‌تونم مرجوعش کنم؟",
                "بابت این موضوع متأسفیم. برچسب ارسال رایگان برای مرجوعی صادر شد و به ایمیلتون می‌رسه.",
                "برچسب رو گرفتم، بسته رو فرستادم.",
                "ممنون! به محض رسیدن بسته، مبلغ رو برمی‌گردونیم.",
            ],
            [
                "ऑर्डर #{n} परत करायची आहे",
                "मला मिळालेल्या साडीचा रंग फोटोपेक्षा वेगळा आहे. मी ती परत करू शकते का?",
                "याबद्दल क्षमस्व. तुमच्यासाठी मोफत रिटर्न लेबल तयार केले आहे; ते लवकरच ईमेलवर येईल.",
                "लेबल मिळाले, पार्सल परत पाठवले आहे.",
                "धन्यवाद! पार्सल पोहोचताच परतावा करू.",
            ],
            [
                "ऑर्डर #{n} की वापसी",
                "मुझे मिली कुर्ती का रंग फ़ोटो से अलग है। क्या मैं इसे वापस कर सकती हूँ?",
                "इसके लिए खेद है। आपके लिए मुफ़्त रिटर्न लेबल बना दिया है; यह जल्द ही ईमेल पर आएगा।",
                "लेबल मिल गया, पार्सल वापस भेज दिया है।",
                "धन्यवाद! पार्सल पहुँचते ही रिफ़ंड कर देंगे।",
            ],
        ],
    },
    Scenario {
        tag: "refund",
        team: 1,
        priority: Priority::High,
        lines: [
            [
                "Refund not received",
                "I returned my order #{n} two weeks ago and still haven't been refunded.",
                "I've checked: the refund was issued today and should show on your card within 3–5 working days.",
                "It arrived, thanks.",
                "Glad to hear it. Thanks for your patience.",
            ],
            [
                "مبلغ برگشتی واریز نشده",
                "دو هفته پیش سفارش {n} رو مرجوع کردم ولی هنوز پولم برنگشته.",
                "بررسی کردم: مبلغ امروز واریز شد و ظرف ۳ تا ۵ روز کاری به حسابتون می‌رسه.",
                "واریز شد، ممنون.",
                "خوشحالیم که حل شد. ممنون از صبوری‌تون.",
            ],
            [
                "परतावा मिळाला नाही",
                "दोन आठवड्यांपूर्वी ऑर्डर #{n} परत केली, पण अजून पैसे परत आले नाहीत.",
                "मी तपासले: परतावा आज केला आहे आणि ३–५ कामकाजाच्या दिवसांत खात्यात दिसेल.",
                "पैसे आले, धन्यवाद.",
                "ऐकून आनंद झाला. संयमाबद्दल धन्यवाद.",
            ],
            [
                "रिफ़ंड नहीं मिला",
                "मैंने दो हफ़्ते पहले ऑर्डर #{n} लौटाया था, पर अब तक पैसे वापस नहीं आए।",
                "मैंने जाँच की: रिफ़ंड आज जारी हुआ है और 3–5 कार्यदिवसों में खाते में दिखेगा।",
                "पैसे आ गए, धन्यवाद।",
                "सुनकर अच्छा लगा। धैर्य के लिए धन्यवाद।",
            ],
        ],
    },
    Scenario {
        tag: "damaged",
        team: 0,
        priority: Priority::Urgent,
        lines: [
            [
                "Item arrived broken",
                "The ceramic vase in order #{n} arrived in pieces. Photos attached.",
                "I'm so sorry! A replacement is on its way today at no cost, no need to return the broken one.",
                "Thank you, that was quick.",
                "Our pleasure. Enjoy the new vase!",
            ],
            [
                "کالا شکسته رسید",
                "گلدان سرامیکی سفارش {n} شکسته به دستم رسید. عکس‌ها پیوست شده.",
                "واقعاً متأسفیم! یک گلدان جایگزین همین امروز بدون هزینه ارسال می‌شه و نیازی به برگشت قبلی نیست.",
                "ممنونم، خیلی سریع بود.",
                "خواهش می‌کنم. از گلدان جدید لذت ببرید!",
            ],
            [
                "वस्तू तुटलेली आली",
                "ऑर्डर #{n} मधील दिवा तुटलेला आला. फोटो जोडले आहेत.",
                "खूप क्षमस्व! बदली वस्तू आजच मोफत पाठवत आहोत, तुटलेली परत करायची गरज नाही.",
                "धन्यवाद, खूप लवकर केलेत.",
                "आमचा आनंद. नवीन दिव्याचा आनंद घ्या!",
            ],
            [
                "सामान टूटा हुआ आया",
                "ऑर्डर #{n} का फूलदान टूटा हुआ पहुँचा। फ़ोटो संलग्न हैं।",
                "बहुत खेद है! बदले में नया फूलदान आज ही मुफ़्त भेजा जा रहा है, पुराना लौटाने की ज़रूरत नहीं।",
                "धन्यवाद, बहुत जल्दी किया।",
                "हमारी ख़ुशी। नए फूलदान का आनंद लें!",
            ],
        ],
    },
    Scenario {
        tag: "product-question",
        team: 2,
        priority: Priority::Low,
        lines: [
            [
                "Question about sizes",
                "Does the linen dress run small? I'm usually a medium.",
                "It's true to size; a medium should fit. The size guide on the product page has exact measurements.",
                "Perfect, ordering now.",
                "Wonderful, enjoy it!",
            ],
            [
                "سؤال درباره اندازه",
                "اندازه رومیزی کتان برای میز شش‌نفره مناسبه؟",
                "بله، اندازه ۱۶۰ در ۲۲۰ برای میز شش‌نفره عالیه. ابعاد دقیق در صفحه محصول هست.",
                "عالی، همین الان سفارش می‌دم.",
                "خیلی هم عالی، امیدواریم دوستش داشته باشید!",
            ],
            [
                "मापाबद्दल प्रश्न",
                "हा कुर्ता लहान मापाचा आहे का? मी सहसा मीडियम घालते.",
                "माप अचूक आहे; मीडियम बसेल. उत्पादन पानावर मापांचा तक्ता आहे.",
                "छान, आत्ताच ऑर्डर करते.",
                "उत्तम, आनंद घ्या!",
            ],
            [
                "साइज़ के बारे में सवाल",
                "क्या यह लिनन ड्रेस छोटी बनती है? मैं आमतौर पर मीडियम पहनती हूँ।",
                "साइज़ सही है; मीडियम फ़िट होगा। प्रोडक्ट पेज पर साइज़ गाइड में सटीक माप हैं।",
                "बढ़िया, अभी ऑर्डर करती हूँ।",
                "शानदार, आनंद लें!",
            ],
        ],
    },
    Scenario {
        tag: "payment",
        team: 0,
        priority: Priority::High,
        lines: [
            [
                "Payment failed but money taken",
                "My card was charged for order #{n} but the site says the payment failed.",
                "The charge is a temporary hold and will be released by your bank within 48 hours. Your order is confirmed now.",
                "Thanks for sorting it out.",
                "Anytime!",
            ],
            [
                "پرداخت ناموفق ولی پول کسر شده",
                "برای سفارش {n} از کارتم پول کم شده ولی سایت می‌گه پرداخت ناموفق بوده.",
                "این مبلغ موقتاً بلوکه شده و بانک ظرف ۷۲ ساعت برمی‌گردونه. سفارشتون الان تأیید شد.",
                "ممنون که پیگیری کردید.",
                "خواهش می‌کنم!",
            ],
            [
                "पेमेंट अयशस्वी पण पैसे कापले",
                "ऑर्डर #{n} साठी माझ्या UPI मधून पैसे कापले गेले पण साइट पेमेंट अयशस्वी दाखवते.",
                "ही रक्कम तात्पुरती रोखली आहे आणि बँक ४८ तासांत परत करेल. तुमची ऑर्डर आता निश्चित झाली आहे.",
                "सोडवल्याबद्दल धन्यवाद.",
                "कधीही!",
            ],
            [
                "पेमेंट फ़ेल पर पैसे कटे",
                "ऑर्डर #{n} के लिए मेरे UPI से पैसे कट गए पर साइट पेमेंट फ़ेल दिखा रही है।",
                "यह राशि अस्थायी रूप से रोकी गई है और बैंक 48 घंटों में लौटा देगा। आपका ऑर्डर अब कन्फ़र्म है।",
                "सुलझाने के लिए धन्यवाद।",
                "कभी भी!",
            ],
        ],
    },
];

struct DemoCustomer {
    email: String,
    phone: Option<String>,
    name: String,
    lang: Lang,
    brand: usize,
}

fn make_customers(rng: &mut Rng, count: usize) -> Vec<DemoCustomer> {
    (0..count)
        .map(|i| {
            // Persian customers shop at the Iranian brand; Marathi and Hindi at the Indian one;
            // English speakers at both.
            let lang = [Lang::Fa, Lang::Fa, Lang::Mr, Lang::Hi, Lang::En][i % 5];
            let (_, given, family) = NAMES
                .iter()
                .find(|(l, _, _)| *l == lang)
                .expect("every language has names");
            let (g, g_latin) = given[rng.usize(0..given.len())];
            let (f, f_latin) = family[rng.usize(0..family.len())];
            let brand = match lang {
                Lang::Fa => 0,
                Lang::Mr | Lang::Hi => 1,
                Lang::En => i % 2,
            };
            let phone = rng.bool().then(|| match brand {
                0 => format!("+98912{:07}", rng.u32(0..10_000_000)),
                _ => format!("+9198{:08}", rng.u32(0..100_000_000)),
            });
            DemoCustomer {
                email: format!("{g_latin}.{f_latin}{i}@example.com"),
                phone,
                name: format!("{g} {f}"),
                lang,
                brand,
            }
        })
        .collect()
}

impl App {
    /// Loads the demo shop. Refuses when it is already there.
    #[allow(clippy::too_many_lines)] // one story told top to bottom reads better than fragments
    pub async fn load_demo(&self, seed: u64, size: DemoSize) -> Result<DemoReport> {
        let now = self.now();
        let mut rng = Rng::with_seed(seed);
        let mut conn = self.store.conn().await?;
        if staff::brands(&mut conn)
            .await?
            .iter()
            .any(|b| b.name == BRANDS[0])
        {
            return Err(AppError::AlreadyExists("the demo shop"));
        }
        let mut brands: Vec<BrandId> = Vec::new();
        for name in BRANDS {
            brands.push(staff::insert_brand(&mut conn, name, now).await?);
        }
        let mut teams: Vec<TeamId> = Vec::new();
        for name in TEAMS {
            teams.push(staff::insert_team(&mut conn, name, now).await?);
        }
        // One SLA policy, so the dashboard's attainment and the conversations' targets show:
        // a first reply within 4 hours, next replies within 8, resolved within 2 days.
        seva_store::sla::insert(
            &mut conn,
            &seva_store::sla::NewPolicy {
                name: "Standard",
                position: 1,
                conditions: &seva_domain::sla::Conditions::default(),
                targets: &seva_domain::sla::Targets {
                    first_reply: Some(4 * 3600),
                    next_reply: Some(8 * 3600),
                    resolution: Some(48 * 3600),
                },
                business_hours: true,
            },
            now,
        )
        .await?;
        drop(conn);
        let mut agents: Vec<User> = Vec::new();
        for (i, (name, email, role, language)) in AGENTS.into_iter().enumerate() {
            // Demo staff have no password: they cannot sign in until an admin sets one.
            let user = self
                .create_user(email, name, role, None, Some(language))
                .await?;
            let mut conn = self.store.conn().await?;
            staff::add_team_member(&mut conn, teams[i % teams.len()], user.id).await?;
            staff::add_team_member(&mut conn, teams[(i + 1) % teams.len()], user.id).await?;
            agents.push(user);
        }
        // The loader writes history with its original times, which needs the import right;
        // each step still acts as the agent who would have done it.
        let as_importer = |user: &User| Caller {
            user: User {
                role: Role::Admin,
                ..user.clone()
            },
        };

        let customers = make_customers(&mut rng, size.customers);
        let mut messages = 0;
        let mut resolved = Vec::new();
        for n in 0..size.conversations {
            // Every customer writes at least once; then some write again and again.
            let who = if n < customers.len() {
                n
            } else {
                rng.usize(0..customers.len())
            };
            let customer = &customers[who];
            let scenario = &SCENARIOS[rng.usize(0..SCENARIOS.len())];
            let lines = scenario.lines[customer.lang as usize];
            let order = (10_000 + rng.u32(0..90_000)).to_string();
            let line = |i: usize| lines[i].replace("{n}", &order);
            let brand_agents: Vec<&User> = agents
                .iter()
                .filter(|a| match customer.brand {
                    0 => a.language.as_deref() == Some("fa") || a.language.as_deref() == Some("en"),
                    _ => a.language.as_deref() != Some("fa"),
                })
                .collect();
            let agent = brand_agents[rng.usize(0..brand_agents.len())];
            let started = now - Duration::minutes(rng.i64(30..90 * 24 * 60));
            let channel = Channel::at_retail_percentile(rng.u32(0..100));
            let customer_input = CustomerInput {
                email: (channel != Channel::Sms && channel != Channel::Whatsapp
                    || customer.phone.is_none())
                .then(|| customer.email.clone()),
                phone: customer.phone.clone(),
                name: Some(customer.name.clone()),
                language: Some(customer.lang.code().to_owned()),
                external_id: None,
                country: None,
            };
            let (conversation, _) = self
                .create_conversation(
                    &as_importer(agent),
                    &NewConversationInput {
                        customer: customer_input,
                        channel,
                        subject: Some(line(0)),
                        brand_id: Some(brands[customer.brand]),
                        team_id: Some(teams[scenario.team]),
                        assignee_id: None,
                        priority: Some(scenario.priority),
                        status: None,
                        tags: vec![scenario.tag.to_owned()],
                        message: msg(MessageKind::Customer, line(1), started),
                    },
                    None,
                )
                .await?;
            messages += 1;
            let id = conversation.id;
            // Most recent conversations are still open; older ones mostly resolved.
            let age_days = (now - started).num_days();
            let fate = rng.u32(0..100);
            let unanswered = age_days < 2 && fate < 40;
            if unanswered {
                continue;
            }
            let mut at = started
                + Duration::minutes(rng.i64(3..if channel == Channel::Chat { 15 } else { 600 }));
            // Nothing happens after "now": a conversation whose next step would, waits there.
            if at + Duration::minutes(20) >= now {
                continue;
            }
            self.patch(
                &as_importer(agent),
                id,
                ConversationPatch {
                    assignee_id: Some(Some(agent.id)),
                    at: Some(at),
                    ..Default::default()
                },
            )
            .await?;
            if rng.u32(0..4) == 0 {
                let note = msg(
                    MessageKind::Note,
                    "Checked the order in the shop system; see the tracking link.".into(),
                    at,
                );
                self.add_message(&as_importer(agent), id, &note, None)
                    .await?;
                messages += 1;
            }
            at += Duration::minutes(rng.i64(1..20));
            self.write(&as_importer(agent), id, MessageKind::Reply, line(2), at)
                .await?;
            messages += 1;
            if age_days < 4 && fate < 70 {
                let status = if fate < 55 {
                    Status::Pending
                } else {
                    Status::OnHold
                };
                self.set_status(&as_importer(agent), id, status, at).await?;
                continue;
            }
            // Some are settled by that first reply: resolved, one-touch.
            if (70..82).contains(&fate) {
                at += Duration::minutes(rng.i64(5..120));
                if at < now {
                    self.set_status(&as_importer(agent), id, Status::Resolved, at)
                        .await?;
                    resolved.push((conversation.customer_id, id, at));
                }
                continue;
            }
            at += Duration::hours(rng.i64(1..30));
            if at >= now {
                continue;
            }
            self.write(&as_importer(agent), id, MessageKind::Customer, line(3), at)
                .await?;
            at += Duration::minutes(rng.i64(5..240));
            self.write(&as_importer(agent), id, MessageKind::Reply, line(4), at)
                .await?;
            messages += 2;
            self.set_status(&as_importer(agent), id, Status::Resolved, at)
                .await?;
            resolved.push((conversation.customer_id, id, at));
            // About one in twelve comes back: the customer writes again and it is resolved again.
            if fate >= 92 && at + Duration::days(3) < now {
                at += Duration::hours(rng.i64(6..48));
                self.write(&as_importer(agent), id, MessageKind::Customer, line(1), at)
                    .await?;
                at += Duration::minutes(rng.i64(10..300));
                self.write(&as_importer(agent), id, MessageKind::Reply, line(4), at)
                    .await?;
                messages += 2;
                self.set_status(&as_importer(agent), id, Status::Resolved, at)
                    .await?;
            }
            if age_days > 30 && fate < 30 {
                self.set_status(
                    &as_importer(agent),
                    id,
                    Status::Closed,
                    at + Duration::days(4),
                )
                .await?;
            }
        }
        let orders = self.load_demo_orders(&mut rng, &customers).await?;
        self.load_demo_surveys(&mut rng, &resolved).await?;
        self.directory_changed();
        Ok(DemoReport {
            customers: customers.len(),
            conversations: size.conversations,
            messages,
            orders,
        })
    }

    /// CSAT (and NPS for some) asked on the demo's resolutions, answered by about half the
    /// customers within a few hours, mostly content; the default settings then ask CSAT on
    /// every new resolution, so the dashboard and the timelines have feedback to show.
    async fn load_demo_surveys(
        &self,
        rng: &mut Rng,
        resolved: &[(CustomerId, ConversationId, Timestamp)],
    ) -> Result<()> {
        use seva_domain::survey::{SurveyChannel, SurveyKind, SurveySettings};
        use seva_store::surveys as store;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        store::save_settings(
            &mut tx,
            store::DEFAULT_BRAND,
            &SurveySettings {
                on_resolution: vec![SurveyKind::Csat],
                ..SurveySettings::default()
            },
            now,
        )
        .await?;
        let mut last = std::collections::HashMap::<CustomerId, Timestamp>::new();
        for &(customer, conversation, at) in resolved {
            // One survey per customer a week, as the quiet period would have it.
            if last
                .get(&customer)
                .is_some_and(|t| at - *t < Duration::days(7))
            {
                continue;
            }
            last.insert(customer, at);
            let asks: &[SurveyKind] = if rng.u32(0..3) == 0 {
                &[SurveyKind::Csat, SurveyKind::Nps]
            } else {
                &[SurveyKind::Csat]
            };
            let survey = store::insert(
                &mut tx,
                &store::NewSurvey {
                    customer,
                    conversation: Some(conversation),
                    brand: None,
                    channel: SurveyChannel::Email,
                    asks,
                    at,
                },
            )
            .await?;
            let sent = Change::SurveySent {
                survey_id: survey,
                asks: asks.to_vec(),
                channel: SurveyChannel::Email,
            };
            seva_store::events::record(
                &mut tx,
                Some(conversation),
                Some(customer),
                Actor::SYSTEM,
                &sent,
                at,
            )
            .await?;
            let answered = at + Duration::minutes(rng.i64(10..600));
            if rng.bool() || answered >= now {
                continue;
            }
            for &kind in asks {
                let score = match kind {
                    SurveyKind::Csat => [5, 5, 5, 4, 4, 4, 3, 2, 1, 5][rng.usize(0..10)],
                    SurveyKind::Nps => [10, 10, 9, 9, 8, 7, 6, 3, 9, 10][rng.usize(0..10)],
                    SurveyKind::Ces => 6,
                };
                store::answer(&mut tx, survey, kind, score, answered).await?;
                let change = Change::SurveyAnswered {
                    survey_id: survey,
                    kind,
                    score,
                };
                seva_store::events::record(
                    &mut tx,
                    Some(conversation),
                    Some(customer),
                    Actor::customer(customer),
                    &change,
                    answered,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Zero to four orders a customer over the last year, in their brand's currency; one in
    /// fifteen cancelled, one in ten partly refunded.
    async fn load_demo_orders(&self, rng: &mut Rng, customers: &[DemoCustomer]) -> Result<usize> {
        let now = self.now();
        let mut count = 0;
        for (i, customer) in customers.iter().enumerate() {
            let (currency, products) = PRODUCTS[customer.brand];
            for n in 0..rng.usize(0..5) {
                let (sku, title, price) = products[rng.usize(0..products.len())];
                let quantity = rng.i64(1..3);
                let total = price * quantity;
                let fate = rng.u32(0..30);
                let input = OrderInput {
                    source: OrderSource::Api,
                    external_id: format!("demo-{i}-{n}"),
                    number: Some(format!("#{}", 1000 + count)),
                    customer: CustomerInput {
                        email: Some(customer.email.clone()),
                        ..CustomerInput::default()
                    },
                    status: if fate < 2 {
                        OrderStatus::Cancelled
                    } else {
                        OrderStatus::Completed
                    },
                    payment_status: if fate >= 27 {
                        PaymentStatus::PartiallyRefunded
                    } else {
                        PaymentStatus::Paid
                    },
                    fulfilment_status: FulfilmentStatus::Fulfilled,
                    currency: currency.to_owned(),
                    total,
                    refunded: if fate >= 27 { price / 2 } else { 0 },
                    placed_at: now - Duration::hours(rng.i64(24..365 * 24)),
                    shipping_address: None,
                    lines: vec![OrderLine {
                        sku: Some(sku.to_owned()),
                        title: title.to_owned(),
                        quantity,
                        unit_price: price,
                        total,
                    }],
                    source_updated_at: None,
                };
                self.import_order(&input).await?;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn patch(
        &self,
        caller: &Caller,
        id: ConversationId,
        patch: ConversationPatch,
    ) -> Result<()> {
        self.update_conversation(caller, id, &patch)
            .await
            .map(|_| ())
    }

    async fn set_status(
        &self,
        caller: &Caller,
        id: ConversationId,
        status: Status,
        at: Timestamp,
    ) -> Result<()> {
        let patch = ConversationPatch {
            status: Some(status),
            at: Some(at),
            ..Default::default()
        };
        self.patch(caller, id, patch).await
    }

    async fn write(
        &self,
        caller: &Caller,
        id: ConversationId,
        kind: MessageKind,
        text: String,
        at: Timestamp,
    ) -> Result<()> {
        self.add_message(caller, id, &msg(kind, text, at), None)
            .await
            .map(|_| ())
    }
}

fn msg(kind: MessageKind, text: String, at: Timestamp) -> MessageInput {
    MessageInput {
        kind,
        text,
        html: None,
        external_id: None,
        created_at: Some(at),
    }
}
