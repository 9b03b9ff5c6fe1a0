//! Real-world mail (tests/fixtures/mail, described in its README) read the way a help desk
//! needs it: charsets, encoded headers and file names, threading headers, automatic mail,
//! hostile content.
#![allow(clippy::unwrap_used)]

use seva_app::mail::InboundEmail;
use seva_channels::email::parse::parse;
use seva_domain::ConversationId;
use seva_domain::mail::Automatic;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/mail/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn read(name: &str) -> InboundEmail {
    parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn file_names(mail: &InboundEmail) -> Vec<&str> {
    mail.files.iter().map(|f| f.filename.as_str()).collect()
}

#[test]
fn persian_in_utf8_quoted_printable_with_encoded_headers() {
    let mail = read("plain-utf8-persian.eml");
    assert_eq!(mail.subject.as_deref(), Some("سفارش #1042 من کجاست؟"));
    assert_eq!(mail.from, "maryam.ahmadi@example.org");
    assert_eq!(mail.from_name.as_deref(), Some("مریم احمدی"));
    assert!(mail.text.contains("سفارش من کجاست"), "{}", mail.text);
    assert_eq!(mail.automatic, None);
}

#[test]
fn windows_1256_and_iso_8859_6_are_decoded() {
    let mail = read("windows-1256.eml");
    assert_eq!(mail.subject.as_deref(), Some("مشکل در پرداخت سفارش 1043"));
    assert!(
        mail.text
            .contains("سفارش شماره 1043 دو بار پول پرداخت کردم"),
        "{}",
        mail.text
    );
    let arabic = read("iso-8859-6.eml");
    assert_eq!(arabic.subject.as_deref(), Some("طلب إلغاء الطلب رقم 2077"));
    assert_eq!(arabic.from_name.as_deref(), Some("أحمد الخطيب"));
    assert!(
        arabic.text.contains("أريد إلغاء طلبي رقم 2077"),
        "{}",
        arabic.text
    );
}

#[test]
fn devanagari_in_base64_with_folded_encoded_subject() {
    let mail = read("devanagari-base64.eml");
    assert_eq!(mail.subject.as_deref(), Some("ऑर्डर वापसी के बारे में प्रश्न"));
    assert!(mail.text.contains("ऑर्डर क्रमांक 3051"), "{}", mail.text);
    assert!(mail.html.as_deref().is_some_and(|h| h.contains("3051")));
}

#[test]
fn scripts_styles_handlers_and_trackers_leave_html_mail() {
    let mail = read("html-only-script.eml");
    assert!(
        mail.text.contains("Please help with my refund"),
        "{}",
        mail.text
    );
    let html = mail.html.unwrap();
    assert!(html.contains("Please help with my refund"));
    for bad in [
        "alert(",
        "STYLE-TEXT-SHOULD-NOT-APPEAR",
        "javascript:",
        "tracker.example.net",
        "onclick",
        "onload",
    ] {
        assert!(!html.contains(bad), "{bad} left in {html}");
        assert!(!mail.text.contains(bad), "{bad} left in {}", mail.text);
    }
}

#[test]
fn attachments_keep_rfc2231_and_rfc2047_names() {
    let mail = read("attachments-rfc2231.eml");
    let names = file_names(&mail);
    assert!(names.contains(&"فاکتور.pdf"), "{names:?}");
    assert!(names.contains(&"रसीद.png"), "{names:?}");
    assert!(names.contains(&"logo.png"), "{names:?}");
    let pdf = mail
        .files
        .iter()
        .find(|f| f.filename == "فاکتور.pdf")
        .unwrap();
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.bytes.starts_with(b"%PDF"));
    assert_eq!(pdf.bytes.len(), 614);
    let png = mail
        .files
        .iter()
        .find(|f| f.filename == "रसीद.png")
        .unwrap();
    assert_eq!(png.bytes.len(), 73);
    assert!(
        mail.text
            .contains("a photo of the damaged box for order #1077")
    );
}

#[test]
fn replies_carry_their_thread_and_lose_the_quoted_history() {
    let gmail = read("reply-gmail.eml");
    assert_eq!(gmail.references[0], "seva.1.abc@shop.example.com");
    assert!(
        gmail
            .references
            .contains(&"first-customer-msg@mail.example.org".to_owned())
    );
    assert!(gmail.text.contains("still in Tehran"), "{}", gmail.text);
    assert!(
        !gmail.text.contains("Your order #1042 has shipped"),
        "{}",
        gmail.text
    );
    assert!(!gmail.html.unwrap().contains("Your order #1042 has shipped"));
    assert_eq!(gmail.subject_reference, Some(ConversationId(1)));

    let outlook = read("reply-outlook.eml");
    assert!(outlook.references.is_empty());
    assert_eq!(outlook.subject_reference, Some(ConversationId(42)));
    assert!(outlook.text.contains("It still has not arrived"));
    assert!(
        !outlook.text.contains("Your order #4242 is on its way"),
        "{}",
        outlook.text
    );

    let persian = read("reply-persian-quote.eml");
    assert_eq!(persian.references[0], "seva.2.ghi@shop.example.com");
    assert!(persian.text.contains("ممنون از پاسخ شما"));
    assert!(
        !persian.text.contains("سفارش شما ارسال شد"),
        "{}",
        persian.text
    );
}

