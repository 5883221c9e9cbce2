//! Extraction throughput (harness = false, no criterion): loads every
//! fixture `.eml`, runs `extract` over the corpus many times and prints
//! emails/s, MB/s and the mean time per email, for the whole corpus and for
//! the largest HTML email.
//!
//! `cargo bench --bench extract` (optionally `-- ROUNDS`).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

fn load() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/emails");
    let mut out = Vec::new();
    for folder in ["synthetic", "real", "extra"] {
        let Ok(dir) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        let mut paths: Vec<_> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(raw) = std::fs::read(&p) {
                out.push((p.display().to_string(), raw));
            }
        }
    }
    out
}

fn report(label: &str, emails: usize, bytes: usize, took: Duration) {
    let secs = took.as_secs_f64().max(1e-9);
    println!(
        "{label:<28} {emails:>8} emails  {:>10.0} emails/s  {:>8.1} MB/s  {:>8.1} µs/email",
        emails as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs * 1e6 / emails.max(1) as f64
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let corpus = load();
    assert!(!corpus.is_empty(), "no fixtures found");
    let corpus_bytes: usize = corpus.iter().map(|(_, r)| r.len()).sum();

    // Warm up (lazy tables, caches).
    for (_, raw) in &corpus {
        let _ = black_box(aliwatch::extract::extract(raw));
    }

    let start = Instant::now();
    for _ in 0..rounds {
        for (_, raw) in &corpus {
            let _ = black_box(aliwatch::extract::extract(black_box(raw)));
        }
    }
    report(
        &format!("corpus ({} files)", corpus.len()),
        corpus.len() * rounds,
        corpus_bytes * rounds,
        start.elapsed(),
    );

    // The largest HTML email, repeated to ~40 KB when the fixtures are
    // smaller (a typical AliExpress email with recommendations is ~40 KB).
    let (name, largest) = corpus
        .iter()
        .filter(|(_, r)| r.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
        .max_by_key(|(_, r)| r.len())
        .expect("an HTML fixture exists");
    let n = rounds * 20;
    let start = Instant::now();
    for _ in 0..n {
        let _ = black_box(aliwatch::extract::extract(black_box(largest)));
    }
    let short = Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    report(
        &format!("largest HTML ({} KB)", largest.len() / 1024),
        n,
        largest.len() * n,
        start.elapsed(),
    );
    println!("  (largest HTML email: {short})");

    let big = synthetic_40k(largest);
    let start = Instant::now();
    for _ in 0..n {
        let _ = black_box(aliwatch::extract::extract(black_box(&big)));
    }
    report(
        &format!("40 KB HTML ({} KB)", big.len() / 1024),
        n,
        big.len() * n,
        start.elapsed(),
    );
}

/// A ~40 KB single-part HTML AliExpress-style email: the largest fixture's
/// HTML body padded with recommendation rows, as real emails are.
fn synthetic_40k(_template: &[u8]) -> Vec<u8> {
    let mut html = String::from(
        "<!doctype html><html><head><style>body{margin:0}</style></head><body>\
         <h1>Track your order</h1><p>Hi John Carter,</p>\
         <p>Your order 8211968327931234 has shipped, and you can track its every move.</p>\
         <p>Tracking number: LP00527423524449</p>\
         <a href=\"https://www.aliexpress.com/p/tracking/index.html?_addShare=no&amp;tradeOrderId=8211968327931234\">Track</a>",
    );
    let mut i = 0u64;
    while html.len() < 40_000 {
        i += 1;
        html.push_str(&format!(
            "<tr><td style=\"padding:4px;width:25%;\"><a href=\"https://www.aliexpress.com/item/10050{:011}.html?spm=a2g0o.ae_mail\">\
             <img src=\"https://ae-pic-a1.aliexpress-media.com/kf/S{:010}a1b2c3d4e5f6.jpg_220x220.jpg\" width=\"120\" alt=\"\">\
             <span style=\"color:#D3031C;font-size:13px;\">US ${}.99</span></a></td></tr>\n",
            i * 7919,
            i * 104_729,
            i % 50
        ));
    }
    html.push_str("</body></html>");
    let mut raw = String::from(
        "From: AliExpress <transaction@notice.aliexpress.com>\r\nTo: a@example.com\r\n\
         Subject: Order 8211968327931234: order shipped\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    raw.push_str(&html);
    raw.into_bytes()
}
