//! The MIME bounds: how many parts and how deeply nested messages one email
//! may have, enforced twice, because mail-parser builds the tree of nested
//! messages (RFC 2046 §5.2: `message/rfc822`, `message/global`, and the
//! parts of a `multipart/digest`, whose default type is `message/rfc822`)
//! as a recursive `Message` → `MessagePart` → `Message` value:
//!
//! 1. [`check_raw`], before mail-parser sees the bytes: a linear pre-scan.
//!    mail-parser itself parses nested messages with an explicit stack, but
//!    an attached message that is base64 or quoted-printable encoded is
//!    decoded and parsed again, and the result is copied with a recursive
//!    `into_owned` — so a deep tree inside an encoded part would recurse in
//!    mail-parser before any walk of ours could see it. The pre-scan
//!    therefore reads header fields the way mail-parser does (RFC 5322
//!    §4.5's obsolete syntax: white space before the colon, anywhere in
//!    the name, folding per §2.2.3, any case) and descends into encoded
//!    attached messages itself.
//! 2. [`check_tree`], on mail-parser's own view of the parts: an iterative
//!    walk (explicit stack) that measures the depth of nested messages, so
//!    no header spelling the pre-scan missed can get past the limit.
//! 3. [`Parsed`] takes the tree apart iteratively when it is dropped: the
//!    drop glue of a nested `Message` recurses once per level.
//!
//! One limit, [`MAX_ATTACHED_MESSAGES`], bounds both the number and the
//! depth of nested messages.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use mail_parser::{Message, PartType};

use super::ExtractError;

/// The most MIME parts one email may have. AliExpress emails have fewer
/// than 20; a million empty parts in 7 MB cost mail-parser 200 MB.
pub const MAX_MIME_PARTS: usize = 1_000;

/// The most `message/*` parts (attached emails) one email may have, and so
/// also the deepest nesting of messages in messages (a forward of a
/// forward of a forward needs 3). Every nested structure that comes from
/// outside (MIME here, HTML in [`super::text`]) is bounded by this one
/// number.
pub const MAX_ATTACHED_MESSAGES: usize = 32;

/// How many times mail-parser decodes an encoded attached message and
/// parses it again (its `MAX_NESTED_ENCODED`). An encoded attached message
/// deeper than this is refused outright rather than left unscanned.
const MAX_ENCODED_LEVELS: usize = 3;

/// The most header lines scanned around a `Content-Type` for its
/// `Content-Transfer-Encoding`, and the most raw bytes of one folded value.
const MAX_BLOCK_LINES: usize = 256;
const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The most places a part's body may start (white-space-only lines inside
/// a header block are either folding or its end; both are tried).
const MAX_BODY_STARTS: usize = 4;

/// Counts shared by the whole pre-scan, nested encoded levels included.
struct Budget {
    containers: usize,
    content_types: usize,
    dash_lines: usize,
    decoded: usize,
    decoded_limit: usize,
}

/// The pre-scan (see the module comment). Over-counting (a body line that
/// looks like a header) can only reject an email far past any real one;
/// under-counting must be impossible for every spelling mail-parser reads.
pub fn check_raw(raw: &[u8]) -> Result<(), ExtractError> {
    let mut budget = Budget {
        containers: 0,
        content_types: 0,
        dash_lines: 0,
        decoded: 0,
        // Encoded parts are decoded once per possible body start; a real
        // email decodes each attached message once.
        decoded_limit: raw.len().saturating_mul(4).max(1 << 20),
    };
    scan(raw, 0, &mut budget)
}

fn too_many_messages() -> ExtractError {
    ExtractError::Malformed(format!(
        "more than {MAX_ATTACHED_MESSAGES} attached messages (message/* or multipart/digest parts), or nested deeper"
    ))
}

/// The lines of `data`, split at LF only (mail-parser ends lines at LF; a
/// CR before it is white space to both).
fn lines_of(data: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, data.get(start..i).unwrap_or_default()));
            start = i + 1;
        }
    }
    if start < data.len() {
        out.push((start, data.get(start..).unwrap_or_default()));
    }
    out
}

