//! Plain-text layout by display width: East Asian wide characters take two
//! columns (UAX #11, `unicode-width`), so Chinese, Japanese and Korean item
//! titles line up and wrap like Latin ones.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

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
