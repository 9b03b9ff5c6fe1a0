//! The inbound mail path: raw bytes from IMAP through `parse`, then the reply trimming and HTML
//! cleaning that run on what a customer wrote. Any panic, hang or runaway allocation is a bug:
//! `parse` promises never to panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seva_channels::email::{parse, quote};

fuzz_target!(|raw: &[u8]| {
    let Ok(mail) = parse::parse(raw) else {
        return;
    };
    // `parse` already trims and cleans once; running them again on its output also checks that
    // they cope with their own results.
    let _ = quote::trim_reply(&mail.text);
    if let Some(html) = &mail.html {
        let _ = quote::clean_email_html(html);
    }
});
