//! Which bytes of a config document are secret, by their position in the
//! TOML structure, not by how a line looks: the document is read into a
//! tree of spanned keys and values, and every value under a key that is not
//! a known non-secret key of its table is secret — a misspelt `pssword`,
//! an unknown table, `imap = { password = … }` (an inline table) and
//! `notify = [{ url = … }]` (an array of inline tables) included. Error
//! messages show the source line of an error; when that line touches a
//! secret value it is redacted (see `Located::message` in `config.rs`).
//!
//! When the document is not valid TOML there is no tree, and the caller
//! falls back to redacting every line that holds a secret-looking key.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// The keys of each table whose values are not secret (the config's own
/// schema, `config/raw.rs`). Any other key is treated as a secret.
const PUBLIC_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "database",
            "timezone",
            "command_timeout",
            "imap",
            "smtp",
            "tracking",
            "digest",
            "protection",
            "http",
            "notify",
        ],
    ),
    (
        "imap",
        &[
            "name",
            "host",
            "port",
            "security",
            "username",
            "password_file",
            "auth",
            "ca_file",
            "mailboxes",
            "backfill_days",
            "idle",
            "poll_interval",
            "max_message_size",
        ],
    ),
    (
        "smtp",
        &[
            "host",
            "port",
            "security",
            "username",
            "password_file",
            "ca_file",
            "from",
            "to",
        ],
    ),
    (
        "tracking",
        &[
            "provider",
            "providers",
            "api_key_file",
            "base_url",
            "refresh_interval",
        ],
    ),
    // `[tracking.NAME]`: a provider's own settings (its key is secret).
    ("tracking.cainiao", &["base_url"]),
    ("tracking.17track", &["api_key_file", "base_url"]),
    ("digest", &["enabled", "at", "skip_when_empty"]),
    ("protection", &["days", "warn_before", "stalled_after"]),
    ("http", &["listen", "token_file"]),
    (
        "notify",
        &[
            "name",
            "type",
            "token_file",
            "ca_file",
            "events",
            "username",
            "password_file",
            "discovery_prefix",
            "topic_prefix",
        ],
    ),
];

/// Whether `key` in table `table` (`""` at the top) holds no secret.
fn public(table: &str, key: &str) -> bool {
    PUBLIC_KEYS
        .iter()
        .find(|(t, _)| *t == table)
        .is_some_and(|(_, keys)| keys.contains(&key))
}

/// For a document that is not valid TOML (no tree): whether `line` sets
/// a key, its own or one inside an inline table (`imap = { pssword = … }`),
/// that no table of the config knows as non-secret, or sits in a table
/// the config does not have.
pub fn line_looks_secret(line: &str, table: &str) -> bool {
    let table = table.trim_matches(['[', ']', ' ']);
    if !table.is_empty() && !PUBLIC_KEYS.iter().any(|(t, _)| *t == table) {
        return true;
    }
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let before = rest.get(..eq).unwrap_or_default();
        let key = before
            .rsplit(['{', ',', '['])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches(['"', '\'']);
        let known = !key.is_empty()
            && key.split('.').all(|k| {
                let k = k.trim().trim_matches(['"', '\'']);
                PUBLIC_KEYS.iter().any(|(_, keys)| keys.contains(&k))
            });
        if !known {
            return true;
        }
        rest = rest.get(eq + 1..).unwrap_or_default();
        // Skip the value: up to the next separator of an inline table.
        match rest.find([',', '{']) {
            Some(i) => rest = rest.get(i + 1..).unwrap_or_default(),
            None => break,
        }
    }
    false
}

/// A TOML value with the spans of its keys and values.
enum Node {
    Table(BTreeMap<Spanned<String>, Spanned<Node>>),
    Array(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<Spanned<Node>>()? {
                    v.push(x);
                }
                Ok(Node::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut t = BTreeMap::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let v = map.next_value::<Spanned<Node>>()?;
                    t.insert(k, v);
                }
                Ok(Node::Table(t))
            }
        }
        d.deserialize_any(V)
    }
}

