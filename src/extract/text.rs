//! Text plumbing for the extractor: HTML to text, entity decoding, the
//! little scanners (tokens, gaps between a label and its value) and date
//! parsing. Language-free: every word list comes from `lang.rs`.
//!
//! HTML is flattened so that block elements (`p`, `div`, `td`, `br` …) become
//! line breaks and inline elements (`span`, `b`, `a` …) vanish without a
//! trace: a number split across inline tags (`LP0052<span>7423…</span>`) comes
//! out whole, while table cells stay apart. `style`, `script`, `head` and
//! comments are dropped. Attributes are not text; links are read from the
//! raw HTML separately (stripping tags would destroy them, see docs §3).

use chrono::NaiveDate;
use regex::Regex;
use std::sync::LazyLock;

use super::lang;

/// Folds the characters mail tools put in and around numbers and labels:
/// zero-width characters and soft hyphens (inserted inside long numbers)
/// are dropped; no-break, narrow and thin spaces (French `De\u{a0}:`,
/// grouped digits) become plain spaces; full-width ASCII (`１２３`, `：`,
/// common in Japanese and Chinese mail) becomes ASCII.
pub fn fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}' => None,
            '\u{a0}' | '\u{2007}' | '\u{2009}' | '\u{202f}' => Some(' '),
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0),
            _ => Some(c),
        })
        .collect()
}

/// [`fold`] and lower-casing in one pass (the body is the largest string the
/// extractor builds; one pass instead of two keeps it cheap).
pub fn fold_lower(s: &str) -> String {
    if s.contains('Σ') {
        // Final sigma depends on context: leave it to `str::to_lowercase`.
        return fold(s).to_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            _ if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}' => {}
            '\u{a0}' | '\u{2007}' | '\u{2009}' | '\u{202f}' => out.push(' '),
            '\u{ff01}'..='\u{ff5e}' => {
                if let Some(a) = char::from_u32(c as u32 - 0xfee0) {
                    out.push(a.to_ascii_lowercase());
                }
            }
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Flattens HTML to text (see module doc) and decodes entities.
pub fn html_to_text(html: &str, out: &mut String) {
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            decode_entities(rest, out);
            break;
        };
        let (text, tail) = rest.split_at(lt);
        decode_entities(text, out);
        rest = tail;
        // Comment.
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = match after.find("-->") {
                Some(end) => after.get(end + 3..).unwrap_or(""),
                None => "",
            };
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // An unterminated tag: the rest is not text we can trust.
            break;
        };
        let tag = rest.get(1..gt).unwrap_or("");
        rest = rest.get(gt + 1..).unwrap_or("");
        let closing = tag.starts_with('/');
        let name_src = tag.trim_start_matches('/');
        let name_len = name_src
            .bytes()
            .take_while(u8::is_ascii_alphanumeric)
            .count();
        let name = name_src.get(..name_len).unwrap_or("");
        match tag_class(name) {
            TagClass::Skip if !closing && !tag.ends_with('/') => {
                rest = skip_until_close(rest, name);
                out.push('\n');
            }
            TagClass::Skip | TagClass::Block => out.push('\n'),
            TagClass::Inline => {}
        }
    }
}

enum TagClass {
    Skip,
    Block,
    Inline,
}

/// Classifies a tag name without allocating (ASCII case-insensitive).
fn tag_class(name: &str) -> TagClass {
    let mut buf = [0u8; 12];
    if name.len() > buf.len() {
        return TagClass::Inline;
    }
    for (d, s) in buf.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let lower = buf.get(..name.len()).unwrap_or(&[]);
    match lower {
        // Never text.
        b"style" | b"script" | b"head" => TagClass::Skip,
        // Block-level (or cell) elements: they separate text.
        b"p" | b"div" | b"br" | b"td" | b"th" | b"tr" | b"table" | b"tbody" | b"thead" | b"li"
        | b"ul" | b"ol" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"hr" | b"blockquote"
        | b"section" | b"article" | b"header" | b"footer" | b"center" | b"dd" | b"dt" | b"dl"
        | b"pre" | b"title" | b"body" | b"html" | b"img" | b"button" => TagClass::Block,
        _ => TagClass::Inline,
    }
}

