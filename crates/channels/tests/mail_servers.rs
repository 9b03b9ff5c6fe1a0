//! The email channel against real servers started by the test itself: Dovecot (IMAP) and an
//! aiosmtpd sink (SMTP), on SQLite and on PostgreSQL. Mail in becomes conversations, replies go
//! out threaded, the customer's answer comes back into the same conversation, the outbox
//! retries while the SMTP server is down, and bad mail never stalls the mailbox.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::sync::Arc;

use seva_app::attachments::{LocalBlobs, NewFile};
use seva_app::conversations::{ConversationPatch, MessageInput};
use seva_app::mail::MailboxInput;
use seva_app::{App, Caller, FixedClock};
use seva_channels::email::{self, imap, parse};
use seva_channels::testing::{Dovecot, SmtpSink};
use seva_domain::mail::{DeliveryStatus, Mailbox, Security, Server};
use seva_domain::{Channel, ConversationId, MessageKind, Role, Status};
use seva_store::Backend;
use seva_store::testing::TestDb;

struct World {
    app: App,
    clock: Arc<FixedClock>,
    agent: Caller,
    mailbox: Mailbox,
    dovecot: Dovecot,
    sink: SmtpSink,
    _db: TestDb,
    _blobs: tempfile::TempDir,
}

async fn world(backend: Backend) -> World {
    let db = TestDb::new(backend).await;
    let blobs = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(
        chrono::DateTime::from_timestamp(1_794_000_000, 0).unwrap(),
    ));
    let app = App::new(db.store.clone(), clock.clone())
        .with_blobs(Arc::new(LocalBlobs::new(blobs.path())));
    let dovecot = Dovecot::start().unwrap();
    let sink = SmtpSink::start().unwrap();
    let admin = Caller {
        user: app
            .create_user("admin@shop.example.com", "Admin", Role::Admin, None, None)
            .await
            .unwrap(),
    };
    let agent = Caller {
        user: app
            .create_user("sara@shop.example.com", "Sara", Role::Agent, None, None)
            .await
            .unwrap(),
    };
    let mailbox = app
        .create_mailbox(
            &admin,
            &MailboxInput {
                name: "Shop Support".into(),
                address: "Support@Shop.Example.com".into(),
                brand_id: None,
                imap: Server {
                    host: "127.0.0.1".into(),
                    port: dovecot.port,
                    security: Security::None,
                    user: Some(dovecot.user.clone()),
                    password: Some(dovecot.password.clone()),
                },
                imap_folder: None,
                smtp: Server {
                    host: "127.0.0.1".into(),
                    port: sink.port,
                    security: Security::None,
                    user: None,
                    password: None,
                },
                active: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(mailbox.address, "support@shop.example.com");
    World {
        app,
        clock,
        agent,
        mailbox,
        dovecot,
        sink,
        _db: db,
        _blobs: blobs,
    }
}

fn customer_mail(message_id: &str, subject: &str, body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "From: =?UTF-8?B?{name}?= <maryam@example.org>\r\n\
         To: support@shop.example.com\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{message_id}>\r\n\
         Date: Mon, 9 Nov 2026 10:00:00 +0330\r\n\
         {extra_headers}\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        name = base64_utf8("مریم احمدی"),
    )
    .into_bytes()
}

