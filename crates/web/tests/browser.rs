//! End to end in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver) against a real Seva server on loopback with the demo shop, on SQLite and on
//! PostgreSQL. Two agents in two browser sessions work on the same conversation. Screenshots
//! of the main pages in English, Persian and Marathi are written to `target/screenshots/`.
//!
//! `cargo xtask ci` installs chromium, chromium-driver and a Devanagari font when missing.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use seva_app::conversations::{MessageInput, NewConversationInput};
use seva_app::customers::CustomerInput;
use seva_app::demo::DemoSize;
use seva_app::{App, Caller, SystemClock};
use seva_domain::{Channel, MessageKind, Role};
use seva_store::Backend;
use seva_store::testing::TestDb;

on_both_backends!(
    two_agents_work_a_conversation_live_in_chromium_in_three_languages,
    a_visitor_chats_through_the_widget_on_a_shop_page_in_persian,
    a_customer_sends_the_contact_form_and_follows_it_in_the_portal,
    an_agent_sees_orders_beside_the_conversation_and_on_the_customer_page,
    a_customer_rates_from_the_email_and_a_supervisor_reads_the_dashboard,
);

const PASSWORD: &str = "correct horse battery";

/// A chromedriver process on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver runs (apt-get install chromium chromium-driver; `cargo xtask ci` does it)",
        );
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

/// A fresh headless Chromium window whose browser asks for `lang`.
async fn browser(driver: &Driver, lang: &str) -> Client {
    let profile = tempfile::tempdir().unwrap().keep();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1400,1000",
                format!("--lang={lang}"), format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": lang },
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("chromedriver starts a headless Chromium session")
}