/// Skips to just after `</name>` (ASCII case-insensitive).
fn skip_until_close<'a>(s: &'a str, name: &str) -> &'a str {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(pos) = s.get(i..).and_then(|t| t.find("</")) {
        let start = i + pos + 2;
        let cand = bytes.get(start..start + name.len());
        if cand.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes())) {
            return match s.get(start..).and_then(|t| t.find('>')) {
                Some(gt) => s.get(start + gt + 1..).unwrap_or(""),
                None => "",
            };
        }
        i = start;
    }
    ""
}

/// Decodes HTML character references in `s` and appends to `out`.
pub fn decode_entities(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        let (before, tail) = rest.split_at(amp);
        out.push_str(before);
        // Look for ';' within the longest entity's reach.
        let window_end = tail
            .char_indices()
            .take(MAX_ENTITY_NAME + 2)
            .find(|&(_, c)| c == ';')
            .map(|(i, _)| i);
        let decoded = window_end.and_then(|semi| {
            let name = tail.get(1..semi)?;
            Some((entity(name)?, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = tail.get(len..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
}

/// The longest entity name of HTML5 (`CounterClockwiseContourIntegral`).
const MAX_ENTITY_NAME: usize = 32;

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return char::from_u32(code);
    }
    // What the extractor reads differently from the browser: a no-break
    // space is a space (numbers are written "8123&nbsp;4567"), the
    // zero-width joiners are the zero-width space the text step drops.
    match name {
        "nbsp" => Some(' '),
        "zwnj" | "zwj" => Some('\u{200b}'),
        _ => named_entity(name),
    }
}

/// Every other named character reference of HTML5, from mail-parser's
/// full table (through its public token decoder; an unknown name comes
/// back unchanged).
fn named_entity(name: &str) -> Option<char> {
    if name.is_empty()
        || name.len() > MAX_ENTITY_NAME
        || !name.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let mut token = [0u8; MAX_ENTITY_NAME + 2];
    let len = name.len() + 2;
    let slot = token.get_mut(..len)?;
    slot.fill(b';');
    *slot.first_mut()? = b'&';
    slot.get_mut(1..len - 1)?.copy_from_slice(name.as_bytes());
    let mut out = String::new();
    mail_parser::decoders::html::add_html_token(&mut out, slot, false);
    let mut chars = out.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Scripts written without spaces between words (CJK, Hangul, kana): labels
/// there have no word boundaries.
pub fn is_unspaced(c: char) -> bool {
    (c as u32) >= 0x1100
}

/// Hebrew and Arabic attach prepositions and articles to the word, so a
/// label there may start mid-word.
pub fn is_prefixing_script(c: char) -> bool {
    (0x0590..0x0800).contains(&(c as u32))
}

/// True when a phrase found at `start..end` in `hay` stands at a word start.
pub fn at_word_start(hay: &str, start: usize, phrase: &str) -> bool {
    let Some(first) = phrase.chars().next() else {
        return false;
    };
    if is_unspaced(first) || is_prefixing_script(first) || !first.is_alphanumeric() {
        return true;
    }
    match hay.get(..start).and_then(|b| b.chars().next_back()) {
        Some(prev) => !prev.is_alphanumeric(),
        None => true,
    }
}

/// Extends a label match over the rest of its word (inflections), for
/// spaced scripts only. Returns the new end.
pub fn extend_word(hay: &str, end: usize, phrase: &str) -> usize {
    let Some(last) = phrase.chars().next_back() else {
        return end;
    };
    if is_unspaced(last) || !last.is_alphabetic() {
        return end;
    }
    let tail = hay.get(end..).unwrap_or("");
    let extra: usize = tail
        .chars()
        .take_while(|c| c.is_alphabetic() && !is_unspaced(*c))
        .map(char::len_utf8)
        .sum();
    end + extra
}

fn is_gap_punct(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ':' | '：'
                | '#'
                | '.'
                | ','
                | ';'
                | '-'
                | '–'
                | '—'
                | '('
                | ')'
                | '['
                | ']'
                | '*'
                | '"'
                | '\''
                | '«'
                | '»'
                | '「'
                | '」'
                | '【'
                | '】'
                | '（'
                | '）'
                | '>'
                | '|'
                | '/'
                | '='
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{feff}'
                | '·'
                | '•'
                | '’'
                | '`'
                | '_'
                | '~'
                | '，'
                | '、'
                | '。'
                | '＃'
                | '№'
                | '°'
        )
}

/// The value after a label: skip punctuation and filler words, return the
/// byte range of the first token that contains an ASCII digit, plus the
/// groups that follow it separated by single spaces (for numbers written in
/// blocks). `None` if another word comes first or the window ends.
pub fn value_after(hay: &str, from: usize) -> Option<Value<'_>> {
    let limit = from.saturating_add(80);
    let mut pos = from;
    let mut fillers = 0;
    loop {
        if pos > limit {
            return None;
        }
        let rest = hay.get(pos..)?;
        let mut chars = rest.char_indices();
        let (_, c) = chars.next()?;
        if is_gap_punct(c) {
            pos += c.len_utf8();
            continue;
        }
        // A word: letters, digits and a few joiners.
        let wlen: usize = rest
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || matches!(ch, '&' | 'º' | '°'))
            .map(char::len_utf8)
            .sum();
        if wlen == 0 {
            return None;
        }
        let word = rest.get(..wlen)?;
        if word.bytes().any(|b| b.is_ascii_digit()) {
            // The token proper is its ASCII alphanumeric run.
            let tlen = word.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if tlen == 0 || tlen != word.len() {
                return None;
            }
            return Some(Value {
                hay,
                start: pos,
                first_len: tlen,
            });
        }
        if lang::FILLERS.contains(&word) {
            fillers += 1;
            if fillers > 4 {
                return None;
            }
            pos += wlen;
            continue;
        }
        // A number written in blocks may open with its letter prefix
        // ("LP 0012 3456 7890 12", "RB 1234 5678 5 GB"): a 1–4 letter ASCII
        // word followed by a space and a digit. The caller only keeps it when
        // the joined blocks make a known format.
        if (1..=4).contains(&wlen) && word.bytes().all(|b| b.is_ascii_alphabetic()) {
            let after = rest.get(wlen..).unwrap_or("");
            let mut it = after.chars();
            if it.next().is_some_and(|c| c == ' ' || c == '\u{a0}')
                && it.next().is_some_and(|c| c.is_ascii_digit())
            {
                return Some(Value {
                    hay,
                    start: pos,
                    first_len: wlen,
                });
            }
        }
        return None;
    }
}

/// Further numbers after a value in a list ("N1, N2 & N3", "N1 / N2"):
/// each separated by `,` `;` `/` `&` (and spaces); stops at anything else.
pub fn list_continuation(hay: &str, mut pos: usize) -> Vec<&str> {
    let mut out = Vec::new();
    while out.len() < 32 {
        let rest = hay.get(pos..).unwrap_or("");
        let trimmed = rest.trim_start_matches([' ', '\u{a0}', '\t']);
        let Some(after_sep) = trimmed.strip_prefix([',', ';', '/', '&']) else {
            break;
        };
        let after_sep = after_sep.trim_start_matches([' ', '\u{a0}', '\t', '\n']);
        let len = after_sep.bytes().take_while(u8::is_ascii_digit).count();
        let next = after_sep.get(len..).and_then(|t| t.chars().next());
        if len == 0 || next.is_some_and(char::is_alphanumeric) {
            break;
        }
        let start = hay.len() - after_sep.len();
        let Some(tok) = hay.get(start..start + len) else {
            break;
        };
        out.push(tok);
        pos = start + len;
    }
    out
}

/// The rows of every HTML table, table after table (see [`tables`]).
pub fn table_rows(html: &str) -> Vec<Vec<String>> {
    tables(html).into_iter().flatten().collect()
}

/// One table being read: its rows so far and the cell being filled.
#[derive(Default)]
struct OpenTable {
    rows: Vec<Vec<String>>,
    cell: Option<String>,
}

impl OpenTable {
    fn close_cell(&mut self) {
        if let Some(c) = self.cell.take() {
            let c: String = c
                .chars()
                .filter(|ch| {
                    !matches!(
                        ch,
                        '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}'
                    )
                })
                .collect();
            let c = c.trim().to_lowercase();
            match self.rows.last_mut() {
                Some(r) => r.push(c),
                None => self.rows.push(vec![c]),
            }
        }
    }
}

/// The most rows read from one email's tables (hostile input).
const MAX_ROWS: usize = 512;

/// How deep nested tables are followed.
const MAX_TABLE_DEPTH: usize = 16;

/// Every HTML table of `html`, each a list of rows, each a list of cell
/// texts (entities decoded, lower case, zero-width characters dropped,
/// trimmed; a line break inside a cell is `\n`). A table nested inside a
/// cell is a table of its own and its text also belongs to the enclosing
/// cell (one level up), so a data row keeps its cells when a cell wraps its
/// value in a table of its own (layout tables around the data nest the other way and
/// are simply tables of one cell). Inner tables come before the tables
/// they sit in; at most 512 rows in all.
pub fn tables(html: &str) -> Vec<Vec<Vec<String>>> {
    let mut out: Vec<Vec<Vec<String>>> = Vec::new();
    let mut stack: Vec<OpenTable> = Vec::new();
    let mut rows = 0usize;
    let mut piece = String::new();
    let mut rest = html;
    // Text goes to the innermost cell and to the cell its table sits in
    // (a value wrapped in a table of its own); layout tables further out
    // need none of it, and copying it to every level would cost a copy of
    // the email per level.
    let in_cells = |stack: &mut Vec<OpenTable>, s: &str| {
        for t in stack.iter_mut().rev().take(2) {
            if let Some(c) = t.cell.as_mut() {
                c.push_str(s);
            }
        }
    };
    while !rest.is_empty() && rows < MAX_ROWS {
        let Some(lt) = rest.find('<') else {
            break;
        };
        let (text, tail) = rest.split_at(lt);
        if !text.is_empty() && stack.iter().rev().take(2).any(|t| t.cell.is_some()) {
            piece.clear();
            decode_entities(text, &mut piece);
            in_cells(&mut stack, &piece);
        }
        let Some(gt) = tail.find('>') else {
            break;
        };
        let tag = tail.get(1..gt).unwrap_or("");
        rest = tail.get(gt + 1..).unwrap_or("");
        let closing = tag.starts_with('/');
        let mut buf = [0u8; 8];
        let mut len = 0;
        for (d, b) in buf.iter_mut().zip(
            tag.trim_start_matches('/')
                .bytes()
                .take_while(u8::is_ascii_alphanumeric),
        ) {
            *d = b.to_ascii_lowercase();
            len += 1;
        }
        let name = buf.get(..len).unwrap_or(&[]);
        match (name, closing) {
            (b"style" | b"script" | b"head", false) => {
                let n = std::str::from_utf8(name).unwrap_or("");
                rest = skip_until_close(rest, n);
            }
            (b"table", false) => {
                in_cells(&mut stack, "\n");
                if stack.len() < MAX_TABLE_DEPTH {
                    stack.push(OpenTable::default());
                }
            }
            (b"table", true) => {
                if let Some(mut t) = stack.pop() {
                    t.close_cell();
                    if !t.rows.is_empty() {
                        out.push(t.rows);
                    }
                }
                in_cells(&mut stack, "\n");
            }
            (b"tr", false) => {
                if let Some(t) = stack.last_mut() {
                    t.close_cell();
                    t.rows.push(Vec::new());
                    rows += 1;
                }
            }
            (b"td" | b"th", false) => {
                in_cells(&mut stack, "\n");
                if let Some(t) = stack.last_mut() {
                    t.close_cell();
                    t.cell = Some(String::new());
                }
            }
            (b"td" | b"th" | b"tr", true) => {
                if let Some(t) = stack.last_mut() {
                    t.close_cell();
                }
                in_cells(&mut stack, "\n");
            }
            (b"br" | b"p" | b"div" | b"li", _) => in_cells(&mut stack, "\n"),
            _ => {}
        }
    }
    while let Some(mut t) = stack.pop() {
        t.close_cell();
        if !t.rows.is_empty() {
            out.push(t.rows);
        }
    }
    out
}

/// Tables of a plain-text body: runs of lines whose cells are separated by
/// `|` or tabs ("Order number | Tracking number" over "N1 | T1"), cells as
/// [`tables`] gives them (a leading and trailing `|` opens and closes the
/// row, as in Markdown).
pub fn plain_tables(plain: &str) -> Vec<Vec<Vec<String>>> {
    let mut out: Vec<Vec<Vec<String>>> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut n = 0usize;
    for line in plain.lines() {
        let line = line.trim();
        if n >= MAX_ROWS {
            break;
        }
        if !line.contains(['|', '\t']) {
            if !rows.is_empty() {
                out.push(std::mem::take(&mut rows));
            }
            continue;
        }
        let line = line.strip_prefix('|').unwrap_or(line);
        let line = line.strip_suffix('|').unwrap_or(line);
        // A rule under the header row ("|---|---|") is no row.
        if line
            .chars()
            .all(|c| matches!(c, '-' | ':' | '=' | '+' | '|' | ' ' | '\t'))
        {
            continue;
        }
        rows.push(
            line.split(['|', '\t'])
                .map(|c| fold(c).trim().to_lowercase())
                .collect(),
        );
        n += 1;
    }
    if !rows.is_empty() {
        out.push(rows);
    }
    out
}

/// A value found after a label.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    hay: &'a str,
    pub start: usize,
    first_len: usize,
}

