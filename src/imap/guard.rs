//! Limits on what an IMAP server may make aliwatch hold, enforced on the
//! byte stream below async-imap, and the short excerpts of server data
//! that error messages may quote.
//!
//! async-imap buffers a whole response before parsing it (up to 512 MiB)
//! and allocates an announced literal's size at once: a 40-byte
//! `{400000000}` announcement cost 393 MB of RSS, and a 500 MB literal a
//! 12 GB log line, because a parse error carries the whole buffer, printed
//! as decimal numbers. [`Guarded`] scans the bytes as they arrive, before
//! async-imap sees them, and fails the read when
//! - a literal (RFC 3501 §4.3 `{N}` CRLF, RFC 3516 `~{N}`) is announced
//!   larger than the message size limit,
//! - one response (its line plus its literals) grows past that limit plus
//!   [`MAX_LINE`], or
//! - a line outside literals is longer than [`MAX_LINE`] (a legitimate
//!   SEARCH answer is at most `SEARCH_CHUNK` UIDs, about 220 KB).
//!
//! Literal contents are skipped by count, so an email's body can never be
//! mistaken for protocol syntax.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest response line (outside literals) a server may send.
pub const MAX_LINE: usize = 1024 * 1024;

/// How much of a server's text an error message quotes.
pub const EXCERPT: usize = 160;

/// The scanner's state between reads.
#[derive(Debug, Clone)]
struct Scanner {
    max_literal: u64,
    /// Bytes of the current line outside literals.
    line: usize,
    /// Bytes of the current response, literals included.
    response: u64,
    /// Literal bytes still to skip.
    literal_left: u64,
    /// Digits of a `{N` being read.
    digits: Option<u64>,
    /// A complete `{N}` followed by 0, 1 (`\r`) bytes of its CRLF.
    announced: Option<(u64, u8)>,
}

impl Scanner {
    fn new(max_literal: u64) -> Scanner {
        Scanner {
            max_literal,
            line: 0,
            response: 0,
            literal_left: 0,
            digits: None,
            announced: None,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            if self.literal_left > 0 {
                let n = usize::try_from(self.literal_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.literal_left -= n as u64;
                bytes = bytes.get(n..).unwrap_or_default();
                continue;
            }
            let Some((&b, rest)) = bytes.split_first() else {
                break;
            };
            bytes = rest;
            self.line += 1;
            self.response += 1;
            if self.line > MAX_LINE {
                return Err(format!(
                    "the server sent a response line longer than {MAX_LINE} bytes"
                ));
            }
            if let Some((n, crs)) = self.announced {
                match b {
                    b'\r' if crs == 0 => {
                        self.announced = Some((n, 1));
                        continue;
                    }
                    b'\n' => {
                        self.announced = None;
                        self.start_literal(n)?;
                        continue;
                    }
                    _ => self.announced = None,
                }
            }
            if let Some(d) = self.digits {
                match b {
                    b'0'..=b'9' => {
                        self.digits =
                            Some(d.saturating_mul(10).saturating_add(u64::from(b - b'0')));
                        continue;
                    }
                    b'}' => {
                        self.digits = None;
                        self.announced = Some((d, 0));
                        continue;
                    }
                    _ => self.digits = None,
                }
            }
            match b {
                b'{' => self.digits = Some(0),
                b'\n' => {
                    self.line = 0;
                    self.response = 0;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn start_literal(&mut self, n: u64) -> Result<(), String> {
        if n > self.max_literal {
            return Err(format!(
                "the server announced a {n}-byte literal, above the limit of {} bytes (imap.max_message_size)",
                self.max_literal
            ));
        }
        let budget = self.max_literal.saturating_add(MAX_LINE as u64);
        if self.response.saturating_add(n) > budget {
            return Err(format!(
                "the server sent a response larger than {budget} bytes (imap.max_message_size)"
            ));
        }
        self.response += n;
        self.literal_left = n;
        // A literal continues its line; the line limit counts syntax only.
        self.line = 0;
        Ok(())
    }
}

/// A byte stream whose reads fail when the server exceeds the limits.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    scan: Scanner,
    failed: Option<String>,
}

impl<S> Guarded<S> {
    /// Guards `inner`; no literal may be larger than `max_literal` bytes.
    pub fn new(inner: S, max_literal: u64) -> Guarded<S> {
        Guarded {
            inner,
            scan: Scanner::new(max_literal),
            failed: None,
        }
    }

    /// The stream below (for STARTTLS, before the handshake).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(why) = &this.failed {
            return Poll::Ready(Err(io::Error::other(why.clone())));
        }
        let start = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = buf.filled().get(start..).unwrap_or_default();
                if let Err(why) = this.scan.feed(fresh) {
                    // The offending bytes never reach async-imap.
                    buf.set_filled(start);
                    this.failed = Some(why.clone());
                    return Poll::Ready(Err(io::Error::other(why)));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// At most [`EXCERPT`] characters of `s`, control characters escaped.
pub fn excerpt(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= EXCERPT {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The text of an error from async-imap, cut to a short escaped excerpt:
/// its parse errors embed the whole receive buffer twice (once as a list
/// of decimal numbers), so only the start of the unparsed text is kept.
pub fn server_error_text(text: &str) -> String {
    const MARK: &str = " during parsing of ";
    match text.find(MARK) {
        Some(i) => format!(
            "cannot parse the server's response: {}",
            excerpt(text.get(i + MARK.len()..).unwrap_or(""))
        ),
        None => excerpt(text),
    }
}

/// An async-imap (or any) error as an anyhow error with a bounded text.
pub fn server_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(server_error_text(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(max: u64, chunks: &[&[u8]]) -> Result<(), String> {
        let mut s = Scanner::new(max);
        for c in chunks {
            s.feed(c)?;
        }
        Ok(())
    }

    #[test]
    fn literals_are_skipped_and_bounded() {
        assert!(scan(100, &[b"* 1 FETCH (BODY[] {5}\r\n{999}\n)\r\n"]).is_ok());
        // split across reads, announced too big
        let e = scan(100, &[b"* 1 FETCH (BODY[] {4000", b"00000}\r", b"\n"]).expect_err("too big");
        assert!(e.contains("400000000-byte literal"), "{e}");
        // literal8
        assert!(scan(100, &[b"* 1 FETCH (BINARY[] ~{101}\r\n"]).is_err());
        // a {N} not followed by CRLF is not a literal
        assert!(scan(100, &[b"* OK [ALERT] {99999}x\r\n"]).is_ok());
    }

    #[test]
    fn lines_and_responses_are_bounded() {
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(scan(100, &[b"* SEARCH ", &long]).is_err());
        // many small literals in one response add up
        let mut many = b"* 1 FETCH (".to_vec();
        for _ in 0..200 {
            many.extend_from_slice(b"X {6000}\r\n");
            many.extend_from_slice(&[b'a'; 6000]);
        }
        let e = scan(10_000, &[&many]).expect_err("too big");
        assert!(e.contains("response larger"), "{e}");
    }

    #[test]
    fn parse_errors_are_cut_to_an_excerpt() {
        let buf = "x".repeat(1_000_000);
        let raw = format!("io: Error(Error {{ input: [1, 2, 3] }}) during parsing of \"{buf}\"");
        let t = server_error_text(&raw);
        assert!(t.len() < 400, "{}", t.len());
        assert!(t.starts_with("cannot parse the server's response: \"xxx"));
        assert_eq!(excerpt("a\r\nb\u{0}"), "a\\r\\nb\\u{0}");
    }
}