fn base64_utf8(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

async fn reply(w: &World, conversation: ConversationId, text: &str, files: &[NewFile]) {
    w.app
        .add_message_with_files(
            &w.agent,
            conversation,
            &MessageInput {
                kind: MessageKind::Reply,
                text: text.into(),
                html: None,
                external_id: None,
                created_at: None,
            },
            files,
            None,
        )
        .await
        .unwrap();
}

async fn resolve(w: &World, id: ConversationId) {
    w.app
        .update_conversation(
            &w.agent,
            id,
            &ConversationPatch {
                status: Some(Status::Resolved),
                ..ConversationPatch::default()
            },
        )
        .await
        .unwrap();
}

async fn the_conversation(w: &World) -> ConversationId {
    let list = w
        .app
        .list_conversations(
            &seva_store::conversations::ConversationFilter::default(),
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "exactly one conversation: {list:?}");
    list[0].id
}

async fn mail_in_becomes_conversations_and_replies_thread_both_ways(backend: Backend) {
    let w = world(backend).await;
    let first = customer_mail(
        "first@example.org",
        "=?UTF-8?B?2LPZgdin2LHYtCAjMTA0Mg==?=",
        "سلام، سفارش من کجاست؟",
        "",
    );
    w.dovecot.deliver(&first).unwrap();
    let fetched = imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    assert_eq!(fetched.stored, 1, "{fetched:?}");
    assert_eq!(
        w.dovecot.counts().unwrap(),
        (1, 1),
        "taken in, then flagged seen"
    );

    let id = the_conversation(&w).await;
    let conversation = w.app.conversation(id).await.unwrap();
    assert_eq!(conversation.channel, Channel::Email);
    assert_eq!(conversation.subject.as_deref(), Some("سفارش #1042"));
    let messages = w.app.messages(id).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, "سلام، سفارش من کجاست؟");
    assert_eq!(
        messages[0].external_id.as_deref(),
        Some("first@example.org")
    );

    // Fetching again finds nothing new; the same mail delivered again is not a second message.
    assert_eq!(
        imap::fetch_once(&w.app, w.mailbox.id).await.unwrap().stored,
        0
    );
    w.dovecot.deliver(&first).unwrap();
    let again = imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
    assert_eq!(w.app.messages(id).await.unwrap().len(), 1);

    // The agent answers with a file; the outbox sends it as a threaded email.
    let invoice = NewFile {
        filename: "فاکتور.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: b"%PDF-1.4 invoice".to_vec(),
    };
    reply(&w, id, "سفارش شما امروز ارسال شد.", &[invoice]).await;
    let deliveries = w.app.deliveries(id).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, DeliveryStatus::Queued);
    assert_eq!(deliveries[0].recipient, "maryam@example.org");
    let sent = email::send_due(&w.app).await.unwrap();
    assert_eq!(sent.sent, 1, "{sent:?}");
    assert_eq!(
        w.app.deliveries(id).await.unwrap()[0].status,
        DeliveryStatus::Sent
    );

    let received = w.sink.received().unwrap();
    assert_eq!(received.len(), 1);
    let raw = String::from_utf8_lossy(&received[0]).to_string();
    assert!(
        header(&raw, "From")
            .unwrap()
            .contains("<support@shop.example.com>"),
        "{raw}"
    );
    assert_eq!(header(&raw, "In-Reply-To"), Some("<first@example.org>"));
    assert!(
        header(&raw, "References")
            .unwrap()
            .contains("<first@example.org>")
    );
    let as_read = parse::parse(&received[0]).unwrap();
    assert_eq!(
        as_read.subject.as_deref(),
        Some(&*format!("Re: سفارش #1042 [#{id}]"))
    );
    assert!(
        as_read.text.contains("سفارش شما امروز ارسال شد."),
        "{}",
        as_read.text
    );
    assert_eq!(as_read.files.len(), 1);
    assert_eq!(as_read.files[0].filename, "فاکتور.pdf");
    assert_eq!(as_read.files[0].bytes, b"%PDF-1.4 invoice");
    // The customer's message is quoted below the reply, for their mail program's thread.
    let full = mail_parser::MessageParser::default()
        .parse(&received[0])
        .unwrap();
    let body = full.body_text(0).unwrap();
    assert!(
        body.contains("maryam@example.org wrote:\n> سلام، سفارش من کجاست؟")
            || body.contains("مریم احمدی wrote:\n> سلام، سفارش من کجاست؟"),
        "{body}"
    );
    let our_id = w.app.messages(id).await.unwrap()[1]
        .external_id
        .clone()
        .unwrap();
    assert_eq!(as_read.message_id, our_id);

    // The conversation is resolved; the customer answers that reply days later: it joins the
    // same conversation and reopens it.
    resolve(&w, id).await;
    let answer = customer_mail(
        "second@example.org",
        &format!(
            "Re: {}",
            as_read
                .subject
                .clone()
                .unwrap()
                .replace(&format!(" [#{id}]"), "")
        ),
        "ممنون، رسید.\r\n\r\nOn Mon, 9 Nov 2026, Shop Support wrote:\r\n> سفارش شما امروز ارسال شد.",
        &format!("In-Reply-To: <{our_id}>\r\nReferences: <first@example.org> <{our_id}>\r\n"),
    );
    w.dovecot.deliver(&answer).unwrap();
    assert_eq!(
        imap::fetch_once(&w.app, w.mailbox.id).await.unwrap().stored,
        1
    );
    assert_eq!(the_conversation(&w).await, id);
    let messages = w.app.messages(id).await.unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2].text, "ممنون، رسید.", "quoted history trimmed");
    assert_eq!(w.app.conversation(id).await.unwrap().status, Status::Open);

    // Headers lost, but the subject carries the reference: it still joins.
    let lost = customer_mail(
        "third@example.org",
        &format!("RE: order [#{id}]"),
        "One more question.",
        "",
    );
    // An out-of-office with the reference: joins but never reopens, and is never answered.
    resolve(&w, id).await;
    let away = customer_mail(
        "ooo@example.org",
        &format!("Automatic reply: Re: order [#{id}]"),
        "I am away until Monday.",
        &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{our_id}>\r\n"),
    );
    w.dovecot.deliver(&away).unwrap();
    assert_eq!(
        imap::fetch_once(&w.app, w.mailbox.id).await.unwrap().stored,
        1
    );
    assert_eq!(w.app.messages(id).await.unwrap().len(), 4);
    assert_eq!(
        w.app.conversation(id).await.unwrap().status,
        Status::Resolved,
        "an auto-reply does not reopen"
    );
    w.dovecot.deliver(&lost).unwrap();
    assert_eq!(
        imap::fetch_once(&w.app, w.mailbox.id).await.unwrap().stored,
        1
    );
    assert_eq!(the_conversation(&w).await, id);
    assert_eq!(w.app.messages(id).await.unwrap().len(), 5);
    assert_eq!(w.app.conversation(id).await.unwrap().status, Status::Open);

    // Nothing was sent but the one reply.
    assert_eq!(email::send_due(&w.app).await.unwrap().sent, 0);
    assert_eq!(w.sink.received().unwrap().len(), 1);
}