impl<'a> Value<'a> {
    /// The first token.
    pub fn first(&self) -> &'a str {
        self.hay
            .get(self.start..self.start + self.first_len)
            .unwrap_or("")
    }

    /// The token joined with up to 6 following groups written after single
    /// spaces ("8211 9683 2793 1234"), longest first.
    pub fn joined(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut acc = self.first().to_string();
        let mut pos = self.start + self.first_len;
        for _ in 0..6 {
            let Some(rest) = self.hay.get(pos..) else {
                break;
            };
            let Some(sp) = rest.chars().next().filter(|c| *c == ' ' || *c == '\u{a0}') else {
                break;
            };
            let after = pos + sp.len_utf8();
            let glen = self
                .hay
                .get(after..)
                .unwrap_or("")
                .bytes()
                .take_while(u8::is_ascii_alphanumeric)
                .count();
            if !(1..=6).contains(&glen) {
                break;
            }
            let group = self.hay.get(after..after + glen).unwrap_or("");
            // Groups must hold digits, or the join would swallow words; the
            // one exception is a 2-letter country suffix closing an S10
            // number ("RB 1234 5678 5 GB"), after which the join stops.
            let suffix = glen == 2 && group.bytes().all(|b| b.is_ascii_alphabetic());
            if !suffix && !group.bytes().any(|b| b.is_ascii_digit()) {
                break;
            }
            // Single-character blocks (the S10 check digit) only inside a
            // letter-prefixed number: an order number never has one, and
            // "… 9283 2 items" must not grow a digit.
            let lettered = acc.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
            if glen == 1 && !lettered {
                break;
            }
            // The group must end at a token boundary.
            let next = self.hay.get(after + glen..).and_then(|t| t.chars().next());
            if next.is_some_and(char::is_alphanumeric) {
                break;
            }
            acc.push_str(group);
            out.push(acc.clone());
            pos = after + glen;
            if suffix {
                break;
            }
        }
        out.reverse();
        out
    }
}