#[test]
fn auto_replies_lists_and_bounces_are_recognised() {
    assert_eq!(read("auto-reply.eml").automatic, Some(Automatic::AutoReply));
    assert_eq!(read("precedence-bulk.eml").automatic, Some(Automatic::List));
    let bounce = read("bounce-dsn.eml");
    assert_eq!(bounce.automatic, Some(Automatic::Bounce));
    assert_eq!(bounce.from, "MAILER-DAEMON@mx.example.com");
    assert_eq!(
        bounce.bounced,
        vec!["seva.7.def@shop.example.com".to_owned()]
    );
    for person in [
        "plain-utf8-persian.eml",
        "reply-gmail.eml",
        "nested-forward.eml",
    ] {
        assert_eq!(read(person).automatic, None, "{person}");
    }
}

#[test]
fn broken_mime_is_read_as_far_as_it_goes() {
    let mail = read("broken-mime.eml");
    assert_eq!(
        mail.subject.as_deref(),
        Some("photo of broken item order 5150")
    );
    assert!(
        mail.text.contains("the vase in order 5150 arrived broken"),
        "{}",
        mail.text
    );
    assert_eq!(file_names(&mail), vec!["broken-vase.jpg"]);
}

#[test]
fn a_mail_without_message_id_gets_a_stable_one() {
    let raw = fixture("no-message-id.eml");
    let mail = parse(&raw).unwrap();
    assert!(mail.message_id.ends_with("@no-message-id.seva"));
    assert_eq!(parse(&raw).unwrap().message_id, mail.message_id);
    let mut other = raw.clone();
    other.extend_from_slice(b"\r\nP.S.\r\n");
    assert_ne!(parse(&other).unwrap().message_id, mail.message_id);
}

#[test]
fn header_injection_is_flattened() {
    let mail = read("header-injection.eml");
    let subject = mail.subject.unwrap();
    assert!(
        !subject.contains('\r') && !subject.contains('\n'),
        "{subject:?}"
    );
    assert_eq!(subject, "Hello Bcc: victim@example.net");
    let name = mail.from_name.unwrap();
    assert!(!name.contains('\n'), "{name:?}");
    assert_eq!(mail.from, "attacker@example.org");
}

#[test]
fn a_forwarded_mail_is_kept_as_an_eml_file() {
    let mail = read("nested-forward.eml");
    assert!(
        mail.text
            .contains("forwarding the invoice our accounting team received")
    );
    let names = file_names(&mail);
    assert_eq!(names, vec!["Invoice for order #3310.eml"], "{names:?}");
    let inner = parse(&mail.files[0].bytes).unwrap();
    assert_eq!(inner.message_id, "seva.9.inv@shop.example.com");
    assert_eq!(file_names(&inner), vec!["invoice-3310.pdf"]);
}

#[test]
fn a_50_mb_attachment_is_parsed_without_trouble() {
    const SIZE: usize = 52_428_800;
    let mut raw = fixture("big-attachment-header.eml");
    for _ in 0..SIZE / 57 {
        raw.extend_from_slice(&[b'A'; 76]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n");
    raw.extend_from_slice(b"--Apple-Mail=_5E1C2B3A-7D4F-4A9B-8C6E-0F1A2B3C4D5E--\r\n");
    let mail = parse(&raw).unwrap();
    assert_eq!(mail.from_name.as_deref(), Some("Chloé Martin"));
    let movie = mail
        .files
        .iter()
        .find(|f| f.filename == "unboxing.mov")
        .unwrap();
    assert_eq!(movie.bytes.len(), SIZE);
}

#[test]
fn every_fixture_and_every_truncation_of_it_parses_without_panic() {
    let dir = format!("{}/tests/fixtures/mail", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        for cut in (0..raw.len()).step_by(97) {
            let _ = parse(&raw[..cut]);
        }
    }
}

#[test]
fn nested_empty_rfc822_parts_found_by_the_fuzzer_are_refused_not_a_panic() {
    let raw =
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n\r\n--b--\r\n";
    // Whatever mail-parser makes of it (it asserts in debug builds), the answer is a result.
    match parse(raw) {
        Ok(mail) => assert_eq!(mail.from, "a@example.com"),
        Err(e) => assert_eq!(e, seva_channels::email::parse::ParseError::Malformed),
    }
}