async fn the_outbox_retries_while_smtp_is_down_and_delivers_once(backend: Backend) {
    let mut w = world(backend).await;
    w.dovecot
        .deliver(&customer_mail(
            "q@example.org",
            "Where is my order?",
            "Hello?",
            "",
        ))
        .unwrap();
    imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    let id = the_conversation(&w).await;

    w.sink.stop();
    reply(&w, id, "On its way.", &[]).await;
    let first = email::send_due(&w.app).await.unwrap();
    assert_eq!((first.sent, first.retrying), (0, 1));
    let delivery = w.app.deliveries(id).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Queued);
    assert_eq!(delivery.attempts, 1);
    assert!(delivery.last_error.is_some());
    // Not due yet: nothing is tried.
    assert_eq!(
        email::send_due(&w.app).await.unwrap(),
        email::Sent::default()
    );
    w.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(email::send_due(&w.app).await.unwrap().retrying, 1);
    assert_eq!(w.app.deliveries(id).await.unwrap()[0].attempts, 2);

    w.sink.restart().unwrap();
    w.clock.advance(chrono::Duration::minutes(6));
    assert_eq!(email::send_due(&w.app).await.unwrap().sent, 1);
    w.clock.advance(chrono::Duration::hours(10));
    assert_eq!(email::send_due(&w.app).await.unwrap().sent, 0);
    assert_eq!(
        w.sink.received().unwrap().len(),
        1,
        "delivered exactly once"
    );
    let delivery = w.app.deliveries(id).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Sent);
    assert_eq!(delivery.attempts, 3);

    // A server that stays down: after the last try the failure is on the message.
    w.sink.stop();
    reply(&w, id, "Second note.", &[]).await;
    for _ in 0..seva_domain::mail::MAX_ATTEMPTS {
        email::send_due(&w.app).await.unwrap();
        w.clock.advance(chrono::Duration::hours(5));
    }
    let failed = w.app.deliveries(id).await.unwrap().remove(1);
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.attempts, seva_domain::mail::MAX_ATTEMPTS);
    assert!(failed.last_error.unwrap().starts_with("cannot connect"));
}