/// ASCII alphanumeric tokens of `hay` with their byte offsets. A token must
/// not touch other alphanumerics (e.g. Cyrillic letters glued to it are a
/// boundary; ASCII ones are part of it).
pub fn ascii_tokens(hay: &str) -> impl Iterator<Item = (usize, &str)> + '_ {
    let bytes = hay.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                let start = i;
                while bytes.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                    i += 1;
                }
                if let Some(t) = hay.get(start..i) {
                    return Some((start, t));
                }
            } else {
                i += 1;
            }
        }
        None
    })
}

/// Link query parameters we read (`orderId=`, `trackingNumber=` …), found
/// with one case-insensitive automaton over the raw HTML: cheaper than
/// finding every URL first, and tag stripping would destroy them anyway.
static PARAMS: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .ascii_case_insensitive(true)
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(
            lang::ORDER_PARAMS
                .iter()
                .chain(lang::TRACKING_PARAMS)
                .map(|n| format!("{n}=")),
        )
        .expect("static keyword table builds")
});

fn is_url_delim(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>')
}

/// One query parameter found in a link.
#[derive(Debug, Clone, Copy)]
pub struct Param<'a> {
    /// Byte offset where the enclosing URL starts: parameters of the same
    /// link share it.
    pub url_start: usize,
    /// True for an order parameter, false for a tracking parameter.
    pub is_order: bool,
    pub value: &'a str,
}

