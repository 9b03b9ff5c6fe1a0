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
    fn queries_are_split_lower_cased_and_bounded() {
        assert_eq!(
            query_terms("  Where IS my \"order\"?! ", 10),
            ["where", "is", "my", "order"]
        );
        assert_eq!(query_terms("a b c d e f", 3).len(), 3);
        assert!(query_terms("*** ??? \"", 10).is_empty());
    }
}
