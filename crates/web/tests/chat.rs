//! The chat widget's WebSocket against a real server on loopback, on SQLite and PostgreSQL: a
//! visitor chats with an agent both ways, reconnects without losing or doubling a message, and
//! is refused on a page the widget does not allow, or when sending too much.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use seva_app::attachments::LocalBlobs;
use seva_app::chat::WidgetInput;
use seva_app::conversations::MessageInput;
use seva_app::hours::HoursInput;
use seva_app::{App, Caller, SystemClock};
use seva_domain::chat::{Prechat, Widget};
use seva_domain::{Channel, MessageKind, Role};
use seva_store::Backend;
use seva_store::testing::TestDb;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    app: App,
    addr: String,
    widget: Widget,
    agent: Caller,
    db: TestDb,
    _blobs: tempfile::TempDir,
}

async fn server(backend: Backend) -> Server {
    let db = TestDb::new(backend).await;
    let blobs = tempfile::tempdir().unwrap();
    let app = App::new(db.store.clone(), Arc::new(SystemClock))
        .with_blobs(Arc::new(LocalBlobs::new(blobs.path())));
    let admin = Caller {
        user: app
            .create_user("admin@shop.example", "Admin", Role::Admin, None, None)
            .await
            .unwrap(),
    };
    let agent = Caller {
        user: app
            .create_user("sara@shop.example", "Sara", Role::Agent, None, None)
            .await
            .unwrap(),
    };
    let widget = app
        .create_widget(
            &admin,
            &WidgetInput {
                name: "Shop".into(),
                brand_id: None,
                allowed_origins: vec!["https://shop.example".into()],
                color: Some("#0B8043".into()),
                greeting: Some("سلام! چطور می‌توانیم کمک کنیم؟".into()),
                prechat: Prechat::NameEmail,
                away_after: None,
                active: true,
            },
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = seva_web::AppState::new(
        app.clone(),
        seva_web::WebConfig {
            public_url: format!("http://{addr}"),
        },
    );
    tokio::spawn(async move {
        axum::serve(listener, seva_web::router(state))
            .await
            .unwrap();
    });
    Server {
        app,
        addr,
        widget,
        agent,
        db,
        _blobs: blobs,
    }
}

async fn open(s: &Server, origin: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/widget/{}/ws", s.addr, s.widget.public_key)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Frame::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame (pings skipped), within five seconds.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .unwrap()
            .unwrap();
        if let Frame::Text(text) = frame {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

async fn a_visitor_and_an_agent_chat_live_and_reconnecting_loses_and_doubles_nothing(
    backend: Backend,
) {
    let s = server(backend).await;
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(
        &mut socket,
        json!({"type": "hello", "token": null, "after": 0}),
    )
    .await;
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["color"], "#0b8043");
    assert_eq!(welcome["greeting"], "سلام! چطور می‌توانیم کمک کنیم؟");
    assert_eq!(welcome["conversation"], Value::Null);
    let token = welcome["token"].as_str().unwrap().to_owned();

    send(
        &mut socket,
        json!({"type": "send", "client_id": "m1", "text": "سلام، سفارش ۱۰۴۲ کجاست؟",
               "name": "مریم", "email": "maryam@example.org"}),
    )
    .await;
    let mine = next(&mut socket).await;
    assert_eq!(mine["type"], "message");
    assert_eq!(mine["from"], "visitor");
    assert_eq!(mine["client_id"], "m1");
    assert_eq!(mine["text"], "سلام، سفارش ۱۰۴۲ کجاست؟");
    let first_id = mine["id"].as_i64().unwrap();

    // The agent sees a chat conversation and answers; the visitor gets it live.
    let list = s
        .app
        .list_conversations(
            &seva_store::conversations::ConversationFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].channel, Channel::Chat);
    let conversation = list[0].id;
    let customer = s.app.customer(list[0].customer_id).await.unwrap();
    assert_eq!(customer.name.as_deref(), Some("مریم"));
    let reply = |text: &str| MessageInput {
        kind: MessageKind::Reply,
        text: text.into(),
        html: None,
        external_id: None,
        created_at: None,
    };
    s.app
        .add_message(&s.agent, conversation, &reply("امروز ارسال می‌شود."), None)
        .await
        .unwrap();
    let answer = next(&mut socket).await;
    assert_eq!(answer["from"], "agent");
    assert_eq!(answer["author"], "Sara");
    assert_eq!(answer["text"], "امروز ارسال می‌شود.");
    let answer_id = answer["id"].as_i64().unwrap();
    // Internal notes never reach the visitor.
    let note = MessageInput {
        kind: MessageKind::Note,
        ..reply("customer seems worried")
    };
    s.app
        .add_message(&s.agent, conversation, &note, None)
        .await
        .unwrap();

    // Typing both ways: the agent's shows in the widget, the visitor's in the workspace.
    s.app.heartbeat(&s.agent, conversation, Some(true));
    let typing = next(&mut socket).await;
    assert_eq!(
        (typing["type"].as_str(), typing["active"].as_bool()),
        (Some("typing"), Some(true))
    );
    s.app.heartbeat(&s.agent, conversation, Some(false));
    assert_eq!(next(&mut socket).await["active"], false);
    assert!(!s.app.visitor_is_typing(conversation));
    send(&mut socket, json!({"type": "typing"})).await;
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    assert!(s.app.visitor_is_typing(conversation));

    // The connection drops. Meanwhile the agent writes again, and the visitor's browser had
    // sent a message whose answer it never saw.
    drop(socket);
    s.app
        .add_message(&s.agent, conversation, &reply("Anything else?"), None)
        .await
        .unwrap();
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(
        &mut socket,
        json!({"type": "hello", "token": token, "after": answer_id}),
    )
    .await;
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["token"], token.as_str(), "the same chat resumes");
    assert_eq!(welcome["conversation"], conversation.0);
    let missed = next(&mut socket).await;
    assert_eq!(missed["text"], "Anything else?", "what came while away");
    let last_id = missed["id"].as_i64().unwrap();
    // Re-sending m1 (its answer was lost) stores nothing new and answers with the same message.
    send(
        &mut socket,
        json!({"type": "send", "client_id": "m1", "text": "سلام، سفارش ۱۰۴۲ کجاست؟"}),
    )
    .await;
    let again = next(&mut socket).await;
    assert_eq!(again["id"].as_i64(), Some(first_id));
    send(
        &mut socket,
        json!({"type": "send", "client_id": "m2", "text": "No, thanks!"}),
    )
    .await;
    let thanks = next(&mut socket).await;
    assert!(thanks["id"].as_i64().unwrap() > last_id);
    let messages = s.app.messages(conversation).await.unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "سلام، سفارش ۱۰۴۲ کجاست؟",
            "امروز ارسال می‌شود.",
            "customer seems worried",
            "Anything else?",
            "No, thanks!"
        ]
    );

    // A reconnect that says it has everything gets nothing again.
    drop(socket);
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(
        &mut socket,
        json!({"type": "hello", "token": token, "after": thanks["id"]}),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut socket).await["type"],
        "pong",
        "no replayed message first"
    );
}