/// Order and tracking parameters in `raw`, in document order. Only URLs
/// with a query string are searched (most `http` runs in an email are image
/// sources), and a name counts only after `?`, `&` or `;` (end of `&amp;`).
pub fn params(raw: &str) -> Vec<Param<'_>> {
    let bytes = raw.as_bytes();
    let n_order = lang::ORDER_PARAMS.len();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(found) = raw.get(pos..).and_then(|r| r.find("http")) {
        let start = pos + found;
        let len = bytes
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|&&b| !is_url_delim(b))
            .count();
        let end = start + len.max(4);
        pos = end;
        let Some(url) = raw.get(start..start + len) else {
            continue;
        };
        if !url.contains('?') {
            continue;
        }
        let ub = url.as_bytes();
        for m in PARAMS.find_iter(url) {
            let before = m.start().checked_sub(1).and_then(|i| ub.get(i));
            if !matches!(before, Some(b'?' | b'&' | b';')) {
                continue;
            }
            let vlen = ub
                .get(m.end()..)
                .unwrap_or(&[])
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b','))
                .count();
            if let Some(value) = url.get(m.end()..m.end() + vlen) {
                out.push(Param {
                    url_start: start,
                    is_order: m.pattern().as_usize() < n_order,
                    value,
                });
            }
        }
    }
    out
}