/// The byte ranges of every secret value in `text` (see the module
/// comment), or `None` when `text` is not valid TOML.
pub fn secret_ranges(text: &str) -> Option<Vec<Range<usize>>> {
    let root: BTreeMap<Spanned<String>, Spanned<Node>> = toml::from_str(text).ok()?;
    let mut out = Vec::new();
    walk_table("", &root, &mut out);
    Some(out)
}

fn walk_table(
    table: &str,
    t: &BTreeMap<Spanned<String>, Spanned<Node>>,
    out: &mut Vec<Range<usize>>,
) {
    for (k, v) in t {
        walk_value(table, k.get_ref(), v, out);
    }
}

fn walk_value(table: &str, key: &str, v: &Spanned<Node>, out: &mut Vec<Range<usize>>) {
    // The top level's known keys name tables, whatever their form:
    // `[imap]`, `imap = {…}`, `[[notify]]`, `notify = [{…}]`; below it,
    // a table is known when PUBLIC_KEYS lists it (`[tracking.17track]`).
    let path = if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    };
    let known_table = if table.is_empty() {
        public("", key)
    } else {
        PUBLIC_KEYS.iter().any(|(t, _)| *t == path)
    };
    match v.get_ref() {
        Node::Table(inner) if known_table => walk_table(&path, inner, out),
        Node::Array(items) if known_table || public(table, key) => {
            for item in items {
                match item.get_ref() {
                    Node::Table(inner) if known_table => walk_table(&path, inner, out),
                    Node::Scalar if !known_table => {}
                    _ => out.push(item.span()),
                }
            }
        }
        Node::Scalar if public(table, key) => {}
        // An unknown or secret key, or a table where none belongs
        // (`[imap.password]`): all of it.
        _ => out.push(v.span()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_texts(text: &str) -> Vec<String> {
        secret_ranges(text)
            .expect("valid toml")
            .into_iter()
            .map(|r| text.get(r).unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn secret_values_are_found_by_position_whatever_the_key_or_table_form() {
        let text = r#"
database = "/var/lib/aliwatch/db"
imap = { host = "h", username = "me", pssword = "hunter1" }
notify = [{ type = "ntfy", url = "https://ntfy.sh/hunter2" }]

[smtp]
host = "h"
assword = "hunter3"
password_command = "pass hunter4"

[tracking]
api_key = "hunter5"
"#;
        let got = secret_texts(text).join(" ");
        for s in ["hunter1", "hunter2", "hunter3", "hunter4", "hunter5"] {
            assert!(got.contains(s), "{s} not in {got}");
        }
        for s in ["/var/lib", "\"me\"", "\"ntfy\""] {
            assert!(!got.contains(s), "{s} in {got}");
        }
        assert!(!secret_texts("[smtp]\nhost = \"h\"\n")
            .iter()
            .any(|s| s.contains('h')));
    }

    /// A mistake in a provider's own table was printed as `<redacted>`
    /// (the whole sub-table counted as secret), so the user could not see
    /// what to fix; its key stays hidden.
    #[test]
    fn a_provider_table_shows_its_url_and_hides_its_key() {
        let text = r#"
[tracking]
providers = ["cainiao", "17track"]

[tracking.cainiao]
base_url = "htp://typo.example"

[tracking.17track]
base_url = "https://api.example"
api_key_file = "/etc/aliwatch/17track-key"
api_key = "hunter6"
api_key_command = "pass hunter7"
"#;
        let got = secret_texts(text).join(" ");
        for s in ["hunter6", "hunter7"] {
            assert!(got.contains(s), "{s} not in {got}");
        }
        for s in ["typo.example", "api.example", "17track-key"] {
            assert!(!got.contains(s), "{s} in {got}");
        }
    }
}
