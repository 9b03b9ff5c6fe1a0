//! Quoted history: trimmed from customers' replies (the conversation already shows it) and
//! written, short, below agents' replies (so the customer's mail program shows context).

use std::collections::HashSet;
use std::fmt::Write as _;

use chrono::Utc;
use seva_domain::Timestamp;

/// The customer's new words: everything before the quoted history their mail program added.
/// When nothing would be left (a reply written inside the quote), the whole text is kept.
pub fn trim_reply(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let cut = quote_start(&lines);
    let kept = lines[..cut].join("\n");
    let kept = kept.trim_end();
    if kept.trim().is_empty() {
        text.trim_end().to_owned()
    } else {
        kept.to_owned()
    }
}

/// Where the quoted history begins: an attribution line ("On … wrote:" in the languages Seva
/// speaks and a few more), an Outlook header block, or a trailing block of `>` lines.
fn quote_start(lines: &[&str]) -> usize {
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if is_separator(t) || is_attribution(t) {
            return i;
        }
        // An attribution wrapped over two lines: "On Mon, 9 Nov 2026, Shop <a@b>" / "wrote:".
        if let Some(next) = lines.get(i + 1)
            && (t.starts_with("On ") || t.starts_with("Le ") || t.starts_with("Am "))
            && is_attribution(&format!("{t} {}", next.trim()))
        {
            return i;
        }
        // Outlook without a separator: "From: …" then "Sent: …" (or "Date: …").
        if t.starts_with("From:")
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim().starts_with("Sent:") || n.trim().starts_with("Date:"))
        {
            return i;
        }
    }
    // A block of quoted lines that runs to the end (blank lines allowed inside).
    let mut start = lines.len();
    for (i, line) in lines.iter().enumerate().rev() {
        let t = line.trim();
        if t.starts_with('>') {
            start = i;
        } else if !t.is_empty() {
            break;
        }
    }
    start
}

fn is_separator(t: &str) -> bool {
    let lower = t.to_lowercase();
    (lower.starts_with("-----") && lower.contains("original message"))
        || (t.len() >= 20 && t.chars().all(|c| c == '_'))
        || lower.starts_with("-----forwarded")
}

fn is_attribution(t: &str) -> bool {
    let t = t.trim_end();
    let english = t.starts_with("On ") && t.ends_with("wrote:");
    let others = [
        "schrieb:",
        "a écrit :",
        "a écrit:",
        "نوشت:",
        "نوشته است:",
        "ने लिखा:",
        "लिखा:",
        "लिहिले:",
    ];
    english || (t.len() > 12 && others.iter().any(|o| t.ends_with(o)))
}

/// Email HTML made safe to show: scripts, styles, event handlers and unknown tags go (the app
/// cleans again at intake), and so do quoted blocks and remote images, which would tell the
/// sender when an agent opened the mail.
pub fn clean_email_html(html: &str) -> String {
    // A deliberate list rather than ammonia's defaults: mail needs text structure, links and
    // tables; images, forms and quotes are left out.
    let tags: HashSet<&str> = [
        "a", "b", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li",
        "ol", "p", "pre", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
        "tfoot", "th", "thead", "tr", "u", "ul",
    ]
    .into_iter()
    .collect();
    let content: HashSet<&str> = ["script", "style", "blockquote", "title", "head"]
        .into_iter()
        .collect();
    let schemes: HashSet<&str> = ["http", "https", "mailto", "tel"].into_iter().collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .clean_content_tags(content)
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer nofollow"))
        .generic_attributes(["dir", "lang"].into_iter().collect())
        .tag_attributes(
            [
                ("a", ["href"].into_iter().collect()),
                ("td", ["colspan", "rowspan"].into_iter().collect()),
                ("th", ["colspan", "rowspan"].into_iter().collect()),
            ]
            .into_iter()
            .collect(),
        );
    builder.clean(html).to_string()
}

/// The reply as sent: the agent's text, then the customer's message it answers, quoted.
pub fn with_quote(reply: &str, quoted: Option<(&str, Timestamp, &str)>) -> String {
    let Some((author, at, text)) = quoted else {
        return reply.to_owned();
    };
    let mut out = String::with_capacity(reply.len() + text.len() + 80);
    out.push_str(reply.trim_end());
    out.push_str("\n\n");
    let when = at.with_timezone(&Utc).format("%a, %-d %b %Y %H:%M UTC");
    let _ = writeln!(out, "On {when}, {author} wrote:");
    // The customer's message only, and at most a screenful: the rest is in earlier mails.
    for line in trim_reply(text).lines().take(40) {
        if line.is_empty() {
            out.push_str(">\n");
        } else {
            out.push_str("> ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_attributions_and_trailing_quotes_are_trimmed() {
        let text = "Thanks, it arrived!\n\nOn Mon, 9 Nov 2026 at 10:02, Shop <s@shop.example.com> wrote:\n> Your parcel is on its way.\n";
        assert_eq!(trim_reply(text), "Thanks, it arrived!");
        let wrapped = "Yes please.\n\nOn Mon, 9 Nov 2026 at 10:02, Shop Support\n<s@shop.example.com> wrote:\n> old";
        assert_eq!(trim_reply(wrapped), "Yes please.");
        assert_eq!(trim_reply("Fine\n> a\n>\n> b\n"), "Fine");
    }

    #[test]
    fn outlook_and_persian_quotes_are_trimmed() {
        let outlook =
            "Still waiting.\n\n-----Original Message-----\nFrom: Shop\nSent: Monday\nold text";
        assert_eq!(trim_reply(outlook), "Still waiting.");
        let bare = "Still waiting.\r\nFrom: Shop <s@shop.example.com>\r\nSent: Monday\r\nold";
        assert_eq!(trim_reply(bare), "Still waiting.");
        let persian =
            "ممنون، رسید.\n\nدر تاریخ دوشنبه ۱۸ آبان ۱۴۰۵، پشتیبانی نوشت:\n> سفارش شما ارسال شد";
        assert_eq!(trim_reply(persian), "ممنون، رسید.");
    }

    #[test]
    fn a_reply_that_is_all_quote_is_kept_whole() {
        assert_eq!(trim_reply("> only a quote"), "> only a quote");
        assert_eq!(
            trim_reply("No quote here.\nSecond line."),
            "No quote here.\nSecond line."
        );
        // Quoted lines in the middle of a message are the customer's own words.
        assert_eq!(
            trim_reply("See:\n> item 3\nis wrong"),
            "See:\n> item 3\nis wrong"
        );
    }

    #[test]
    fn html_loses_scripts_quotes_and_remote_images() {
        let html = r#"<p onclick="x()">Hi<script>alert(1)</script></p><img src="http://t.example.net/p.gif"><blockquote>old</blockquote><a href="javascript:alert(1)">x</a>"#;
        let clean = clean_email_html(html);
        assert!(clean.contains("Hi"), "{clean}");
        for bad in ["script", "alert", "onclick", "img", "old", "javascript"] {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
    }

    #[test]
    fn replies_quote_the_customer_message_briefly() {
        let at = chrono::DateTime::from_timestamp(1_794_000_000, 0).unwrap_or_default();
        let body = with_quote(
            "It ships today.",
            Some(("Sara", at, "Where is it?\n\nOn x wrote:\n> old")),
        );
        assert!(body.starts_with("It ships today.\n\nOn "), "{body}");
        assert!(body.contains("Sara wrote:\n> Where is it?\n"), "{body}");
        assert!(!body.contains("old"), "{body}");
        assert_eq!(with_quote("Hi", None), "Hi");
    }
}