/// Splits a parameter value list (`,` or `%2C`).
pub fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',')
        .flat_map(|p| p.split("%2C"))
        .flat_map(|p| p.split("%2c"))
}

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    // Only real month names, so that "and 5 march" is not read as "and 5".
    let mut names: Vec<&str> = lang::MONTHS.iter().map(|(n, _)| *n).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let months = names
        .iter()
        .map(|n| regex::escape(n))
        .collect::<Vec<_>>()
        .join("|");
    Regex::new(&format!(
        concat!(
            r"(?P<iy>\d{{4}})[-/.](?P<im>\d{{1,2}})[-/.](?P<id>\d{{1,2}})",
            r"|(?P<ny>\d{{4}})\s*[年년]\s*(?P<nm>\d{{1,2}})\s*[月월]\s*(?P<nd>\d{{1,2}})",
            r"|(?P<dd>\d{{1,2}})[./](?P<dm>\d{{1,2}})[./](?P<dy>\d{{4}})",
            r"|\b(?P<mn>{m})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?\b,?(?:\s*(?P<my>\d{{4}}))?",
            r"|\b(?P<xd>\d{{1,2}})\.?\s+(?:de\s+)?(?P<xn>{m})\b\.?(?:\s+(?:de\s+)?(?P<xy>\d{{4}}))?",
        ),
        m = months
    ))
    .expect("static regex is valid")
});