async fn bad_mail_is_set_aside_or_stored_and_never_stalls_the_mailbox(backend: Backend) {
    let w = world(backend).await;
    let fixture = |name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/mail/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let mut huge = fixture("big-attachment-header.eml");
    for _ in 0..52_428_800 / 57 {
        huge.extend_from_slice(&[b'A'; 76]);
        huge.extend_from_slice(b"\r\n");
    }
    huge.extend_from_slice(b"--Apple-Mail=_5E1C2B3A-7D4F-4A9B-8C6E-0F1A2B3C4D5E--\r\n");
    for raw in [
        fixture("broken-mime.eml"),
        fixture("header-injection.eml"),
        b"Subject: nobody sent this\r\n\r\nno sender at all\r\n".to_vec(),
        huge,
        fixture("html-only-script.eml"),
        fixture("bounce-dsn.eml"),
        fixture("plain-utf8-persian.eml"),
    ] {
        w.dovecot.deliver(&raw).unwrap();
    }
    let fetched = imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    assert_eq!(fetched.stored, 5, "{fetched:?}");
    assert_eq!(fetched.set_aside, 2, "{fetched:?}");
    assert_eq!(
        w.dovecot.counts().unwrap(),
        (7, 5),
        "only stored mail is flagged seen"
    );

    let admin = Caller {
        user: w.app.user_by_email("admin@shop.example.com").await.unwrap(),
    };
    let rejects = w.app.mailbox_rejects(&admin, w.mailbox.id).await.unwrap();
    let mut codes: Vec<&str> = rejects.iter().map(|r| r.error.as_str()).collect();
    codes.sort_unstable();
    assert_eq!(codes, vec!["too_large", "unreadable"]);
    let large = rejects.iter().find(|r| r.error == "too_large").unwrap();
    assert_eq!(large.sender.as_deref(), Some("chloe.martin@example.net"));
    assert!(large.size > 50_000_000);

    // The position moved past everything: the next round has nothing to do.
    let next = imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    assert_eq!(next, imap::Fetched::default());

    let list = w
        .app
        .list_conversations(
            &seva_store::conversations::ConversationFilter::default(),
            None,
            50,
        )
        .await
        .unwrap();
    let subjects: Vec<String> = list.iter().filter_map(|c| c.subject.clone()).collect();
    assert!(
        subjects.contains(&"Hello Bcc: victim@example.net".to_owned()),
        "{subjects:?}"
    );
    let bounce = list
        .iter()
        .find(|c| c.subject.as_deref() == Some("Undelivered Mail Returned to Sender"))
        .unwrap();
    assert_eq!(bounce.tags, vec!["bounce".to_owned()]);
    let refund = list
        .iter()
        .find(|c| c.subject.as_deref() == Some("Refund for order #6120"))
        .unwrap();
    let message = &w.app.messages(refund.id).await.unwrap()[0];
    let html = message.html.as_deref().unwrap();
    assert!(
        !html.contains("alert(") && !html.contains("tracker.example.net"),
        "{html}"
    );
}

async fn idle_brings_new_mail_in_at_once_without_polling(backend: Backend) {
    let w = world(backend).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // A poll of ten minutes: only IDLE can bring the mail in within the test's seconds.
    let watcher = tokio::spawn(imap::watch(
        w.app.clone(),
        w.mailbox.id,
        std::time::Duration::from_mins(10),
        stopped,
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let conversations = || async {
        w.app
            .list_conversations(
                &seva_store::conversations::ConversationFilter::default(),
                None,
                50,
            )
            .await
            .unwrap()
            .len()
    };
    for (i, wanted) in [(1, 1), (2, 2), (3, 3)] {
        w.dovecot
            .deliver(&customer_mail(
                &format!("idle-{i}@example.org"),
                &format!("Question {i}"),
                "Hello?",
                "",
            ))
            .unwrap();
        while conversations().await < wanted && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            conversations().await,
            wanted,
            "mail {i} arrived while idling"
        );
    }
    let mailbox = w.app.mailbox_for_channel(w.mailbox.id).await.unwrap();
    assert!(mailbox.checked_at.is_some() && mailbox.last_error.is_none());
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), watcher)
        .await
        .expect("the watcher stops when asked")
        .unwrap();
}

async fn a_bounce_of_our_reply_marks_it_not_delivered(backend: Backend) {
    let w = world(backend).await;
    w.dovecot
        .deliver(&customer_mail("ask@example.org", "Refund?", "Hello?", ""))
        .unwrap();
    imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    let id = the_conversation(&w).await;
    reply(&w, id, "Refunded today.", &[]).await;
    assert_eq!(email::send_due(&w.app).await.unwrap().sent, 1);
    let ours = w.app.messages(id).await.unwrap()[1]
        .external_id
        .clone()
        .unwrap();
    resolve(&w, id).await;

    let dsn = format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n\
         To: support@shop.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn-1@mx.example.org>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered: user unknown.\r\n\
         --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
         Final-Recipient: rfc822; maryam@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@shop.example.com\r\n\
         Message-ID: <{ours}>\r\nSubject: Re: Refund?\r\n\r\n--r--\r\n"
    );
    w.dovecot.deliver(dsn.as_bytes()).unwrap();
    assert_eq!(
        imap::fetch_once(&w.app, w.mailbox.id).await.unwrap().stored,
        1
    );

    assert_eq!(
        the_conversation(&w).await,
        id,
        "the bounce joins the conversation"
    );
    let delivery = w.app.deliveries(id).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    let error = delivery.last_error.unwrap();
    assert!(error.starts_with("bounced: "), "{error}");
    assert!(error.contains("user unknown"), "{error}");
    assert_eq!(
        w.app.conversation(id).await.unwrap().status,
        Status::Resolved,
        "a bounce does not reopen"
    );
    // Nothing answers the bounce.
    assert_eq!(
        email::send_due(&w.app).await.unwrap(),
        email::Sent::default()
    );
    assert_eq!(w.sink.received().unwrap().len(), 1);
}