/// Polls a JavaScript condition until it holds, or fails with `what` after twenty seconds
/// (generous: CI runs the other tests on the same two cores meanwhile).
async fn wait_until(client: &Client, what: &str, script: &str) {
    for _ in 0..200 {
        if client.execute(script, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let text = js(client, "return document.body.innerText.slice(0, 2000)").await;
    panic!("waited 20 s for {what} at {url}; the page says: {text}");
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

/// Presses one key on whatever has the focus, as a person would.
async fn press(client: &Client, key: char) {
    let actions = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    client.perform_actions(actions).await.unwrap();
}

async fn sign_in(client: &Client, base: &str, email: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    client
        .find(Locator::Css("input[name=email]"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        client,
        "the inbox after signing in",
        "return location.pathname === '/inbox' && document.querySelectorAll('tr[data-row]').length > 0",
    )
    .await;
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        )
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(
        png.len() > 10_000,
        "{name}: a real picture, not a blank page"
    );
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn search(client: &Client, words: &str) {
    let box_ = client.find(Locator::Id("search-box")).await.unwrap();
    box_.clear().await.unwrap();
    box_.send_keys(&format!("{words}\n")).await.unwrap();
    // This search's page, not the previous one's: the address carries these words.
    let script = format!(
        "return decodeURIComponent(location.search.replace(/\\+/g, ' ')).includes({}) \
         && document.querySelectorAll('.snippet mark').length > 0",
        serde_json::to_string(words).unwrap()
    );
    wait_until(client, &format!("search results for {words}"), &script).await;
}

/// A server on loopback with the demo shop; the temporary attachment folder lives as long as
/// the returned handle.
async fn start_server(backend: Backend) -> (TestDb, String, tempfile::TempDir) {
    let db = TestDb::new(backend).await;
    let blobs = tempfile::tempdir().unwrap();
    let app = App::new(db.store.clone(), Arc::new(SystemClock)).with_blobs(Arc::new(
        seva_app::attachments::LocalBlobs::new(blobs.path()),
    ));
    app.load_demo(
        7,
        DemoSize {
            customers: 40,
            conversations: 120,
        },
    )
    .await
    .unwrap();
    let ada = app
        .create_user(
            "ada@shop.example",
            "Ada Admin",
            Role::Admin,
            Some(PASSWORD),
            Some("en"),
        )
        .await
        .unwrap();
    // New mail this morning, in three languages.
    for (email, subject, text) in [
        (
            "noor@example.com",
            "بستهٔ من هنوز نرسیده",
            "سلام، بستهٔ من هنوز نرسیده است.",
        ),
        ("asha@example.com", "माझे पार्सल", "माझे पार्सल अजून आले नाही."),
        (
            "tom@example.com",
            "Parcel not here yet",
            "Hello, my parcel has not arrived yet.",
        ),
    ] {
        let input = NewConversationInput {
            customer: CustomerInput {
                email: Some(email.to_owned()),
                ..CustomerInput::default()
            },
            channel: Channel::Email,
            subject: Some(subject.to_owned()),
            brand_id: None,
            team_id: None,
            assignee_id: None,
            priority: None,
            status: None,
            tags: Vec::new(),
            message: MessageInput {
                kind: MessageKind::Customer,
                text: text.to_owned(),
                html: None,
                external_id: None,
                created_at: None,
            },
        };
        app.create_conversation(&Caller { user: ada.clone() }, &input, None)
            .await
            .unwrap();
    }
    let sara = app.user_by_email("sara@kahroba.example").await.unwrap();
    app.set_password(sara.id, PASSWORD).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = seva_web::AppState::new(
        app,
        seva_web::WebConfig {
            public_url: base.clone(),
        },
    );
    tokio::spawn(async move {
        axum::serve(listener, seva_web::router(state))
            .await
            .unwrap();
    });
    (db, base, blobs)
}

async fn two_agents_work_a_conversation_live_in_chromium_in_three_languages(backend: Backend) {
    let (db, base, _blobs) = start_server(backend).await;
    let driver = start_driver().await;
    let label = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };

    // Ada signs in (English) and walks the inbox with the keyboard.
    let ada = browser(&driver, "en-GB").await;
    sign_in(&ada, &base, "ada@shop.example").await;
    assert_eq!(js(&ada, "return document.documentElement.dir").await, "ltr");
    screenshot(&ada, &format!("{label}-inbox-en")).await;
    press(&ada, '?').await;
    wait_until(
        &ada,
        "the shortcuts overlay",
        "return document.getElementById('shortcuts').open",
    )
    .await;
    assert!(
        js(
            &ada,
            "return document.getElementById('shortcuts').innerText"
        )
        .await
        .as_str()
        .unwrap()
        .contains("Assign to me")
    );
    press(&ada, '\u{e00c}').await; // Escape
    wait_until(
        &ada,
        "the overlay to close",
        "return !document.getElementById('shortcuts').open",
    )
    .await;
    press(&ada, 'j').await;
    wait_until(
        &ada,
        "j to select the first row",
        "return document.querySelector('tr[data-row].selected') !== null",
    )
    .await;
    press(&ada, 'o').await;
    wait_until(
        &ada,
        "o to open the conversation",
        "return location.pathname.startsWith('/conversations/')",
    )
    .await;
    let path = js(&ada, "return location.pathname")
        .await
        .as_str()
        .unwrap()
        .to_owned();

    // Sara (her preference is Persian) opens the same conversation: right to left, Persian
    // digits, and Ada sees her there.
    let sara = browser(&driver, "fa-IR").await;
    sign_in(&sara, &base, "sara@kahroba.example").await;
    assert_eq!(
        js(&sara, "return document.documentElement.dir").await,
        "rtl"
    );
    assert_eq!(
        js(&sara, "return getComputedStyle(document.body).direction").await,
        "rtl"
    );
    screenshot(&sara, &format!("{label}-inbox-fa")).await;
    sara.goto(&format!("{base}{path}")).await.unwrap();
    wait_until(
        &sara,
        "the thread",
        "return document.querySelectorAll('#thread li').length > 0",
    )
    .await;
    let when = js(
        &sara,
        "return document.querySelector('#thread time').textContent",
    )
    .await;
    assert!(
        when.as_str()
            .unwrap()
            .chars()
            .any(|c| ('۰'..='۹').contains(&c)),
        "Persian digits: {when}"
    );
    // The customer's words keep their own direction inside the right-to-left page.
    assert_eq!(
        js(
            &sara,
            "return document.querySelector('#thread .body').getAttribute('dir')"
        )
        .await,
        "auto"
    );
    screenshot(&sara, &format!("{label}-conversation-fa")).await;
    wait_until(
        &ada,
        "Ada to see Sara viewing",
        "return document.getElementById('presence').textContent.includes('Sara Ahmadi')",
    )
    .await;

    // Ada replies; the reply shows in her thread, and arrives in Sara's without a reload.
    js(&sara, "window.notReloaded = true; return true").await;
    press(&ada, 'r').await;
    let reply = "Your parcel is on its way — بسته در راه است";
    ada.find(Locator::Id("reply-text"))
        .await
        .unwrap()
        .send_keys(reply)
        .await
        .unwrap();
    wait_until(
        &sara,
        "Sara to see Ada typing",
        "return document.getElementById('presence').textContent.includes('Ada Admin')",
    )
    .await;
    let receipt = std::env::temp_dir().join(format!("رسید-{}.txt", std::process::id()));
    std::fs::write(&receipt, "Order 1405 receipt").unwrap();
    ada.find(Locator::Css("#reply input[type=file]"))
        .await
        .unwrap()
        .send_keys(&receipt.display().to_string())
        .await
        .unwrap();
    ada.find(Locator::Css("#reply button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shows_reply = format!(
        "return [...document.querySelectorAll('#thread .item-reply .body')].some(b => b.textContent.includes({}))",
        json!(reply)
    );
    wait_until(&ada, "the reply in Ada's thread", &shows_reply).await;
    assert_eq!(
        js(&ada, "return document.getElementById('reply-text').value").await,
        "",
        "the box is cleared"
    );
    wait_until(
        &sara,
        "the reply to arrive live in Sara's thread",
        &shows_reply,
    )
    .await;
    let attached = "return [...document.querySelectorAll('#thread .files a')].some(a => a.textContent.startsWith('رسید-'))";
    wait_until(&ada, "the attachment under Ada's reply", attached).await;
    wait_until(
        &sara,
        "the attachment under the reply in Sara's thread",
        attached,
    )
    .await;
    let _ = std::fs::remove_file(&receipt);
    assert_eq!(
        js(&sara, "return window.notReloaded === true").await,
        true,
        "no reload"
    );

    // Assign and resolve with the shortcuts; Sara sees both.
    press(&ada, '\u{e00c}').await; // leave the reply box
    js(&ada, "document.activeElement.blur(); return true").await;
    press(&ada, 'a').await;
    wait_until(&ada, "the assignment", "return document.getElementById('thread').textContent.includes('assigned the conversation to')").await;
    press(&ada, 'e').await;
    wait_until(
        &ada,
        "resolved",
        "return document.querySelector('[data-status]').dataset.status === 'resolved'",
    )
    .await;
    wait_until(
        &sara,
        "Sara to see it resolved",
        "return document.querySelector('[data-status]').dataset.status === 'resolved'",
    )
    .await;
    screenshot(&ada, &format!("{label}-conversation-en")).await;

    // Search finds Persian and Marathi words, highlighted.
    search(&ada, "رهگیری").await;
    assert!(
        js(
            &ada,
            "return document.querySelector('.snippet mark').textContent"
        )
        .await
        .as_str()
        .unwrap()
        .contains("رهگیری")
    );
    search(&ada, "गोदामातून").await;
    assert!(
        js(
            &ada,
            "return document.querySelector('.snippet mark').textContent"
        )
        .await
        .as_str()
        .unwrap()
        .contains("गोदामातून")
    );
    screenshot(&ada, &format!("{label}-search-mr")).await;

    // Ada switches her interface to Marathi with Devanagari digits.
    ada.goto(&format!("{base}/settings")).await.unwrap();
    js(&ada, "document.querySelector('select[name=language]').value = 'mr'; document.querySelector('select[name=digits]').value = 'native'; document.querySelector('select[name=time_zone]').value = 'Asia/Kolkata'; return true").await;
    ada.find(Locator::Css(".settings button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &ada,
        "the settings to be saved",
        "return location.search.includes('notice=saved')",
    )
    .await;
    ada.goto(&format!("{base}/inbox")).await.unwrap();
    assert_eq!(js(&ada, "return document.documentElement.lang").await, "mr");
    let when = js(
        &ada,
        "return document.querySelector('tr[data-row] time').textContent",
    )
    .await;
    assert!(
        when.as_str()
            .unwrap()
            .chars()
            .any(|c| ('०'..='९').contains(&c)),
        "Devanagari digits: {when}"
    );
    screenshot(&ada, &format!("{label}-inbox-mr")).await;
    ada.goto(&format!("{base}{path}")).await.unwrap();
    screenshot(&ada, &format!("{label}-conversation-mr")).await;

    ada.close().await.unwrap();
    sara.close().await.unwrap();
    drop(driver);
    db.finish().await;
}

/// A TCP proxy in front of Seva whose connections can be cut (every open one dropped, new
/// ones refused) and restored: a shopper's train going through a tunnel.
struct Cuttable {
    base: String,
    cut: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(target: &str) -> Self {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (is_cut, conns) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_cut.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let target = target.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().unwrap().push(handle);
            }
        });
        Self { base, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for handle in self.open.lock().unwrap().drain(..) {
            handle.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A shop's page on its own origin, embedding the widget from Seva's.
async fn start_shop(seva: &str, key: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let page = format!(
        "<!doctype html><html lang=\"fa\" dir=\"rtl\"><head><meta charset=\"utf-8\">\
         <title>فروشگاه</title><style>button {{ color: red !important; }}</style></head>\
         <body><h1>فروشگاه کهربا</h1>\
         <script src=\"{seva}/static/widget.js\" data-key=\"{key}\" async></script></body></html>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    origin
}

/// Runs JavaScript against the widget's shadow root (`w`).
async fn widget_js(client: &Client, body: &str) -> Value {
    js(
        client,
        &format!(
            "const w = document.querySelector('#seva-chat') && document.querySelector('#seva-chat').shadowRoot; {body}"
        ),
    )
    .await
}

async fn a_visitor_chats_through_the_widget_on_a_shop_page_in_persian(backend: Backend) {
    let (db, base, _blobs) = start_server(backend).await;
    let store = db.store.clone();
    let app = App::new(store, Arc::new(SystemClock));
    let admin = Caller {
        user: app.user_by_email("ada@shop.example").await.unwrap(),
    };
    // The shop's origin is known only once it listens: allow it afterwards.
    let mut settings = seva_app::chat::WidgetInput {
        name: "Kahroba".into(),
        brand_id: None,
        allowed_origins: Vec::new(),
        color: Some("#0b8043".into()),
        greeting: Some("سلام! چطور کمک کنیم؟".into()),
        prechat: seva_domain::chat::Prechat::Name,
        away_after: None,
        active: true,
    };
    let widget = app.create_widget(&admin, &settings).await.unwrap();
    // The shop's page reaches Seva through a connection the test can cut.
    let network = Cuttable::start(&base).await;
    let shop = start_shop(&network.base, &widget.public_key).await;
    settings.allowed_origins = vec![shop.clone()];
    app.update_widget(&admin, widget.id, &settings)
        .await
        .unwrap();

    let driver = start_driver().await;
    let visitor = browser(&driver, "fa").await;
    visitor.goto(&shop).await.unwrap();
    wait_until(
        &visitor,
        "the launcher",
        "return !!document.querySelector('#seva-chat')",
    )
    .await;
    // The shop's own styles do not reach into the widget.
    let color = widget_js(
        &visitor,
        "return getComputedStyle(w.querySelector('.launcher')).color",
    )
    .await;
    assert_eq!(color, "rgb(255, 255, 255)");
    assert_eq!(
        widget_js(
            &visitor,
            "return w.querySelector('.seva').getAttribute('dir')"
        )
        .await,
        "rtl"
    );
    assert_eq!(
        widget_js(&visitor, "return w.querySelector('.launcher').textContent").await,
        "گفتگو با ما"
    );
    widget_js(
        &visitor,
        "w.querySelector('.launcher').click(); return true",
    )
    .await;
    wait_until(
        &visitor,
        "the greeting",
        "const w = document.querySelector('#seva-chat').shadowRoot; \
         return !!w.querySelector('.greeting') && !w.querySelector('.prechat').hidden",
    )
    .await;
    widget_js(
        &visitor,
        "w.querySelector('.prechat [name=name]').value = 'مریم'; \
         w.querySelector('.compose textarea').value = 'سلام، سفارش ۱۰۴۲ کجاست؟'; \
         w.querySelector('.compose').requestSubmit(); return true",
    )
    .await;
    wait_until(
        &visitor,
        "the message acknowledged",
        "const w = document.querySelector('#seva-chat').shadowRoot; \
         return !!w.querySelector('.visitor[data-id]')",
    )
    .await;

    // The agent finds the chat and answers; the visitor sees it without reloading.
    let chat = app
        .list_conversations(
            &seva_store::conversations::ConversationFilter {
                channel: Some(Channel::Chat),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    // The demo shop has chats too; the newest is the visitor's.
    let customer = app.customer(chat[0].customer_id).await.unwrap();
    assert_eq!(customer.name.as_deref(), Some("مریم"));
    // Sara, signed in in her own browser, opens the chat and answers in the workspace.
    let agent = browser(&driver, "en").await;
    sign_in(&agent, &base, "sara@kahroba.example").await;
    agent
        .goto(&format!("{base}/conversations/{}", chat[0].id))
        .await
        .unwrap();
    wait_until(
        &agent,
        "the visitor's message in the workspace",
        "return document.getElementById('thread').textContent.includes('سلام، سفارش ۱۰۴۲ کجاست؟')",
    )
    .await;
    agent
        .find(Locator::Id("reply-text"))
        .await
        .unwrap()
        .send_keys("امروز ارسال می‌شود.")
        .await
        .unwrap();
    agent
        .find(Locator::Css("#reply button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &visitor,
        "the agent's answer",
        "const w = document.querySelector('#seva-chat').shadowRoot; \
         return [...w.querySelectorAll('.agent')].some(li => li.textContent === 'امروز ارسال می‌شود.')",
    )
    .await;
    screenshot(&visitor, &format!("{}-widget-fa", backend.name())).await;

    // A reload resumes the same chat, showing each message once.
    visitor.goto(&shop).await.unwrap();
    wait_until(
        &visitor,
        "the chat again after a reload",
        "const h = document.querySelector('#seva-chat'); \
         return !!h && h.shadowRoot.querySelectorAll('.messages li[data-id]').length === 2",
    )
    .await;
    let messages = app.messages(chat[0].id).await.unwrap();
    assert_eq!(messages.len(), 2, "nothing doubled");

    // The connection is cut. The visitor writes meanwhile, and the agent answers meanwhile.
    network.cut();
    wait_until(
        &visitor,
        "the widget to notice the cut",
        "const w = document.querySelector('#seva-chat').shadowRoot;          return w.querySelector('.state').textContent !== ''",
    )
    .await;
    widget_js(
        &visitor,
        "w.querySelector('.compose textarea').value = 'در تونل هستم';          w.querySelector('.compose').requestSubmit(); return true",
    )
    .await;
    let sara = Caller {
        user: app.user_by_email("sara@kahroba.example").await.unwrap(),
    };
    let answer = MessageInput {
        kind: MessageKind::Reply,
        text: "پیام در زمان قطعی".into(),
        html: None,
        external_id: None,
        created_at: None,
    };
    app.add_message(&sara, chat[0].id, &answer, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        widget_js(
            &visitor,
            "return w.querySelectorAll('.messages li.pending').length"
        )
        .await,
        json!(1),
        "the visitor's message waits in the browser"
    );
    network.restore();
    wait_until(
        &visitor,
        "both messages after the connection is back",
        "const w = document.querySelector('#seva-chat').shadowRoot;          const items = [...w.querySelectorAll('.messages li[data-id]')];          return items.length === 4 && !w.querySelector('.pending')            && items.some(li => li.textContent === 'پیام در زمان قطعی')            && items.some(li => li.textContent === 'در تونل هستم')",
    )
    .await;
    let ids = widget_js(
        &visitor,
        "return [...w.querySelectorAll('.messages li[data-id]')].map(li => li.dataset.id)",
    )
    .await;
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no message shown twice: {ids:?}");
    let messages = app.messages(chat[0].id).await.unwrap();
    assert_eq!(messages.len(), 4, "nothing lost, nothing stored twice");

    // Resolved: the widget asks how it went, with buttons; a click records the rating.
    app.save_survey_settings(
        &admin,
        None,
        seva_domain::survey::SurveySettings {
            on_resolution: vec![seva_domain::survey::SurveyKind::Csat],
            quiet_days: 7,
            relationship_nps_days: None,
        },
    )
    .await
    .unwrap();
    app.update_conversation(
        &admin,
        chat[0].id,
        &seva_app::conversations::ConversationPatch {
            status: Some(seva_domain::Status::Resolved),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // (This test's App is not the server's: the visitor's page reconnects to see it.)
    visitor.goto(&shop).await.unwrap();
    wait_until(
        &visitor,
        "the survey's buttons",
        "const h = document.querySelector('#seva-chat'); \
         return !!h && h.shadowRoot.querySelectorAll('.survey .scores button').length === 5",
    )
    .await;
    let question = widget_js(&visitor, "return w.querySelector('.survey p').textContent").await;
    assert_eq!(question, json!("چقدر از کمکی که دریافت کردید راضی هستید؟"));
    widget_js(
        &visitor,
        "w.querySelector('.launcher').click(); w.querySelectorAll('.survey .scores button')[3].click(); return true",
    )
    .await;
    wait_until(
        &visitor,
        "the thanks",
        "return document.querySelector('#seva-chat').shadowRoot.querySelector('.survey-state').textContent.length > 0",
    )
    .await;
    screenshot(&visitor, &format!("{}-widget-survey-fa", backend.name())).await;
    let surveys = app.conversation_surveys(chat[0].id).await.unwrap();
    assert_eq!(surveys[0].csat, Some(4), "the fourth button");
    assert_eq!(
        widget_js(
            &visitor,
            "return w.querySelector('.survey-state').textContent"
        )
        .await,
        json!("از پاسخ شما سپاسگزاریم!")
    );

    // Outside the brand's business hours the widget says so at once, with the next opening,
    // and offers email. Tehran's week is open all day, but today and the days around are off.
    let today = app.now().date_naive();
    let hours = app
        .create_business_hours(
            &admin,
            &seva_app::hours::HoursInput {
                name: "Kahroba".into(),
                time_zone: "Asia/Tehran".into(),
                week: seva_domain::hours::WEEKDAYS
                    .iter()
                    .map(|(d, _)| (*d, "00:00-24:00".to_owned()))
                    .collect(),
                holidays: [-1, 0, 1]
                    .map(|d| (today + chrono::Duration::days(d)).to_string())
                    .to_vec(),
            },
        )
        .await
        .unwrap();
    let mut conn = app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", app.now())
        .await
        .unwrap();
    drop(conn);
    app.set_brand_hours(&admin, brand, Some(hours.id))
        .await
        .unwrap();
    settings.brand_id = Some(brand);
    app.update_widget(&admin, widget.id, &settings)
        .await
        .unwrap();
    visitor.goto(&shop).await.unwrap();
    wait_until(
        &visitor,
        "the closed notice",
        "const h = document.querySelector('#seva-chat'); \
         return !!h && !h.shadowRoot.querySelector('.away').hidden",
    )
    .await;
    let notice = widget_js(&visitor, "return w.querySelector('.away-text').textContent").await;
    let notice = notice.as_str().unwrap();
    assert!(
        notice.starts_with("الان تعطیل هستیم و "),
        "closed, with when it opens: {notice}"
    );
    // Offered once the chat's messages are back (the replay follows the welcome).
    wait_until(
        &visitor,
        "the email field offered",
        "return !document.querySelector('#seva-chat').shadowRoot.querySelector('.away .row').hidden",
    )
    .await;
    widget_js(
        &visitor,
        "w.querySelector('.launcher').click(); return true",
    )
    .await;
    screenshot(&visitor, &format!("{}-widget-closed-fa", backend.name())).await;
    visitor.close().await.unwrap();
    agent.close().await.unwrap();
}

/// The text of a mail the sink received, decoded (Marathi text travels as base64).
fn mail_text(raw: &[u8]) -> String {
    seva_channels::email::parse::parse(raw).unwrap().text
}

/// The sign-in link in a mail's text.
fn portal_link(text: &str) -> String {
    let start = text.find("/portal/link/").unwrap();
    let token: String = text[start + "/portal/link/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!("/portal/link/{token}")
}

async fn a_customer_sends_the_contact_form_and_follows_it_in_the_portal(backend: Backend) {
    let (db, base, _blobs) = start_server(backend).await;
    let app = App::new(db.store.clone(), Arc::new(SystemClock));
    let admin = Caller {
        user: app.user_by_email("ada@shop.example").await.unwrap(),
    };
    let sink = seva_channels::testing::SmtpSink::start().unwrap();
    let local = |port| seva_domain::mail::Server {
        host: "127.0.0.1".into(),
        port,
        security: seva_domain::mail::Security::None,
        user: None,
        password: None,
    };
    let mailbox = seva_app::mail::MailboxInput {
        name: "Kahroba Support".into(),
        address: "support@kahroba.example".into(),
        brand_id: None,
        imap: seva_domain::mail::Server {
            user: Some("support".into()),
            password: Some("secret".into()),
            ..local(1)
        },
        imap_folder: None,
        smtp: local(sink.port),
        active: true,
    };
    app.create_mailbox(&admin, &mailbox).await.unwrap();

    // A shopper fills in the hosted form, in Marathi.
    let driver = start_driver().await;
    let shopper = browser(&driver, "mr").await;
    shopper.goto(&format!("{base}/contact")).await.unwrap();
    assert_eq!(
        js(&shopper, "return document.documentElement.lang").await,
        "mr"
    );
    js(
        &shopper,
        "document.getElementById('name').value = 'अनिता देशमुख';          document.getElementById('email').value = 'anita@example.in';          document.getElementById('subject').value = 'परतावा कधी मिळेल?';          document.getElementById('order_number').value = 'KH-2210';          document.getElementById('text').value = 'मी ऑर्डर परत केली, परतावा अजून आला नाही.';          return true",
    )
    .await;
    // People take more than a few seconds to fill in a form; robots do not.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    js(
        &shopper,
        "document.querySelector('form').submit(); return true",
    )
    .await;
    wait_until(
        &shopper,
        "the thank-you",
        "return !!document.getElementById('contact-sent')",
    )
    .await;
    let forms = app
        .list_conversations(
            &seva_store::conversations::ConversationFilter {
                channel: Some(Channel::Form),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    let request = forms
        .iter()
        .find(|c| c.subject.as_deref() == Some("परतावा कधी मिळेल?"))
        .expect("the form made a conversation");
    let page_text = js(&shopper, "return document.body.innerText").await;
    assert!(
        page_text
            .as_str()
            .unwrap()
            .contains(&format!("[#{}]", request.id.0))
    );

    // The acknowledgement goes out by email.
    seva_channels::email::send_due(&app).await.unwrap();
    let mails = sink.received().unwrap();
    assert_eq!(mails.len(), 1);
    let ack = String::from_utf8_lossy(&mails[0]).to_string();
    assert!(ack.contains("anita@example.in"), "{ack}");
    let ack_text = mail_text(&mails[0]);
    assert!(
        ack_text.contains(&format!("[#{}]", request.id.0)),
        "{ack_text}"
    );
    assert!(ack_text.contains("/portal"), "{ack_text}");
    assert!(ack.contains("Auto-Submitted: auto-generated"), "{ack}");

    // An agent answers; later the shopper asks the portal for a sign-in link.
    app.add_message(
        &admin,
        request.id,
        &MessageInput {
            kind: MessageKind::Reply,
            text: "परतावा उद्या जमा होईल.".into(),
            html: None,
            external_id: None,
            created_at: None,
        },
        None,
    )
    .await
    .unwrap();
    shopper.goto(&format!("{base}/portal")).await.unwrap();
    shopper
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("anita@example.in")
        .await
        .unwrap();
    js(
        &shopper,
        "document.querySelector('form').submit(); return true",
    )
    .await;
    wait_until(
        &shopper,
        "the link is on its way",
        "return !!document.getElementById('portal-link-sent')",
    )
    .await;
    seva_channels::email::send_due(&app).await.unwrap();
    let mails = sink.received().unwrap();
    let link = mails
        .iter()
        .map(|m| mail_text(m))
        .find(|text| text.contains("/portal/link/"))
        .map(|text| portal_link(&text))
        .expect("the sign-in mail");
    shopper.goto(&format!("{base}{link}")).await.unwrap();
    shopper
        .find(Locator::Id("portal-continue"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &shopper,
        "the shopper's requests",
        "return document.body.innerText.includes('परतावा कधी मिळेल?')",
    )
    .await;
    shopper
        .goto(&format!("{base}/portal/conversations/{}", request.id.0))
        .await
        .unwrap();
    wait_until(
        &shopper,
        "the agent's answer in the portal",
        "return document.body.innerText.includes('परतावा उद्या जमा होईल.')",
    )
    .await;
    screenshot(&shopper, &format!("{}-portal-mr", backend.name())).await;
    // Another customer's request (the demo shop's) is not found.
    let others = app
        .list_conversations(
            &seva_store::conversations::ConversationFilter::default(),
            None,
            50,
        )
        .await
        .unwrap();
    let other = others
        .iter()
        .find(|c| c.customer_id != request.customer_id)
        .unwrap();
    let status = js(
        &shopper,
        &format!(
            "return fetch('/portal/conversations/{}').then(r => r.status)",
            other.id.0
        ),
    )
    .await;
    assert_eq!(status, json!(404));
    let own = js(
        &shopper,
        &format!(
            "return fetch('/portal/conversations/{}').then(r => r.status)",
            request.id.0
        ),
    )
    .await;
    assert_eq!(own, json!(200));
    shopper.close().await.unwrap();
    drop(driver);
    db.finish().await;
}

async fn an_agent_sees_orders_beside_the_conversation_and_on_the_customer_page(backend: Backend) {
    let (db, base, _blobs) = start_server(backend).await;
    let label = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    // A demo customer of the Iranian brand who has ordered and written to the shop.
    let mut conn = db.store.conn().await.unwrap();
    let (conversation, customer, orders): (i64, i64, i64) = sqlx::query_as(
        "SELECT c.id, c.customer_id,
                (SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.customer_id) AS n
         FROM conversations c
         WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id
                                              AND o.currency = 'IRR')
         ORDER BY c.id LIMIT 1",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    assert!(orders > 0);

    let driver = start_driver().await;
    let sara = browser(&driver, "fa").await;
    sign_in(&sara, &base, "sara@kahroba.example").await;
    sara.goto(&format!("{base}/conversations/{conversation}"))
        .await
        .unwrap();
    wait_until(
        &sara,
        "the customer's orders in the sidebar",
        "return document.querySelectorAll('.customer ul.orders > li').length > 0",
    )
    .await;
    let sidebar = js(
        &sara,
        "return document.querySelector('.customer').innerText",
    )
    .await;
    let sidebar = sidebar.as_str().unwrap();
    assert!(
        sidebar.contains("IRR"),
        "amounts with their currency: {sidebar}"
    );
    assert!(
        sidebar.chars().any(|c| ('۰'..='۹').contains(&c)),
        "in Persian digits: {sidebar}"
    );
    assert_eq!(
        js(
            &sara,
            "return document.querySelectorAll('.customer ul.orders > li').length"
        )
        .await,
        json!(orders.min(5)),
        "the five most recent"
    );
    // "This conversation is about it": the first order is linked, on the page and the thread.
    sara.find(Locator::Css(".customer ul.orders form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &sara,
        "the order marked as linked",
        "return document.querySelector('.customer ul.orders .badge') !== null",
    )
    .await;
    screenshot(&sara, &format!("{label}-sidebar-orders-fa")).await;

    // The customer's page, from their name.
    sara.find(Locator::Css(".customer h2 a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &sara,
        "the customer page",
        &format!(
            "return location.pathname === '/customers/{customer}' && document.querySelector('table.spend') !== null"
        ),
    )
    .await;
    assert_eq!(
        js(&sara, "return document.documentElement.dir").await,
        "rtl"
    );
    assert_eq!(
        js(
            &sara,
            "return document.querySelectorAll('.customer-main ul.orders > li').length"
        )
        .await,
        json!(orders),
        "every order, with its lines"
    );
    let spend = js(
        &sara,
        "return document.querySelector('table.spend').innerText",
    )
    .await;
    assert!(spend.as_str().unwrap().contains("IRR"), "{spend}");
    let timeline = js(
        &sara,
        "return [...document.querySelectorAll('ol.timeline li')].map(li => li.className)",
    )
    .await;
    let kinds: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(kinds.contains(&"tl-conversation"), "{kinds:?}");
    assert!(kinds.contains(&"tl-order"), "{kinds:?}");
    screenshot(&sara, &format!("{label}-customer-fa")).await;
    sara.close().await.unwrap();
    db.finish().await;
}

async fn a_customer_rates_from_the_email_and_a_supervisor_reads_the_dashboard(backend: Backend) {
    let (db, base, _blobs) = start_server(backend).await;
    let label = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let app = App::new(db.store.clone(), Arc::new(SystemClock));
    let admin = Caller {
        user: app.user_by_email("ada@shop.example").await.unwrap(),
    };
    let sink = seva_channels::testing::SmtpSink::start().unwrap();
    let local = |port| seva_domain::mail::Server {
        host: "127.0.0.1".into(),
        port,
        security: seva_domain::mail::Security::None,
        user: None,
        password: None,
    };
    let mailbox = seva_app::mail::MailboxInput {
        name: "Kahroba Support".into(),
        address: "support@kahroba.example".into(),
        brand_id: None,
        imap: seva_domain::mail::Server {
            user: Some("support".into()),
            password: Some("secret".into()),
            ..local(1)
        },
        imap_folder: None,
        smtp: local(sink.port),
        active: true,
    };
    app.create_mailbox(&admin, &mailbox).await.unwrap();
    app.save_survey_settings(
        &admin,
        None,
        seva_domain::survey::SurveySettings {
            on_resolution: vec![seva_domain::survey::SurveyKind::Csat],
            quiet_days: 7,
            relationship_nps_days: None,
        },
    )
    .await
    .unwrap();
    let tom = app
        .search("parcel arrived", 5)
        .await
        .unwrap()
        .into_iter()
        .map(|(c, _)| c)
        .find(|c| c.subject.as_deref() == Some("Parcel not here yet"))
        .expect("Tom's conversation");

    // Ada resolves Tom's conversation with the keyboard; the survey goes out by email.
    let driver = start_driver().await;
    let ada = browser(&driver, "en").await;
    sign_in(&ada, &base, "ada@shop.example").await;
    ada.goto(&format!("{base}/conversations/{}", tom.id.0))
        .await
        .unwrap();
    wait_until(
        &ada,
        "the thread",
        "return !!document.getElementById('thread')",
    )
    .await;
    js(&ada, "document.activeElement.blur(); return true").await;
    press(&ada, 'e').await;
    wait_until(
        &ada,
        "resolved",
        "return document.querySelector('[data-status]').dataset.status === 'resolved'",
    )
    .await;
    seva_channels::email::send_due(&app).await.unwrap();
    let mails = sink.received().unwrap();
    assert_eq!(mails.len(), 1, "one survey");
    let text = mail_text(&mails[0]);
    assert!(
        text.contains("How satisfied are you with the help you received?"),
        "{text}"
    );
    let five = text
        .lines()
        .find(|l| l.contains("/csat/5?s="))
        .unwrap_or_else(|| panic!("a link for 5 in {text}"));
    let link = five.split_whitespace().last().unwrap().to_owned();
    assert!(link.starts_with(&base), "{link}");

    // Tom clicks "5": the click records it; he adds a comment on the page it opens.
    let tom_browser = browser(&driver, "en").await;
    tom_browser.goto(&link).await.unwrap();
    wait_until(
        &tom_browser,
        "the thanks",
        "return !!document.getElementById('survey-thanks')",
    )
    .await;
    let surveys = app.conversation_surveys(tom.id).await.unwrap();
    assert_eq!(
        surveys[0].csat,
        Some(5),
        "the click alone records the rating"
    );
    tom_browser
        .find(Locator::Css("#comment"))
        .await
        .unwrap()
        .send_keys("Quick and kind, thank you")
        .await
        .unwrap();
    tom_browser
        .find(Locator::Css("#survey-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &tom_browser,
        "the thanks after the comment",
        "return !!document.getElementById('survey-thanks') && document.getElementById('comment').value.includes('kind')",
    )
    .await;
    screenshot(&tom_browser, &format!("{label}-survey-en")).await;
    let surveys = app.conversation_surveys(tom.id).await.unwrap();
    assert_eq!(
        surveys[0].comment.as_deref(),
        Some("Quick and kind, thank you")
    );

    // The rating is on the thread Ada is looking at.
    ada.refresh().await.unwrap();
    wait_until(
        &ada,
        "the answer on the thread",
        "return document.getElementById('thread').textContent.replace(/[\\u2068\\u2069]/g, '').includes('answered CSAT: 5 of 5')",
    )
    .await;

    let feedback = js(&ada, "return document.getElementById('feedback').innerText").await;
    assert!(
        feedback
            .as_str()
            .unwrap()
            .contains("CSAT 5/5 — “Quick and kind, thank you”"),
        "{feedback}"
    );

    // The dashboard: cards, charts, and the conversations behind a figure.
    ada.goto(&format!("{base}/reports")).await.unwrap();
    wait_until(
        &ada,
        "three charts",
        "return document.querySelectorAll('svg.chart').length === 3",
    )
    .await;
    let csat = js(
        &ada,
        "return document.querySelector('#kpi-csat .kpi-value').textContent.trim()",
    )
    .await;
    assert!(
        csat.as_str().unwrap().ends_with('%') && csat != json!("—"),
        "the demo's answers and Tom's: {csat}"
    );
    let bars = js(
        &ada,
        "return document.querySelectorAll('svg.chart rect.bar').length",
    )
    .await;
    assert_eq!(bars, json!(90), "30 days, three charts");
    screenshot(&ada, &format!("{label}-dashboard-en")).await;
    // Tom's answer is among the survey answers behind the CSAT card.
    ada.find(Locator::Css("#kpi-csat a.kpi-drill"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let tom_row = format!(
        "return [...document.querySelectorAll('#drill-table tbody tr')].some(r => r.querySelector('a').getAttribute('href') === '/conversations/{}' && r.textContent.includes('csat=5'))",
        tom.id.0
    );
    wait_until(&ada, "Tom's answer behind the CSAT", &tom_row).await;
    ada.back().await.unwrap();
    wait_until(
        &ada,
        "the dashboard again",
        "return document.querySelectorAll('svg.chart').length === 3",
    )
    .await;
    ada.find(Locator::Css("#kpi-first-response a.kpi-drill"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &ada,
        "the conversations behind the first response time",
        "return document.querySelectorAll('#drill-table tbody tr').length > 0",
    )
    .await;
    let first = js(
        &ada,
        "return document.querySelector('#drill-table tbody a').getAttribute('href')",
    )
    .await;
    assert!(
        first.as_str().unwrap().starts_with("/conversations/"),
        "{first}"
    );
    ada.close().await.unwrap();
    tom_browser.close().await.unwrap();
    db.finish().await;
}
