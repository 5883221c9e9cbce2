//! Plain-text layout by display width: East Asian wide characters take two
//! columns (UAX #11, `unicode-width`), so Chinese, Japanese and Korean item
//! titles line up and wrap like Latin ones.
//!
//! And [`readable`], the one cleaner of text from emails and providers
//! before a person reads it, on every medium: terminal (`status`), HTML
//! (dashboard, digest), calendar and push all go through it.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Whether `c` must never reach a reader: control characters (C0, C1,
/// DEL) and the invisible format characters (Unicode general category Cf,
/// and the line and paragraph separators). Among them the bidirectional
/// embeddings, overrides and isolates (U+202A–202E, U+2066–2069) and marks
/// (U+200E, U+200F, U+061C), with which a sender makes "Delivered" of
/// `derevileD` or reorders the digits of a date or a number (UAX #9;
/// "Trojan Source", CVE-2021-42574), and zero-width characters and tags
/// that hide text.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// `s` as a person may read it: line breaks and tabs kept, every other
/// [hidden](is_hidden) character removed (a control character becomes a
/// space, so words it separated stay apart). The one cleaner of text from
/// emails and providers; every renderer calls it.
pub fn readable(s: &str) -> String {
    if !s.chars().any(is_hidden) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push(' '),
            c if is_hidden(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` columns, an ellipsis marking the cut.
pub fn shorten(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    let trimmed = out.trim_end().to_owned();
    trimmed + "…"
}

/// `s` padded with spaces to `cols` columns (never cut).
pub fn pad(s: &str, cols: usize) -> String {
    let w = width(s);
    if w >= cols {
        s.to_owned()
    } else {
        format!("{s}{}", " ".repeat(cols - w))
    }
}

/// Wraps `text` to `max` columns: the first line starts with `first`, the
/// others with `rest` (a hanging indent). Words longer than a line (a long
/// URL) are split by columns, so no line is ever wider than `max`.
pub fn wrap(text: &str, max: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut line_w = width(first);
    let mut empty = true;
    let rest_w = width(rest);
    for word in text.split_whitespace() {
        let ww = width(word);
        let need = if empty { ww } else { ww + 1 };
        if !empty && line_w + need > max {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            line_w = rest_w;
            empty = true;
        }
        if ww > max.saturating_sub(line_w) {
            // split the word by columns
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if line_w + cw > max && !empty {
                    out.push_str(line.trim_end());
                    out.push('\n');
                    line = rest.to_owned();
                    line_w = rest_w;
                }
                line.push(c);
                line_w += cw;
                empty = false;
            }
            continue;
        }
        if !empty {
            line.push(' ');
            line_w += 1;
        }
        line.push_str(word);
        line_w += ww;
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// A value for a URL's query or path segment: RFC 3986 unreserved
/// characters as they are, every other byte percent-encoded.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_count_two_columns() {
        assert_eq!(width("LED lamp"), 8);
        assert_eq!(width("台灯"), 4);
        assert_eq!(shorten("台灯台灯台灯", 7), "台灯台…");
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(pad("台灯", 6), "台灯  ");
    }

    #[test]
    fn wraps_with_a_hanging_indent_and_never_overflows() {
        let text = "Open a dispute by 2026-12-19 — the parcel never arrived and protection ended on 2026-12-04";
        let got = wrap(text, 40, "* ", "  ");
        for l in got.lines() {
            assert!(width(l) <= 40, "{l:?}");
        }
        assert!(got.starts_with("* Open a dispute"));
        assert!(got.lines().skip(1).all(|l| l.starts_with("  ")));
        let url = "https://www.aliexpress.com/p/order/detail.html?orderId=81243156403000261234";
        for l in wrap(url, 30, "    ", "    ").lines() {
            assert!(width(l) <= 30, "{l:?}");
        }
        let cjk = "这是一个很长的中文商品标题用于测试换行是否按照显示宽度计算而不是字符数";
        for l in wrap(cjk, 20, "", "  ").lines() {
            assert!(width(l) <= 20, "{l:?}");
        }
    }
}