fn month(name: &str) -> Option<u32> {
    lang::MONTHS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, m)| m)
}

/// Dates written in `s` (lower case), in order. Dates without a year take
/// `year` (the email's), moved to the next year when that puts them more
/// than half a year before `after`.
pub fn dates(s: &str, year: Option<i32>, after: Option<NaiveDate>) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    for c in DATE.captures_iter(s) {
        let num = |n: &str| c.name(n).and_then(|m| m.as_str().parse::<u32>().ok());
        let yr = |n: &str| c.name(n).and_then(|m| m.as_str().parse::<i32>().ok());
        let d = if let (Some(y), Some(m), Some(d)) = (yr("iy"), num("im"), num("id")) {
            NaiveDate::from_ymd_opt(y, m, d)
        } else if let (Some(y), Some(m), Some(d)) = (yr("ny"), num("nm"), num("nd")) {
            NaiveDate::from_ymd_opt(y, m, d)
        } else if let (Some(d), Some(m), Some(y)) = (num("dd"), num("dm"), yr("dy")) {
            NaiveDate::from_ymd_opt(y, m, d).or_else(|| NaiveDate::from_ymd_opt(y, d, m))
        } else if let (Some(m), Some(d)) = (c.name("mn").and_then(|m| month(m.as_str())), num("md"))
        {
            with_year(yr("my").or(year), m, d, after)
        } else if let (Some(m), Some(d)) = (c.name("xn").and_then(|m| month(m.as_str())), num("xd"))
        {
            with_year(yr("xy").or(year), m, d, after)
        } else {
            None
        };
        if let Some(d) = d {
            out.push(d);
        }
    }
    out
}