async fn client_ids_reused_message_ids_and_strangers_in_the_thread(backend: Backend) {
    let w = world(backend).await;
    w.dovecot
        .deliver(&customer_mail(
            "c1@example.org",
            "Order 7",
            "Where is order 7?",
            "",
        ))
        .unwrap();
    imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    let id = the_conversation(&w).await;

    // An API client's reply keeps the client's id (a retry finds it), and goes out under a
    // Message-ID of its own that the customer's answer then threads by.
    let input = MessageInput {
        kind: MessageKind::Reply,
        text: "It ships Monday.".into(),
        html: None,
        external_id: Some("crm-reply-42".into()),
        created_at: None,
    };
    let (first, _) = w.app.add_message(&w.agent, id, &input, None).await.unwrap();
    let (retry, outcome) = w.app.add_message(&w.agent, id, &input, None).await.unwrap();
    assert_eq!(outcome, seva_app::conversations::Outcome::Existing);
    assert_eq!(retry.id, first.id);
    assert_eq!(first.external_id.as_deref(), Some("crm-reply-42"));
    assert_eq!(email::send_due(&w.app).await.unwrap().sent, 1);
    assert_eq!(
        w.sink.received().unwrap().len(),
        1,
        "the retry sent nothing"
    );
    let sent_as = w.app.deliveries(id).await.unwrap()[0]
        .mail_message_id
        .clone()
        .unwrap();
    let sent = parse::parse(&w.sink.received().unwrap()[0]).unwrap();
    assert_eq!(sent.message_id, sent_as);
    w.dovecot
        .deliver(&customer_mail(
            "c2@example.org",
            "Re: Order 7",
            "Thanks!",
            &format!("In-Reply-To: <{sent_as}>\r\n"),
        ))
        .unwrap();
    imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    assert_eq!(the_conversation(&w).await, id);

    // A mailer that reuses one Message-ID for different mails: both are kept; the same mail
    // again is still one.
    let reused = |body: &str| customer_mail("same-id@example.org", "Form", body, "");
    w.dovecot.deliver(&reused("First form entry")).unwrap();
    w.dovecot.deliver(&reused("Second form entry")).unwrap();
    w.dovecot.deliver(&reused("Second form entry")).unwrap();
    let fetched = imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    assert_eq!((fetched.stored, fetched.duplicates), (2, 1), "{fetched:?}");

    // Someone else writes into the thread by its headers (a CC'd colleague): the message joins,
    // but the agent's answer still goes to the customer, not to whoever wrote last.
    let stranger = format!(
        "From: Colleague <colleague@example.net>\r\nSubject: Re: Order 7\r\n\
         Message-ID: <cc-1@example.net>\r\nIn-Reply-To: <{sent_as}>\r\n\r\nPlease send it to me instead.\r\n"
    );
    w.dovecot.deliver(stranger.as_bytes()).unwrap();
    imap::fetch_once(&w.app, w.mailbox.id).await.unwrap();
    reply(&w, id, "We will ship to the address on the order.", &[]).await;
    assert_eq!(email::send_due(&w.app).await.unwrap().sent, 1);
    let deliveries = w.app.deliveries(id).await.unwrap();
    assert_eq!(deliveries.last().unwrap().recipient, "maryam@example.org");
}

/// Each scenario once per backend, as its own test.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(seva_store::Backend::Sqlite).await; })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(seva_store::Backend::Postgres).await; })+
        }
    };
}

on_both_backends!(
    mail_in_becomes_conversations_and_replies_thread_both_ways,
    the_outbox_retries_while_smtp_is_down_and_delivers_once,
    bad_mail_is_set_aside_or_stored_and_never_stalls_the_mailbox,
    idle_brings_new_mail_in_at_once_without_polling,
    a_bounce_of_our_reply_marks_it_not_delivered,
    client_ids_reused_message_ids_and_strangers_in_the_thread,
);

