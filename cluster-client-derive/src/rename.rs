//! `rename_all = "..."`: the wire names of a trait's methods from their Rust names, as serde's
//! `rename_all` does for fields, so that a method maps to the name another language uses (the Node
//! package's methods are `camelCase`).

use syn::LitStr;

/// A rule that turns a `snake_case` method name into its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rename {
    /// `get_data` → `getData`.
    Camel,
    /// `get_data` → `GetData`.
    Pascal,
    /// `get_data` → `get_data`.
    Snake,
    /// `get_data` → `GET_DATA`.
    ScreamingSnake,
    /// `get_data` → `get-data`.
    Kebab,
    /// `get_data` → `getdata`.
    Lower,
    /// `get_data` → `GETDATA`.
    Upper,
}

impl Rename {
    const ALL: [(&'static str, Rename); 7] = [
        ("camelCase", Rename::Camel),
        ("PascalCase", Rename::Pascal),
        ("snake_case", Rename::Snake),
        ("SCREAMING_SNAKE_CASE", Rename::ScreamingSnake),
        ("kebab-case", Rename::Kebab),
        ("lowercase", Rename::Lower),
        ("UPPERCASE", Rename::Upper),
    ];

    /// The rule a string literal names, or an error listing the rules.
    pub(crate) fn parse(rule: &LitStr) -> syn::Result<Rename> {
        let value = rule.value();
        Rename::ALL
            .iter()
            .find(|(name, _)| *name == value)
            .map(|&(_, rename)| rename)
            .ok_or_else(|| {
                let names: Vec<String> = Rename::ALL
                    .iter()
                    .map(|(name, _)| format!("\"{name}\""))
                    .collect();
                syn::Error::new_spanned(
                    rule,
                    format!(
                        "unknown `rename_all` rule \"{value}\", expected one of: {}",
                        names.join(", ")
                    ),
                )
            })
    }

    /// The wire name of the method `name` (a Rust identifier, in `snake_case` by convention).
    pub(crate) fn apply(self, name: &str) -> String {
        let words = name.split('_').filter(|word| !word.is_empty());
        match self {
            Rename::Snake => name.to_owned(),
            Rename::Lower => name.replace('_', "").to_lowercase(),
            Rename::Upper => name.replace('_', "").to_uppercase(),
            Rename::ScreamingSnake => name.to_uppercase(),
            Rename::Kebab => words.collect::<Vec<_>>().join("-"),
            Rename::Pascal => words.map(capitalized).collect(),
            Rename::Camel => words
                .enumerate()
                .map(|(i, word)| {
                    if i == 0 {
                        word.to_owned()
                    } else {
                        capitalized(word)
                    }
                })
                .collect(),
        }
    }
}

/// `word` with its first letter upper case.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule() {
        let cases = [
            (Rename::Camel, "get_data", "getData"),
            (Rename::Camel, "lookup", "lookup"),
            (Rename::Camel, "get_http_url", "getHttpUrl"),
            (Rename::Pascal, "get_data", "GetData"),
            (Rename::Snake, "get_data", "get_data"),
            (Rename::ScreamingSnake, "get_data", "GET_DATA"),
            (Rename::Kebab, "get_data", "get-data"),
            (Rename::Lower, "get_data", "getdata"),
            (Rename::Upper, "get_data", "GETDATA"),
        ];
        for (rule, name, wire) in cases {
            assert_eq!(rule.apply(name), wire, "{rule:?} of {name}");
        }
    }

    #[test]
    fn an_unknown_rule_lists_the_rules() {
        let rule: LitStr = syn::parse_quote!("camelcase");
        let err = Rename::parse(&rule).expect_err("unknown");
        assert!(err.to_string().contains("\"camelCase\""), "{err}");
    }
}
