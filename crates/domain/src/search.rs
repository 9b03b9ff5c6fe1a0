//! How text is prepared for full-text search, the same way when it is indexed and when it is
//! searched, so that a word matches however the customer or agent typed it.

/// Normalises text for the search index and for queries:
/// - the zero-width non-joiner (U+200C), which Persian writers use inside words and searchers
///   usually omit, is removed, as are the zero-width joiner and Arabic tatweel;
/// - Arabic yeh and kaf (ي ك, and alef maksura ى) become the Persian ی and ک that Iranian
///   keyboards type;
/// - optional Arabic vowel marks (harakat) are dropped;
/// - Persian, Arabic-Indic and Devanagari digits become ASCII digits.
///
/// Devanagari vowel signs are kept: they are part of the word (घर and घार are different words).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // Joiners, tatweel and optional vowel marks carry no meaning for search.
            '\u{200C}' | '\u{200D}' | '\u{0640}' | '\u{064B}'..='\u{0652}' | '\u{0670}' => {}
            '\u{064A}' | '\u{0649}' => out.push('\u{06CC}'),
            '\u{0643}' => out.push('\u{06A9}'),
            '\u{06F0}'..='\u{06F9}' => out.push(char::from(b'0' + (u32::from(c) - 0x06F0) as u8)),
            '\u{0660}'..='\u{0669}' => out.push(char::from(b'0' + (u32::from(c) - 0x0660) as u8)),
            '\u{0966}'..='\u{096F}' => out.push(char::from(b'0' + (u32::from(c) - 0x0966) as u8)),
            _ => out.push(c),
        }
    }
    out
}

/// The words of a query, normalised, at most `max` of them, each at most 64 characters.
/// Everything that is not a letter, mark or digit separates words.
pub fn query_terms(query: &str, max: usize) -> Vec<String> {
    normalize(query)
        .split(|c: char| !(c.is_alphanumeric() || is_mark(c)))
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
        .take(max)
        .collect()
}

/// Combining marks that belong inside words: Devanagari vowel signs, virama, nukta, anusvara;
/// `char::is_alphanumeric` does not count them.
fn is_mark(c: char) -> bool {
    matches!(c, '\u{0900}'..='\u{0903}' | '\u{093A}'..='\u{094F}' | '\u{0951}'..='\u{0957}' | '\u{0962}' | '\u{0963}')
}

/// A short extract of `text` around the first word that matches one of `terms` (as produced
/// by [`query_terms`]), HTML-escaped, with every matching word in `<mark>`. About `words` words
/// long; "…" marks a cut.
pub fn snippet_html(text: &str, terms: &[String], words: usize) -> String {
    // Tokens alternate between words and the separators between them, so the text can be
    // rebuilt exactly.
    let mut tokens: Vec<(bool, &str)> = Vec::new();
    let mut start = 0;
    let mut in_word = None;
    for (i, c) in text.char_indices() {
        let word_char = c.is_alphanumeric() || is_mark(c);
        if in_word != Some(word_char) {
            if i > start {
                tokens.push((in_word.unwrap_or(false), &text[start..i]));
            }
            start = i;
            in_word = Some(word_char);
        }
    }
    if start < text.len() {
        tokens.push((in_word.unwrap_or(false), &text[start..]));
    }
    let matches = |token: &str| terms.iter().any(|t| token.to_lowercase() == *t);
    let first = tokens
        .iter()
        .position(|(w, t)| *w && matches(t))
        .unwrap_or(0);
    let word_positions: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, (w, _))| *w)
        .map(|(i, _)| i)
        .collect();
    let first_word = word_positions.iter().position(|&i| i >= first).unwrap_or(0);
    let from_word = first_word.saturating_sub(words / 3);
    let to_word = (from_word + words).min(word_positions.len());
    // Whole text at either end keeps its leading or trailing punctuation.
    let from = if from_word == 0 {
        0
    } else {
        word_positions[from_word]
    };
    let to = if to_word >= word_positions.len() || to_word == 0 {
        tokens.len()
    } else {
        word_positions[to_word - 1] + 1
    };
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    for &(is_word, token) in &tokens[from..to] {
        let marked = is_word && matches(token);
        if marked {
            out.push_str("<mark>");
        }
        for c in token.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                _ => out.push(c),
            }
        }
        if marked {
            out.push_str("</mark>");
        }
    }
    if to < tokens.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persian_words_match_with_or_without_the_zero_width_non_joiner() {
        assert_eq!(normalize("می\u{200C}خواهم"), normalize("میخواهم"));
        assert_eq!(query_terms("می\u{200C}خواهم", 5), ["میخواهم"]);
    }

    #[test]
    fn arabic_letter_forms_and_digits_become_persian_letters_and_ascii_digits() {
        assert_eq!(normalize("كيف"), "کیف");
        assert_eq!(normalize("سفارش ۱۲۳۴"), "سفارش 1234");
        assert_eq!(normalize("ऑर्डर #९२४३८"), "ऑर्डर #92438");
        assert_eq!(normalize("مُحَمَّد"), "محمد");
    }

    #[test]
    fn devanagari_words_keep_their_vowel_signs() {
        assert_eq!(
            query_terms("माझी ऑर्डर कुठे आहे?", 10),
            ["माझी", "ऑर्डर", "कुठे", "आहे"]
        );
        assert_eq!(query_terms("रिफ़ंड नहीं मिला", 10), ["रिफ़ंड", "नहीं", "मिला"]);
    }

    #[test]
    fn snippets_mark_matches_escape_the_rest_and_cut_around_the_first_match() {
        let terms = query_terms("parcel", 4);
        assert_eq!(
            snippet_html("Where is my <b>Parcel</b>?", &terms, 16),
            "Where is my &lt;b&gt;<mark>Parcel</mark>&lt;/b&gt;?"
        );
        let long = "one two three four five six seven eight parcel nine ten eleven twelve";
        assert_eq!(
            snippet_html(long, &terms, 6),
            "…seven eight <mark>parcel</mark> nine ten eleven…"
        );
        let marathi = snippet_html("माझी ऑर्डर अजून आली नाही", &query_terms("ऑर्डर", 4), 16);
        assert_eq!(marathi, "माझी <mark>ऑर्डर</mark> अजून आली नाही");
    }

    #[test]
    fn queries_are_split_lower_cased_and_bounded() {
        assert_eq!(
            query_terms("  Where IS my \"order\"?! ", 10),
            ["where", "is", "my", "order"]
        );
        assert_eq!(query_terms("a b c d e f", 3).len(), 3);
        assert!(query_terms("*** ??? \"", 10).is_empty());
    }
}
