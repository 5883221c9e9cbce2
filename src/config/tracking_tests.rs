//! `[tracking]`: the ordered `providers` list, the older single `provider`
//! (still accepted), per-provider tables, and the errors (exit 78 with
//! `file:line`, never the key).

use std::path::Path;

use super::{Config, Provider};

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("/etc/aliwatch/c.toml")).map_err(|e| e.0)
}

fn list(cfg: &Config) -> Vec<Provider> {
    cfg.tracking.providers.iter().collect()
}

#[test]
fn providers_list_old_provider_and_defaults() {
    use Provider::{Cainiao as C, SeventeenTrack as S};
    let key = "api_key_file = \"/run/credentials/aliwatch.service/17track-key\"\n";
    let cases: Vec<(String, Vec<Provider>)> = vec![
        // a [tracking] table without a provider: keyless Cainiao
        ("[tracking]\nrefresh_interval = \"6h\"\n".into(), vec![C]),
        ("[tracking]\nproviders = [\"cainiao\"]\n".into(), vec![C]),
        (
            format!("[tracking]\nproviders = [\"cainiao\", \"17track\"]\n{key}"),
            vec![C, S],
        ),
        (
            format!("[tracking]\nproviders = [\"17track\", \"cainiao\"]\n{key}"),
            vec![S, C],
        ),
        ("[tracking]\nproviders = []\n".into(), vec![]),
        // the older single form
        ("[tracking]\nprovider = \"cainiao\"\n".into(), vec![C]),
        (
            format!("[tracking]\nprovider = \"17track\"\n{key}"),
            vec![S],
        ),
        ("[tracking]\nprovider = \"none\"\n".into(), vec![]),
        // the key in the provider's own table
        (
            format!(
                "[tracking]\nproviders = [\"cainiao\", \"17track\"]\n[tracking.17track]\n{key}"
            ),
            vec![C, S],
        ),
    ];
    for (text, want) in cases {
        let cfg = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(list(&cfg), want, "{text}");
    }
}

#[test]
fn per_provider_base_urls_win_over_the_shared_one() {
    let cfg = parse(
        "[tracking]\nproviders = [\"cainiao\"]\nbase_url = \"http://127.0.0.1:1\"\n[tracking.cainiao]\nbase_url = \"http://127.0.0.1:2/\"\n",
    )
    .expect("parses");
    assert_eq!(
        cfg.tracking.base_url_for(Provider::Cainiao),
        "http://127.0.0.1:2"
    );
    assert_eq!(
        cfg.tracking.base_url_for(Provider::SeventeenTrack),
        "http://127.0.0.1:1"
    );
}

#[test]
fn tracking_errors_name_the_line_and_never_the_key() {
    let secret = "s3cr3t-17token";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "[tracking]\nprovider = \"cainiao\"\nproviders = [\"cainiao\"]\n".into(),
            "c.toml:3",
            "not both",
        ),
        ("[tracking]\nproviders = [\"ship24\"]\n".into(), "c.toml:2", "\"ship24\""),
        (
            "[tracking]\nproviders = [\"cainiao\", \"cainiao\"]\n".into(),
            "c.toml:2",
            "listed twice",
        ),
        (
            "[tracking]\nproviders = [\"cainiao\", \"17track\"]\n".into(),
            "c.toml:1",
            "needs api_key_file",
        ),
        (
            format!("[tracking]\nproviders = [\"cainiao\"]\napi_key = \"{secret}\"\n"),
            "c.toml:1",
            "only used with provider \"17track\"",
        ),
        (
            format!("[tracking]\nproviders = [\"cainiao\"]\n[tracking.cainiao]\napi_key = \"{secret}\"\n"),
            "c.toml:",
            "takes no API key",
        ),
    ];
    for (text, at, what) in cases {
        let e = parse(&text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        assert!(e.contains(at), "{text}: {e}");
        assert!(e.contains(what), "{text}: {e}");
        assert!(!e.contains(secret), "{text}: the key is printed: {e}");
    }
}