fn tls_mailbox_input(
    address: &str,
    dovecot: &Dovecot,
    imap: (u16, Security),
    smtp: (u16, Security),
) -> MailboxInput {
    MailboxInput {
        name: "Shop Support".into(),
        address: address.into(),
        brand_id: None,
        imap: Server {
            host: "localhost".into(),
            port: imap.0,
            security: imap.1,
            user: Some(dovecot.user.clone()),
            password: Some(dovecot.password.clone()),
        },
        imap_folder: None,
        smtp: Server {
            host: "localhost".into(),
            port: smtp.0,
            security: smtp.1,
            user: None,
            password: None,
        },
        active: true,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_starttls_connections_are_verified_against_the_shops_ca() {
    use seva_channels::testing::TestCa;
    let db = TestDb::new(Backend::Sqlite).await;
    let blobs = tempfile::tempdir().unwrap();
    let ca = TestCa::new().unwrap();
    let dovecot = Dovecot::start_tls(&ca).unwrap();
    let starttls_sink = SmtpSink::start_tls(&ca, false).unwrap();
    let smtps_sink = SmtpSink::start_tls(&ca, true).unwrap();
    let app = App::new(db.store.clone(), Arc::new(seva_app::SystemClock))
        .with_blobs(Arc::new(LocalBlobs::new(blobs.path())))
        .with_mail_ca(ca.ca_pem());
    let admin = Caller {
        user: app
            .create_user("admin@shop.example.com", "Admin", Role::Admin, None, None)
            .await
            .unwrap(),
    };
    // Implicit TLS for IMAP, STARTTLS for SMTP.
    let tls = app
        .create_mailbox(
            &admin,
            &tls_mailbox_input(
                "support@shop.example.com",
                &dovecot,
                (dovecot.tls_port.unwrap(), Security::Tls),
                (starttls_sink.port, Security::Starttls),
            ),
        )
        .await
        .unwrap();
    // STARTTLS for IMAP, implicit TLS (SMTPS) for SMTP.
    let starttls = app
        .create_mailbox(
            &admin,
            &tls_mailbox_input(
                "sales@shop.example.com",
                &dovecot,
                (dovecot.port, Security::Starttls),
                (smtps_sink.port, Security::Tls),
            ),
        )
        .await
        .unwrap();
    for mailbox in [&tls, &starttls] {
        let check = email::check(&app, mailbox).await;
        assert!(check.imap.is_ok(), "{}: {:?}", mailbox.address, check.imap);
        assert!(check.smtp.is_ok(), "{}: {:?}", mailbox.address, check.smtp);
    }

    // Mail in over TLS, the reply out over STARTTLS.
    dovecot
        .deliver(&customer_mail("tls@example.org", "Over TLS", "Hello?", ""))
        .unwrap();
    assert_eq!(imap::fetch_once(&app, tls.id).await.unwrap().stored, 1);
    let list = app
        .list_conversations(
            &seva_store::conversations::ConversationFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    let agent = Caller {
        user: app
            .create_user("sara@shop.example.com", "Sara", Role::Agent, None, None)
            .await
            .unwrap(),
    };
    app.add_message(
        &agent,
        list[0].id,
        &MessageInput {
            kind: MessageKind::Reply,
            text: "Answered over STARTTLS.".into(),
            html: None,
            external_id: None,
            created_at: None,
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(email::send_due(&app).await.unwrap().sent, 1);
    assert_eq!(starttls_sink.received().unwrap().len(), 1);

    // Every sign-in went over TLS (Dovecot would also take a plaintext LOGIN on loopback).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while dovecot.logins().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logins = dovecot.logins();
    assert!(logins.len() >= 3, "{logins:?}");
    assert!(logins.iter().all(|l| l.tls), "{logins:?}");

    // Without the shop's CA the same servers are refused: the certificate is checked.
    let stranger = App::new(db.store.clone(), Arc::new(seva_app::SystemClock));
    for mailbox in [&tls, &starttls] {
        let check = email::check(&stranger, mailbox).await;
        let imap = check.imap.unwrap_err();
        assert_eq!(imap.code(), "mail_connect_failed", "{imap}");
        assert!(imap.to_string().contains("certificate"), "{imap}");
        assert!(check.smtp.is_err(), "{}", mailbox.address);
    }
}