fn with_year(year: Option<i32>, m: u32, d: u32, after: Option<NaiveDate>) -> Option<NaiveDate> {
    let y = year?;
    let date = NaiveDate::from_ymd_opt(y, m, d)?;
    match after {
        Some(a) if (a - date).num_days() > 183 => NaiveDate::from_ymd_opt(y + 1, m, d),
        _ => Some(date),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_decode_from_the_full_html5_set() {
        let cases = [
            ("a&amp;b", "a&b"),
            ("8123&nbsp;4567", "8123 4567"),
            ("LP&zwnj;0012", "LP\u{200b}0012"),
            ("&hellip;&laquo;&euro;&Uuml;&oslash;&rarr;", "…«€Üø→"),
            ("&CounterClockwiseContourIntegral;", "∳"),
            ("&#76;&#x50;&#X30;", "LP0"),
            // Unknown, unterminated or invalid: kept as written.
            (
                "&bogus; & &amp &#; &#xD800; &#99999999999;",
                "&bogus; & &amp &#; &#xD800; &#99999999999;",
            ),
            (
                "&aVeryLongNameThatIsNoEntityAtAllReally;",
                "&aVeryLongNameThatIsNoEntityAtAllReally;",
            ),
            ("&é;", "&é;"),
        ];
        for (html, want) in cases {
            let mut out = String::new();
            decode_entities(html, &mut out);
            assert_eq!(out, want, "{html}");
        }
    }

    #[test]
    fn a_number_split_over_tags_and_entities_stays_whole() {
        let mut out = String::new();
        html_to_text(
            "<td>Tracking number:</td><td><b>LP00</b><span>1234&#53;6789012</span></td>",
            &mut out,
        );
        assert!(out.contains("LP00123456789012"), "{out:?}");
    }

    #[test]
    fn fold_lower_folds_spaces_widths_and_invisibles() {
        assert_eq!(
            fold_lower("De\u{a0}: LP\u{200b}00１２ＡＢ"),
            "de : lp0012ab"
        );
        // Final sigma keeps `str::to_lowercase` semantics.
        assert_eq!(fold_lower("ΑΡΙΘΜΟΣ"), "ΑΡΙΘΜΟΣ".to_lowercase());
        assert_eq!(fold("a\u{202f}b\u{ad}c"), "a bc");
    }

    #[test]
    fn letter_prefixed_numbers_in_blocks() {
        let hay = "tracking number: lp 0012 3456 7890 12 next";
        let v = value_after(hay, 15).expect("value");
        assert_eq!(v.first(), "lp");
        assert!(v.joined().contains(&"lp00123456789012".to_string()));
        let hay = "no: rb 1234 5678 5 gb and more";
        let v = value_after(hay, 3).expect("value");
        assert_eq!(
            v.joined().first().map(String::as_str),
            Some("rb123456785gb")
        );
        // A digit-led number never grows a 1-digit block.
        let hay = ": 3051 8274 6501 9283 2 items";
        let v = value_after(hay, 0).expect("value");
        assert_eq!(
            v.joined().first().map(String::as_str),
            Some("3051827465019283")
        );
        // A word that is not followed by digits is still no value.
        assert!(value_after("order of the day", 5).is_none());
    }

    #[test]
    fn order_lists_continue() {
        let hay = "8160606060606060, 8161616161616161 & 8162626262626262 / 3 items";
        assert_eq!(
            list_continuation(hay, 16),
            vec!["8161616161616161", "8162626262626262", "3"]
        );
        assert!(list_continuation("8160606060606060 placed", 16).is_empty());
    }

    #[test]
    fn table_rows_split_cells() {
        let rows = table_rows(
            "<table><tr><th>Order number</th><th>Tracking&nbsp;number</th></tr>\
             <tr><td> 3058 </td><td><span>LP</span>00</td></tr></table>",
        );
        assert_eq!(
            rows,
            vec![
                vec!["order number".to_string(), "tracking number".to_string()],
                vec!["3058".to_string(), "lp00".to_string()]
            ]
        );
    }

    fn text(h: &str) -> String {
        let mut s = String::new();
        html_to_text(h, &mut s);
        s
    }

    #[test]
    fn inline_tags_join_block_tags_split() {
        assert!(text("<p>LP0052<span>7423</span>524449</p>").contains("LP00527423524449"));
        assert!(text("<td>A</td><td>B</td>").contains("A\n\nB"));
        assert_eq!(
            text("<style>p{x}</style>x&amp;y&#x27;&#39;&nbsp;"),
            "\nx&y'' "
        );
        assert_eq!(text("a<!-- c -->b"), "ab");
        assert_eq!(text("a<b"), "a");
        assert_eq!(text("&unknown; &"), "&unknown; &");
    }

    #[test]
    fn value_after_label() {
        let h = "order no. 8211968327931234 has";
        let v = value_after(h, 5).map(|v| v.first().to_string());
        assert_eq!(v.as_deref(), Some("8211968327931234"));
        assert!(value_after("order total us $6", 5).is_none());
        let h = "tracking number: 0034 0434 0284 2742 7064.";
        let v = value_after(h, 15);
        let joined = v.map(|v| v.joined()).unwrap_or_default();
        assert_eq!(
            joined.first().map(String::as_str),
            Some("00340434028427427064")
        );
    }

    #[test]
    fn dates_parse() {
        let d = dates(
            "ends on 2026-12-31 or 31.12.2026 or dec 5, 2026 and 5 march",
            Some(2026),
            None,
        );
        assert_eq!(d.len(), 4, "{d:?}");
        assert_eq!(d.first().copied(), NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(d.get(3).copied(), NaiveDate::from_ymd_opt(2026, 3, 5));
    }
}