/// The header name of `line` as mail-parser reads it: leading white space
/// and colons skipped, then every non-white-space byte up to the next
/// colon, lower-cased (`Content-Type :`, ` content - type:` and
/// `:CONTENT-TYPE:` are all `content-type`). `None` without a colon.
pub(crate) fn header_name(line: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut name = Vec::new();
    for (i, b) in line.iter().enumerate() {
        match *b {
            b':' if !name.is_empty() => {
                return Some((name, line.get(i + 1..).unwrap_or_default()));
            }
            b':' => {}
            b if b.is_ascii_whitespace() => {}
            b => {
                // mail-parser compares at most 34 bytes of a name.
                if name.len() > 64 {
                    return None;
                }
                name.push(b.to_ascii_lowercase());
            }
        }
    }
    None
}

/// A line that ends a header block whatever precedes it (CR is white
/// space to mail-parser).
fn is_empty_line(line: &[u8]) -> bool {
    line.iter().all(|b| *b == b'\r')
}

fn is_blankish(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// A header value with its folded continuation lines (RFC 5322 §2.2.3),
/// white space removed and lower-cased; at most [`MAX_VALUE_BYTES`] raw
/// bytes are read. `truncated` when the cap cut it.
fn folded_value(first: &[u8], next: &[(usize, &[u8])]) -> (Vec<u8>, bool) {
    let mut value = Vec::new();
    let mut read = first.len();
    let push = |value: &mut Vec<u8>, bytes: &[u8]| {
        value.extend(
            bytes
                .iter()
                .filter(|b| !b.is_ascii_whitespace())
                .map(u8::to_ascii_lowercase),
        );
    };
    push(&mut value, first);
    for (_, l) in next {
        if !l.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            break;
        }
        read += l.len();
        if read > MAX_VALUE_BYTES {
            return (value, true);
        }
        push(&mut value, l);
    }
    (value, false)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One level of the pre-scan: `data` is the raw email (level 0) or the
/// decoded body of an encoded attached message.
fn scan(data: &[u8], level: usize, budget: &mut Budget) -> Result<(), ExtractError> {
    let lines = lines_of(data);
    for (idx, (_, line)) in lines.iter().enumerate() {
        if line.starts_with(b"--") {
            budget.dash_lines += 1;
            continue;
        }
        let Some((name, rest)) = header_name(line) else {
            continue;
        };
        if name != b"content-type" {
            continue;
        }
        budget.content_types += 1;
        let (value, truncated) = folded_value(rest, lines.get(idx + 1..).unwrap_or_default());
        // Any value that could name a container counts as one: the type
        // token may hide in quotes or comments, and a parameter that only
        // mentions the word costs one of 32.
        let container = truncated || contains(&value, b"message") || contains(&value, b"digest");
        if !container {
            continue;
        }
        budget.containers += 1;
        if budget.containers > MAX_ATTACHED_MESSAGES {
            return Err(too_many_messages());
        }
        if let Some(encodings) = encoded_part(&lines, idx) {
            if level >= MAX_ENCODED_LEVELS {
                return Err(ExtractError::Malformed(format!(
                    "an encoded attached message inside {MAX_ENCODED_LEVELS} others"
                )));
            }
            for start in body_starts(&lines, idx)? {
                let body = data.get(start..).unwrap_or_default();
                for enc in &encodings {
                    let decoded = match enc {
                        Encoding::Base64 => decode_base64(body),
                        Encoding::QuotedPrintable => decode_qp(body),
                    };
                    budget.decoded = budget.decoded.saturating_add(decoded.len());
                    if budget.decoded > budget.decoded_limit {
                        return Err(ExtractError::Malformed(
                            "encoded attached messages larger than the email allows".into(),
                        ));
                    }
                    scan(&decoded, level + 1, budget)?;
                }
            }
        }
    }
    if budget.content_types > MAX_MIME_PARTS || budget.dash_lines > 2 * MAX_MIME_PARTS {
        return Err(ExtractError::Malformed(format!(
            "more than {MAX_MIME_PARTS} MIME parts"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    QuotedPrintable,
}

/// The transfer encodings (base64, quoted-printable) named in the header
/// block around line `idx`: back and forward to the nearest empty line (a
/// line of white space may be a folded value's, so it does not end the
/// block; reaching further than mail-parser does only decodes more). `None` when neither is named (the part
/// is 7bit/8bit/binary, the only ones RFC 2046 §5.2.1 allows for
/// `message/rfc822`, and mail-parser parses it in place).
fn encoded_part(lines: &[(usize, &[u8])], idx: usize) -> Option<Vec<Encoding>> {
    let back = lines
        .get(..idx)
        .unwrap_or_default()
        .iter()
        .rev()
        .take(MAX_BLOCK_LINES)
        .take_while(|(_, l)| !is_empty_line(l));
    let fwd = lines
        .get(idx + 1..)
        .unwrap_or_default()
        .iter()
        .take(MAX_BLOCK_LINES)
        .take_while(|(_, l)| !is_empty_line(l));
    let mut found = Vec::new();
    for (_, l) in back.chain(fwd) {
        let Some((name, rest)) = header_name(l) else {
            continue;
        };
        if name != b"content-transfer-encoding" {
            continue;
        }
        let v: Vec<u8> = rest
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .map(u8::to_ascii_lowercase)
            .collect();
        if contains(&v, b"base64") && !found.contains(&Encoding::Base64) {
            found.push(Encoding::Base64);
        }
        if contains(&v, b"quoted-printable") && !found.contains(&Encoding::QuotedPrintable) {
            found.push(Encoding::QuotedPrintable);
        }
    }
    (!found.is_empty()).then_some(found)
}

/// Where the body of the part whose `Content-Type` is line `idx` may start:
/// after each white-space-only line below it (mail-parser ends a header
/// block there unless a folded value swallowed the line) up to the first
/// empty one.
fn body_starts(lines: &[(usize, &[u8])], idx: usize) -> Result<Vec<usize>, ExtractError> {
    let mut starts = Vec::new();
    for (k, (_, l)) in lines.iter().enumerate().skip(idx + 1) {
        if !is_blankish(l) {
            continue;
        }
        let next = lines.get(k + 1).map_or(usize::MAX, |(s, _)| *s);
        starts.push(next);
        if starts.len() > MAX_BODY_STARTS {
            return Err(ExtractError::Malformed(
                "white-space-only lines in the header of an attached message".into(),
            ));
        }
        if is_empty_line(l) {
            break;
        }
    }
    Ok(starts)
}

/// The base64 body as mail-parser decodes it: up to the first `--` (its
/// decoder ends there, at a boundary or with an error), with mail-parser's
/// own decoder; nothing when that decoder refuses it (mail-parser then
/// keeps the part as text, not as a message).
fn decode_base64(body: &[u8]) -> Vec<u8> {
    let end = body
        .windows(2)
        .position(|w| w == b"--")
        .unwrap_or(body.len());
    let region = body.get(..end).unwrap_or_default();
    let mut stream = mail_parser::parsers::MessageStream::new(region);
    let (end, bytes) = stream.decode_base64_mime(b"");
    if end == usize::MAX {
        return Vec::new();
    }
    bytes.into_owned()
}

/// A quoted-printable body decoded to the end of `body` (past the part's
/// boundary: decoding more than mail-parser does only adds to the counts).
/// mail-parser's state machine without its error exits: `=XX` is a byte,
/// `=` before a line end (white space allowed between) is a soft break.
fn decode_qp(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0usize;
    while let Some(&b) = body.get(i) {
        i += 1;
        if b != b'=' {
            out.push(b);
            continue;
        }
        // Skip white space after `=` (mail-parser does) up to a line end.
        let mut j = i;
        while let Some(&c) = body.get(j) {
            if c == b'\n' || !c.is_ascii_whitespace() {
                break;
            }
            j += 1;
        }
        match (body.get(j), body.get(j + 1)) {
            (Some(b'\n'), _) => i = j + 1,
            (Some(&h1), Some(&h2)) if hex(h1).is_some() && hex(h2).is_some() => {
                let v = hex(h1).unwrap_or(0) * 16 + hex(h2).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(0));
                i = j + 2;
            }
            _ => out.push(b'='),
        }
    }
    out
}

/// The walk of mail-parser's own tree (see the module comment): refuses an
/// email whose nested messages are more than [`MAX_ATTACHED_MESSAGES`] deep
/// or many. Iterative, so the walk itself cannot overflow the stack.
pub fn check_tree(msg: &Message<'_>) -> Result<(), ExtractError> {
    let mut stack: Vec<(&Message<'_>, usize)> = vec![(msg, 0)];
    let mut messages = 0usize;
    while let Some((m, depth)) = stack.pop() {
        for part in &m.parts {
            if let PartType::Message(nested) = &part.body {
                messages += 1;
                if depth + 1 > MAX_ATTACHED_MESSAGES || messages > MAX_ATTACHED_MESSAGES {
                    return Err(too_many_messages());
                }
                stack.push((nested, depth + 1));
            }
        }
    }
    Ok(())
}

/// A parsed email that is taken apart without recursion when dropped (the
/// compiler's drop glue for `Message` recurses once per nested level).
pub struct Parsed<'x>(pub Message<'x>);

impl<'x> Deref for Parsed<'x> {
    type Target = Message<'x>;
    fn deref(&self) -> &Message<'x> {
        &self.0
    }
}

impl<'x> DerefMut for Parsed<'x> {
    fn deref_mut(&mut self) -> &mut Message<'x> {
        &mut self.0
    }
}

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        let mut pending = vec![std::mem::take(&mut self.0.parts)];
        while let Some(parts) = pending.pop() {
            for mut part in parts {
                if let PartType::Message(m) = &mut part.body {
                    pending.push(std::mem::take(&mut m.parts));
                }
                // `part` now holds no nested parts: dropping it is shallow.
                part.body = PartType::Text(Cow::Borrowed(""));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_read_as_mail_parser_reads_them() {
        for line in [
            &b"Content-Type: x"[..],
            b"Content-Type : x",
            b"content-type\t:x",
            b" CONTENT-TYPE:x",
            b"Content - Type:x",
            b":Content-Type:x",
        ] {
            let (name, _) = header_name(line).expect("a header");
            assert_eq!(name, b"content-type", "{:?}", String::from_utf8_lossy(line));
        }
        assert!(header_name(b"no colon here").is_none());
    }

    #[test]
    fn quoted_printable_decodes_escapes_and_soft_breaks_without_failing() {
        assert_eq!(decode_qp(b"a=3Db=\r\nc= \nd==e"), b"a=bcd==e");
    }

    #[test]
    fn an_encoded_nest_is_scanned_inside_its_encoding() {
        // 40 attached messages inside one base64 attached message
        let inner = "Content-Type: message/rfc822\n\n".repeat(40);
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(inner)
        };
        let raw = format!(
            "From: a@b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{b64}\n"
        );
        assert!(check_raw(raw.as_bytes()).is_err());
        // white-space-only lines before the body: every start is tried
        let raw = format!(
            "From: a@b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n \n\n{b64}\n"
        );
        assert!(check_raw(raw.as_bytes()).is_err());
        // the transfer encoding above a line of white space (a fold)
        let raw = format!(
            "From: a@b\nContent-Transfer-Encoding: base64\nX: a\n \t\nContent-Type: message/rfc822\n\n{b64}\n"
        );
        assert!(check_raw(raw.as_bytes()).is_err());
    }
}