async fn other_sites_bad_frames_and_floods_are_refused(backend: Backend) {
    let s = server(backend).await;
    // A page the widget does not allow cannot open it.
    let refused = open(&s, "https://evil.example").await.unwrap_err();
    assert!(refused.to_string().contains("404"), "{refused}");
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    // Hello first.
    send(
        &mut socket,
        json!({"type": "send", "client_id": "x", "text": "hi"}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "hello_required");

    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(&mut socket, json!({"type": "hello"})).await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
    send(&mut socket, json!({"type": "nonsense"})).await;
    assert_eq!(next(&mut socket).await["code"], "invalid_frame");
    let long = "x".repeat(5_001);
    send(
        &mut socket,
        json!({"type": "send", "client_id": "l", "text": long}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "text_too_long");
    send(
        &mut socket,
        json!({"type": "send", "client_id": "e", "text": "   "}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "field_required");
    send(
        &mut socket,
        json!({"type": "send", "client_id": "b", "text": "hi", "email": "not an email"}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "invalid_email");

    // Twenty messages a minute; the rest are refused, and nothing else breaks.
    let mut refused = 0;
    for i in 0..25 {
        send(
            &mut socket,
            json!({"type": "send", "client_id": format!("f{i}"), "text": format!("flood {i}")}),
        )
        .await;
        let frame = next(&mut socket).await;
        if frame["code"] == "rate_limited" {
            refused += 1;
        } else {
            assert_eq!(frame["type"], "message", "{frame}");
        }
    }
    // The refused sends above count towards the minute too.
    assert!(refused >= 5, "{refused} refused");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");

    // A frame over 64 KB closes the connection; the server goes on.
    let huge = "y".repeat(70_000);
    let _ = socket.send(Frame::Text(huge.into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                None | Some(Err(_) | Ok(Frame::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap();
    assert!(closed);
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(&mut socket, json!({"type": "hello"})).await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
}

fn sign(secret: &str, id: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn a_signed_shopper_joins_their_history_and_an_unsigned_claim_never_does(backend: Backend) {
    let s = server(backend).await;
    // Ali already wrote by email: a known customer with the shop's id and his address.
    let input = seva_app::conversations::NewConversationInput {
        customer: seva_app::customers::CustomerInput {
            email: Some("ali@example.com".into()),
            external_id: Some("shop-77".into()),
            name: Some("Ali".into()),
            ..Default::default()
        },
        channel: Channel::Email,
        subject: Some("Order 9".into()),
        brand_id: None,
        team_id: None,
        assignee_id: None,
        priority: None,
        status: None,
        tags: Vec::new(),
        message: MessageInput {
            kind: MessageKind::Customer,
            text: "Where is order 9?".into(),
            html: None,
            external_id: None,
            created_at: None,
        },
    };
    let (earlier, _) = s
        .app
        .create_conversation(&s.agent, &input, None)
        .await
        .unwrap();
    let ali = earlier.customer_id;

    // Someone types Ali's address into the pre-chat form: a new customer, Ali's history untouched.
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(&mut socket, json!({"type": "hello"})).await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
    send(
        &mut socket,
        json!({"type": "send", "client_id": "u1", "text": "I am Ali, honest",
               "email": "ali@example.com"}),
    )
    .await;
    assert_eq!(next(&mut socket).await["from"], "visitor");
    let chats = s
        .app
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
    assert_eq!(chats.len(), 1);
    assert_ne!(chats[0].customer_id, ali, "an unsigned claim joins nobody");

    // A bad signature is refused and the connection closed.
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(
        &mut socket,
        json!({"type": "hello", "identity": {"id": "shop-77", "hash": sign("wrong", "shop-77")}}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "identity_unverified");

    // The shop's server signs Ali in: his chat joins his customer record.
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    let identity = json!({"id": "shop-77", "email": "ali@example.com", "name": "Ali",
                          "hash": sign(&s.widget.secret, "shop-77")});
    send(&mut socket, json!({"type": "hello", "identity": identity})).await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
    send(
        &mut socket,
        json!({"type": "send", "client_id": "s1", "text": "Hi, it's Ali about order 9"}),
    )
    .await;
    assert_eq!(next(&mut socket).await["from"], "visitor");
    let chats = s
        .app
        .list_conversations(
            &seva_store::conversations::ConversationFilter {
                customer: Some(ali),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    let channels: Vec<Channel> = chats.iter().map(|c| c.channel).collect();
    assert_eq!(
        channels,
        vec![Channel::Chat, Channel::Email],
        "one timeline"
    );
}

/// A clock `minutes` from now, for another App on the same database: the outbox's "later".
fn later(s: &Server, minutes: i64) -> App {
    let at = s.app.now() + chrono::Duration::minutes(minutes);
    App::new(s.app.store.clone(), Arc::new(seva_app::FixedClock::new(at)))
}

async fn a_reply_the_visitor_did_not_see_in_time_is_emailed_and_a_seen_one_is_not(
    backend: Backend,
) {
    let s = server(backend).await;
    let sink = seva_channels::testing::SmtpSink::start().unwrap();
    let local = |port| seva_domain::mail::Server {
        host: "127.0.0.1".into(),
        port,
        security: seva_domain::mail::Security::None,
        user: Some("support".into()),
        password: Some("secret".into()),
    };
    let admin = Caller {
        user: s.app.user_by_email("admin@shop.example").await.unwrap(),
    };
    let mailbox = seva_app::mail::MailboxInput {
        name: "Shop".into(),
        address: "support@shop.example".into(),
        brand_id: None,
        imap: local(1),
        imap_folder: None,
        smtp: seva_domain::mail::Server {
            user: None,
            password: None,
            ..local(sink.port)
        },
        active: true,
    };
    s.app.create_mailbox(&admin, &mailbox).await.unwrap();

    // A visitor without a pre-chat email writes, then leaves an address when nobody answers.
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(
        &mut socket,
        json!({"type": "hello", "token": null, "after": 0}),
    )
    .await;
    let welcome = next(&mut socket).await;
    assert_eq!(
        welcome["away_after"], 120,
        "the widget's default waiting time"
    );
    let token = welcome["token"].as_str().unwrap().to_owned();
    send(
        &mut socket,
        json!({"type": "send", "client_id": "a1", "text": "Is the blue kurta in stock?"}),
    )
    .await;
    let mine = next(&mut socket).await;
    assert_eq!(mine["from"], "visitor");
    let list = s
        .app
        .list_conversations(
            &seva_store::conversations::ConversationFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    let conversation = list[0].id;
    send(
        &mut socket,
        json!({"type": "email", "email": "not an address"}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "invalid_email");
    send(
        &mut socket,
        json!({"type": "email", "email": "Priya@Example.in"}),
    )
    .await;
    let saved = next(&mut socket).await;
    assert_eq!(saved, json!({"type": "email_saved", "ok": true}));

    let reply = |text: &str| MessageInput {
        kind: MessageKind::Reply,
        text: text.into(),
        html: None,
        external_id: None,
        created_at: None,
    };
    // Seen: the visitor is connected and the answer reaches the widget; no email follows.
    s.app
        .add_message(&s.agent, conversation, &reply("Yes, all sizes."), None)
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await["text"], "Yes, all sizes.");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = seva_channels::email::send_due(&s.app).await.unwrap();
    assert_eq!(sent.sent, 0, "nothing is due before the waiting time");
    let sent = seva_channels::email::send_due(&later(&s, 10))
        .await
        .unwrap();
    assert_eq!(sent.sent, 0, "a reply the widget showed is not emailed");
    assert_eq!(
        s.db.count("outbox").await,
        0,
        "the waiting email was dropped"
    );

    // Unseen: the visitor has left; the next answer goes by email after the waiting time.
    socket.close(None).await.unwrap();
    drop(socket);
    s.app
        .add_message(
            &s.agent,
            conversation,
            &reply("Shipping is free this week."),
            None,
        )
        .await
        .unwrap();
    let sent = seva_channels::email::send_due(&later(&s, 1)).await.unwrap();
    assert_eq!(sent.sent, 0, "still within the two minutes");
    let sent = seva_channels::email::send_due(&later(&s, 10))
        .await
        .unwrap();
    assert_eq!(sent.sent, 1);
    let mails = sink.received().unwrap();
    assert_eq!(mails.len(), 1);
    let mail = String::from_utf8_lossy(&mails[0]).to_string();
    assert!(
        mail.contains("To: <priya@example.in>") || mail.contains("To: priya@example.in"),
        "{mail}"
    );
    assert!(mail.contains("Shipping is free this week."), "{mail}");

    // Coming back, the visitor sees that answer in the chat too.
    let mut socket = open(&s, "https://shop.example").await.unwrap();
    send(
        &mut socket,
        json!({"type": "hello", "token": token, "after": mine["id"]}),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
    assert_eq!(next(&mut socket).await["text"], "Yes, all sizes.");
    assert_eq!(
        next(&mut socket).await["text"],
        "Shipping is free this week."
    );
}

/// A widget of a brand outside its business hours says so in its welcome, with the next
/// opening; within them, or with no schedule, it is open.
async fn a_widget_says_when_its_brand_is_closed_and_when_it_opens(backend: Backend) {
    let s = server(backend).await;
    let admin = Caller {
        user: s
            .app
            .create_user("owner@shop.example", "Owner", Role::Admin, None, None)
            .await
            .unwrap(),
    };
    assert_eq!(
        next(&mut hello(&s).await).await["open"],
        true,
        "no brand: open"
    );

    // Open every day, all day, but yesterday, today and tomorrow are holidays (UTC dates).
    let today = s.app.now().date_naive();
    let all_day = "00:00-24:00".to_owned();
    let week = seva_domain::hours::WEEKDAYS
        .iter()
        .map(|(d, _)| (*d, all_day.clone()))
        .collect();
    let holidays = [-1, 0, 1]
        .map(|d| (today + chrono::Duration::days(d)).to_string())
        .to_vec();
    let hours = s
        .app
        .create_business_hours(
            &admin,
            &HoursInput {
                name: "Shop".into(),
                time_zone: "UTC".into(),
                week,
                holidays,
            },
        )
        .await
        .unwrap();
    let mut conn = s.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", s.app.now())
        .await
        .unwrap();
    drop(conn);
    s.app
        .set_brand_hours(&admin, brand, Some(hours.id))
        .await
        .unwrap();
    let mut input = widget_input(&s.widget);
    input.brand_id = Some(brand);
    s.app
        .update_widget(&admin, s.widget.id, &input)
        .await
        .unwrap();

    let welcome = next(&mut hello(&s).await).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["open"], false, "{welcome}");
    let opens = (today + chrono::Duration::days(2))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .to_rfc3339();
    assert_eq!(welcome["opens_at"], opens.as_str());

    // Without the holidays the brand is open again.
    let mut open_all_week = HoursInput {
        name: "Shop".into(),
        time_zone: "UTC".into(),
        ..HoursInput::default()
    };
    open_all_week.week = seva_domain::hours::WEEKDAYS
        .iter()
        .map(|(d, _)| (*d, all_day.clone()))
        .collect();
    s.app
        .update_business_hours(&admin, hours.id, &open_all_week)
        .await
        .unwrap();
    let welcome = next(&mut hello(&s).await).await;
    assert_eq!(welcome["open"], true, "{welcome}");
    assert_eq!(welcome["opens_at"], Value::Null);
}

/// A new visitor's socket on the shop's page, hello said.
async fn hello(s: &Server) -> Socket {
    let mut socket = open(s, "https://shop.example").await.unwrap();
    send(
        &mut socket,
        json!({"type": "hello", "token": null, "after": 0}),
    )
    .await;
    socket
}

fn widget_input(w: &Widget) -> WidgetInput {
    WidgetInput {
        name: w.name.clone(),
        brand_id: w.brand_id,
        allowed_origins: w.allowed_origins.clone(),
        color: Some(w.color.clone()),
        greeting: w.greeting.clone(),
        prechat: w.prechat,
        away_after: Some(w.away_after),
        active: w.active,
    }
}

on_both_backends!(
    a_widget_says_when_its_brand_is_closed_and_when_it_opens,
    a_reply_the_visitor_did_not_see_in_time_is_emailed_and_a_seen_one_is_not,
    a_visitor_and_an_agent_chat_live_and_reconnecting_loses_and_doubles_nothing,
    other_sites_bad_frames_and_floods_are_refused,
    a_signed_shopper_joins_their_history_and_an_unsigned_claim_never_does,
);
