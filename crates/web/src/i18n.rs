//! Translation catalogues (Fluent). Every user-visible string on a page comes from here; adding
//! a language is adding one `.ftl` file to `locales/` and a line to `LANGUAGES`.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use unic_langid::LanguageIdentifier;

/// (code, catalogue, right-to-left)
pub const LANGUAGES: [(&str, &str, bool); 4] = [
    ("en", include_str!("../locales/en.ftl"), false),
    ("fa", include_str!("../locales/fa.ftl"), true),
    ("mr", include_str!("../locales/mr.ftl"), false),
    ("hi", include_str!("../locales/hi.ftl"), false),
];

pub struct Catalogues {
    bundles: HashMap<&'static str, FluentBundle<FluentResource>>,
}

impl std::fmt::Debug for Catalogues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogues")
            .field("languages", &self.bundles.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Catalogues {
    /// Parses the built-in catalogues. They are compiled in and tested, so a broken one is a
    /// build defect, not a runtime condition.
    pub fn load() -> Self {
        let bundles = LANGUAGES
            .iter()
            .map(|&(code, source, _)| {
                let resource =
                    FluentResource::try_new(source.to_owned()).expect("catalogues parse (tested)");
                let id: LanguageIdentifier = code.parse().expect("language codes are valid");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                bundle
                    .add_resource(resource)
                    .expect("catalogues have no duplicate keys (tested)");
                (code, bundle)
            })
            .collect();
        Self { bundles }
    }

    /// The best language for a user: their saved choice, else the browser's preference, else
    /// English.
    pub fn negotiate(
        &self,
        preferred: Option<&str>,
        accept_language: Option<&str>,
    ) -> &'static str {
        let known = |tag: &str| {
            let primary = tag
                .split(['-', '_', ';'])
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            LANGUAGES.iter().map(|l| l.0).find(|code| *code == primary)
        };
        preferred
            .and_then(known)
            .or_else(|| accept_language.and_then(|header| header.split(',').find_map(known)))
            .unwrap_or("en")
    }

    pub fn tr(&self, lang: &'static str) -> Tr<'_> {
        Tr {
            catalogues: self,
            lang,
        }
    }

    fn message(&self, lang: &str, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        let lookup = |code: &str| {
            let bundle = self.bundles.get(code)?;
            let pattern = bundle.get_message(key)?.value()?;
            let mut errors = Vec::new();
            Some(
                bundle
                    .format_pattern(pattern, args, &mut errors)
                    .into_owned(),
            )
        };
        lookup(lang)
            .or_else(|| lookup("en"))
            .unwrap_or_else(|| key.to_owned())
    }
}

/// The strings of one language, as templates use them.
#[derive(Debug, Clone, Copy)]
pub struct Tr<'a> {
    catalogues: &'a Catalogues,
    pub lang: &'static str,
}

impl Tr<'_> {
    pub fn t(&self, key: &str) -> String {
        self.catalogues.message(self.lang, key, None)
    }

    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        self.catalogues.message(self.lang, key, Some(&args))
    }

    /// A message with a count, so that plural forms are chosen by number (`[one]`, `[other]`).
    pub fn t_count(&self, key: &str, name: &str, count: i64) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), count);
        self.catalogues.message(self.lang, key, Some(&args))
    }

    /// A message whose form is chosen by `$count` (a number, so `[one]` and `[other]` match),
    /// with text arguments beside it (such as the count written in the reader's digits).
    pub fn t_plural(&self, key: &str, count: i64, values: &[(&str, &str)]) -> String {
        let mut args = FluentArgs::new();
        args.set("count", count);
        for (name, value) in values {
            args.set((*name).to_owned(), (*value).to_owned());
        }
        self.catalogues.message(self.lang, key, Some(&args))
    }

    pub fn t_args(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set((*name).to_owned(), (*value).to_owned());
        }
        self.catalogues.message(self.lang, key, Some(&args))
    }

    /// The language's own name, for the language picker.
    pub fn language_name(&self, code: &str) -> String {
        self.catalogues.message(code, "language-name", None)
    }

    pub fn dir(&self) -> &'static str {
        if LANGUAGES.iter().any(|l| l.0 == self.lang && l.2) {
            "rtl"
        } else {
            "ltr"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(source: &str) -> Vec<String> {
        let resource = FluentResource::try_new(source.to_owned()).expect("catalogue parses");
        let mut keys: Vec<String> = resource
            .entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_catalogue_has_every_key_english_has() {
        let english = keys(LANGUAGES[0].1);
        assert!(english.len() > 10);
        for (code, source, _) in &LANGUAGES[1..] {
            let theirs = keys(source);
            let missing: Vec<_> = english.iter().filter(|k| !theirs.contains(k)).collect();
            assert!(missing.is_empty(), "{code}.ftl lacks {missing:?}");
            let extra: Vec<_> = theirs.iter().filter(|k| !english.contains(k)).collect();
            assert!(
                extra.is_empty(),
                "{code}.ftl has keys English lacks: {extra:?}"
            );
        }
    }

    /// Every literal key the pages and handlers ask for (`t("…")`, `t1("…"`, `t_args("…"`,
    /// `t_count("…"`, `t_plural("…"`)
    /// exists in English, so no page shows a raw key.
    #[test]
    fn every_key_the_code_uses_is_in_the_english_catalogue() {
        let english = keys(LANGUAGES[0].1);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["templates", "src", "src/ui", "src/api"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("source folder") {
                let path = entry.expect("entry").path();
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        let mut used = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            for call in [
                ".t(\"",
                ".t1(\"",
                ".t_args(\"",
                ".t_count(\"",
                ".t_plural(\"",
                "tr.t(\"",
            ] {
                for (i, _) in text.match_indices(call) {
                    let key: String = text[i + call.len()..]
                        .chars()
                        .take_while(|c| *c != '"')
                        .collect();
                    if key.is_empty() || key.contains('{') {
                        continue;
                    }
                    used += 1;
                    assert!(
                        english.contains(&key),
                        "{} asks for {key:?}, which en.ftl lacks",
                        file.display()
                    );
                }
            }
        }
        assert!(used > 100, "the scan found the calls ({used})");
    }

    #[test]
    fn the_saved_choice_wins_then_the_browser_then_english() {
        let c = Catalogues::load();
        assert_eq!(c.negotiate(Some("fa"), Some("hi-IN,en;q=0.8")), "fa");
        assert_eq!(c.negotiate(None, Some("de-DE, mr-IN;q=0.9")), "mr");
        assert_eq!(c.negotiate(None, Some("de-DE")), "en");
        assert_eq!(c.tr("fa").dir(), "rtl");
        assert_eq!(c.tr("hi").dir(), "ltr");
        assert_eq!(c.tr("fa").t("sign-in"), "ورود");
    }
}
