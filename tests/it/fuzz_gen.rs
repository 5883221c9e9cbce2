//! The fuzz harness's generators and checks, shared by the bounded run in
//! the suite (`tests/it/fuzz.rs`) and the long run (`benches/fuzz.rs`,
//! `scripts/fuzz`).
//!
//! Structure-aware: emails are generated as a tree (nested multipart and
//! `message/rfc822`, every transfer encoding, charsets, RFC 2047 words,
//! huge and folded headers, broken boundaries, HTML with entities and
//! numbers split over tags) and then rendered, optionally mutated at the
//! byte level. Header fields are written in every spelling mail-parser
//! accepts ([`Spelling`]: RFC 5322 §4.5's obsolete white space before the
//! colon, folding, any case, duplicates, encoded words and RFC 2231
//! continuations in parameters), and [`Input::Deep`] nests every container
//! type (RFC 2046 §5: `message/rfc822`, `message/global`, the parts of
//! `multipart/digest`, every `multipart/*`, base64-encoded attached
//! messages) up to thousands of levels; or a real fixture from `tests/fixtures/emails` gets random
//! bytes or generated parts spliced into it. mbox files are generated from
//! lists of such emails (mboxrd-quoted) and Maildir/`.eml` trees are
//! written to a temporary directory.
//!
//! The checks run the extractor and the import readers and return an error
//! naming the broken invariant; a panic is caught by the caller.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use aliwatch::extract::numbers::{self, Verdict};
use aliwatch::extract::{extract, Extraction, MAX_ORDERS_PER_EMAIL};
use aliwatch::mailfile::{self, ReadProblems};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// The corpus

/// Every fixture email, read once.
pub static FIXTURES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                if let Ok(raw) = std::fs::read(&p) {
                    out.push(raw);
                }
            }
        }
    }
    out
});

// ---------------------------------------------------------------------------
// Numbers and words

const COUNTRIES: &[&str] = &["CN", "GB", "NL", "SG", "US", "DE", "FR", "XX", "UK", "ZZ"];

fn s10_number(valid: bool) -> impl Strategy<Value = String> {
    (
        "[A-Z]{2}",
        proptest::collection::vec(0u8..10, 8),
        prop::sample::select(COUNTRIES),
        1u32..10,
    )
        .prop_map(move |(pre, serial, country, off)| {
            let digits: Vec<u8> = serial.iter().map(|d| b'0' + d).collect();
            let check = numbers::s10_check_digit(&digits).unwrap_or(0);
            let check = if valid { check } else { (check + off) % 10 };
            format!("{pre}{}{check}{country}", String::from_utf8_lossy(&digits))
        })
}

/// A number of some format aliwatch knows, a near miss, or just digits.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => s10_number(true),
        1 => s10_number(false),
        2 => "LP[0-9]{12,14}",
        1 => "AP[0-9]{14}",
        1 => "YT[0-9]{16}",
        1 => "(4PX|JT|SYUS|CN)[0-9]{10,16}",
        1 => "00[0-9]{18}",
        1 => "9[0-9]{21}",
        3 => "[0-9]{16}",
        1 => "[0-9]{8,24}",
        1 => "[A-Z0-9]{6,40}",
        1 => "[a-z0-9 ]{4,30}",
    ]
}

/// A number written the way emails break it: spaced groups, split over
/// tags, as character references, or whole.
fn written_number() -> impl Strategy<Value = String> {
    (number(), 0u8..6, proptest::collection::vec(1usize..6, 1..5)).prop_map(|(n, how, cuts)| {
        let chunks = |n: &str| -> Vec<String> {
            let mut out = Vec::new();
            let mut rest = n;
            for c in &cuts {
                let at = (*c).min(rest.len());
                let (a, b) = rest.split_at(at);
                out.push(a.to_string());
                rest = b;
            }
            out.push(rest.to_string());
            out
        };
        match how {
            0 => chunks(&n).join(" "),
            1 => chunks(&n)
                .iter()
                .map(|c| format!("<span>{c}</span>"))
                .collect(),
            2 => chunks(&n).join("</b><b>"),
            3 => n.chars().map(|c| format!("&#{};", c as u32)).collect(),
            4 => n.chars().map(|c| format!("&#x{:X};", c as u32)).collect(),
            _ => n,
        }
    })
}

const LABELS: &[&str] = &[
    "Order number:",
    "Order ID:",
    "Order No.",
    "Tracking number:",
    "Tracking No.:",
    "Bestellnummer:",
    "Sendungsnummer:",
    "N° de commande :",
    "Numéro de suivi :",
    "Número de pedido:",
    "Número de seguimiento:",
    "Номер заказа:",
    "Трек-номер:",
    "订单号：",
    "追踪号码：",
    "주문 번호:",
    "רשימת הזמנה",
    "رقم الطلب:",
    "Package",
    "Order",
];

const PHRASES: &[&str] = &[
    "Your order has been shipped",
    "Your package has been delivered",
    "Your order is confirmed",
    "Payment successful",
    "Order closed",
    "Buyer Protection ends on 2026-04-20",
    "The seller extended your Buyer Protection by 15 days",
    "Tracking number updated",
    "Your package is in customs",
    "out for delivery",
    "Estimated delivery: Mar 3 - Mar 18",
    "Ihre Bestellung wurde versandt",
    "Votre colis est en douane",
    "Su pedido ha sido enviado",
    "Ваш заказ отправлен",
    "您的订单已发货",
    "dispute opened",
    "Confirm receipt",
    "Item: Wireless earbuds Bluetooth 5.3 x2 US $12.99",
    "Store: Best Gadget Store",
];

const ENTITIES: &[&str] = &[
    "&amp;",
    "&nbsp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&#39;",
    "&#x27;",
    "&euro;",
    "&hellip;",
    "&zwnj;",
    "&shy;",
    "&#0;",
    "&#xFFFFFFFF;",
    "&#99999999999;",
    "&#xD800;",
    "&bogus;",
    "&",
    "&#",
    "&#x;",
    "&amp",
    "&#12345",
    "&CounterClockwiseContourIntegral;",
];

/// One piece of body text.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(LABELS), written_number())
            .prop_map(|(l, n)| format!("{l} {n}")),
        2 => written_number(),
        2 => prop::sample::select(PHRASES).prop_map(str::to_string),
        2 => prop::sample::select(ENTITIES).prop_map(str::to_string),
        1 => number().prop_map(|n| format!(
            "<a href=\"https://www.aliexpress.com/p/order/detail.html?orderId={n}\">details</a>")),
        1 => (number(), number()).prop_map(|(o, t)| format!(
            "<a href='https://global.cainiao.com/detail.htm?trackingNumber={t}&amp;orderId={o}'>track</a>")),
        1 => number().prop_map(|n| format!("o_ids={n}%2C{n}")),
        1 => prop::sample::select(&[
            "<td>", "</td>", "<tr>", "</tr>", "<table>", "</table>", "<br>", "<br/>", "<p>",
            "</p>", "<div", "<!--", "-->", "<script>var x='Order number: 8123456789012345';</script>",
            "<style>td{}</style>", "<td colspan=\"2", "<![CDATA[", "]]>", "<", ">", "</",
        ][..]).prop_map(str::to_string),
        1 => "\\PC{0,40}",
        1 => "[\u{200b}\u{202e}\u{0301}\u{feff}\u{00a0} \t\n]{1,8}",
        1 => "(19|20|99)[0-9]{2}-[01][0-9]-[0-3][0-9]",
    ]
}

fn body_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(fragment(), 0..40).prop_map(|v| v.join(" "))
}

// ---------------------------------------------------------------------------
// The email tree

#[derive(Debug, Clone, Copy)]
pub enum Cte {
    None,
    SevenBit,
    EightBit,
    Base64,
    BrokenBase64,
    Qp,
    BrokenQp,
    Bogus,
}

#[derive(Debug, Clone, Copy)]
pub enum BoundaryFault {
    None,
    NoClose,
    NoParam,
    FakeInPreamble,
    Truncated,
    Quoted,
    Long,
}

#[derive(Debug, Clone)]
pub enum Part {
    Leaf {
        html: bool,
        charset: &'static str,
        cte: Cte,
        text: String,
        /// Where QP puts soft breaks / base64 wraps.
        wrap: usize,
    },
    Multipart {
        subtype: &'static str,
        boundary: String,
        fault: BoundaryFault,
        children: Vec<Part>,
    },
    Message {
        base64: bool,
        email: Box<Email>,
    },
    /// Bytes the generator does not understand, as a part.
    Opaque {
        ctype: String,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub struct Email {
    pub headers: Vec<(String, String)>,
    pub body: Part,
    pub crlf: bool,
    /// Seeds how each header line is spelt ([`Spelling`]).
    pub spelling: u32,
}

/// How header lines are spelt: each line takes the next of a cheap
/// pseudo-random sequence seeded per email.
#[derive(Debug, Clone)]
pub struct Spelling(u32);

impl Spelling {
    pub fn new(seed: u32) -> Spelling {
        Spelling(seed)
    }

    fn next(&mut self) -> u32 {
        // xorshift32; 0 stays 0, which spells every line plainly
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// One header field `name: value` (with its line end), spelt one of
    /// the ways RFC 5322 (§2.2.3 folding, §4.5 obsolete syntax) and
    /// mail-parser allow; sometimes written twice.
    pub fn line(&mut self, name: &str, value: &str) -> String {
        if self.0 == 0 {
            return format!("{name}: {value}\n");
        }
        let r = self.next();
        let name = match (r >> 4) % 4 {
            0 => name.to_ascii_lowercase(),
            1 => name.to_ascii_uppercase(),
            _ => name.to_string(),
        };
        let line = match r % 12 {
            0 => format!("{name} : {value}\n"),
            1 => format!("{name}\t:{value}\n"),
            2 => format!("{name}:\n {value}\n"),
            3 => format!("{name}:\n\t{value}\n"),
            4 => match value.split_once('/') {
                Some((a, b)) => format!("{name}: {a}/\n {b}\n"),
                None => format!("{name}:{value}\n"),
            },
            5 => format!("{name}   :   {value}\n"),
            6 => format!("{name}:{value}\n"),
            _ => format!("{name}: {value}\n"),
        };
        if (r >> 8).is_multiple_of(16) {
            format!("{line}{line}")
        } else {
            line
        }
    }

    /// A parameter list's tail for a `Content-Type`: nothing, an encoded
    /// word (RFC 2047, which RFC 2231 replaced but mailers still send), an
    /// RFC 2231 extended value or a continuation.
    pub fn params(&mut self) -> &'static str {
        if self.0 == 0 {
            return "";
        }
        match self.next() % 10 {
            0 => "; name=\"=?utf-8?q?Order=5F8123456789012345?=\"",
            1 => "; name*=utf-8''Order%208123456789012345",
            2 => "; name*0=\"Order \"; name*1=\"8123456789012345\"",
            3 => "; name=\"=?utf-8?B?bWVzc2FnZS9yZmM4MjI=?=\"",
            _ => "",
        }
    }
}

const CHARSETS: &[&str] = &[
    "utf-8",
    "UTF-8",
    "iso-8859-1",
    "windows-1252",
    "koi8-r",
    "shift_jis",
    "gb2312",
    "big5",
    "utf-16",
    "utf-16le",
    "x-unknown",
    "",
    "\"utf-8\"",
];

const FROMS: &[&str] = &[
    "AliExpress <transaction@notice.aliexpress.com>",
    "\"AliExpress\" <noreply@mail.aliexpress.com>",
    "=?utf-8?B?QWxpRXhwcmVzcw==?= <ae-notice@aliexpress.com>",
    "Cainiao <no-reply@cainiao.com>",
    "AliExpress Support <service@aliexpres-support.com>",
    "transaction_at_notice_aliexpress_com_0a1b2c@privaterelay.appleid.com",
    "'AliExpress' via Family <family@lists.example.org>",
    "someone@example.org",
    "<<@@>>",
    "undisclosed-recipients:;",
    "",
];

const SUBJECTS: &[&str] = &[
    "Order {N}: shipped",
    "Your order {N} has been delivered",
    "Package {N}: in transit",
    "Bestellung {N} wurde versandt",
    "=?utf-8?B?T3JkZXIg?= {N}",
    "=?utf-8?Q?Order_{N}_=E2=9C=85?=",
    "=?iso-8859-1?Q?Commande_{N}_exp=E9di=E9e?=",
    "=?broken?X?{N}?=",
    "=?utf-8?B?{N}",
    "Re: Fwd: {N}",
];

fn header_value() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        12 => (prop::sample::select(SUBJECTS), number())
            .prop_map(|(s, n)| ("Subject".to_string(), s.replace("{N}", &n))),
        1 => (1usize..200_000, 0usize..200).prop_map(|(len, fold)| {
            let mut v = String::with_capacity(len + len / 70);
            for i in 0..len {
                if fold > 0 && i > 0 && i % (fold + 1) == 0 {
                    v.push_str("\r\n ");
                }
                v.push(char::from(b'a' + (i % 26) as u8));
            }
            ("X-Huge".to_string(), v)
        }),
        3 => (1usize..3000).prop_map(|n| ("Subject".to_string(), "Order 8123456789012345 ".repeat(n / 20 + 1))),
        3 => ("[A-Za-z-]{1,20}", "\\PC{0,80}"),
        3 => prop::sample::select(&[
            "Mon, 02 Mar 2026 10:00:00 +0000", "Thu, 1 Jan 1970 00:00:00 -2359",
            "Fri, 31 Dec 9999 23:59:59 +9999", "yesterday", "", "Sun, 29 Feb 2026 25:61:61 +0000",
        ][..]).prop_map(|d| ("Date".to_string(), d.to_string())),
        2 => Just(("List-Id".to_string(), "<family.lists.example.org>".to_string())),
        3 => "[!-~]{0,60}".prop_map(|s| ("Message-ID".to_string(), format!("<{s}>"))),
        2 => Just(("Content-Type".to_string(), "message/rfc822".to_string())),
    ]
}

fn leaf() -> impl Strategy<Value = Part> {
    (
        any::<bool>(),
        prop::sample::select(CHARSETS),
        prop_oneof![
            2 => Just(Cte::None), 1 => Just(Cte::SevenBit), 2 => Just(Cte::EightBit),
            3 => Just(Cte::Base64), 1 => Just(Cte::BrokenBase64), 3 => Just(Cte::Qp),
            1 => Just(Cte::BrokenQp), 1 => Just(Cte::Bogus),
        ],
        body_text(),
        1usize..120,
    )
        .prop_map(|(html, charset, cte, text, wrap)| Part::Leaf {
            html,
            charset,
            cte,
            text,
            wrap,
        })
}

fn part() -> impl Strategy<Value = Part> {
    let leafy = prop_oneof![
        6 => leaf(),
        1 => ("[a-z]{1,10}/[a-z0-9.+-]{1,20}", proptest::collection::vec(any::<u8>(), 0..512))
            .prop_map(|(ctype, bytes)| Part::Opaque { ctype, bytes }),
    ];
    leafy.prop_recursive(5, 40, 6, |inner| {
        prop_oneof![
            3 => (
                prop::sample::select(&["mixed", "alternative", "related", "report", "x-weird"][..]),
                "[A-Za-z0-9'()+_,./:=?-]{1,70}",
                prop_oneof![
                    6 => Just(BoundaryFault::None), 1 => Just(BoundaryFault::NoClose),
                    1 => Just(BoundaryFault::NoParam), 1 => Just(BoundaryFault::FakeInPreamble),
                    1 => Just(BoundaryFault::Truncated), 1 => Just(BoundaryFault::Quoted),
                    1 => Just(BoundaryFault::Long),
                ],
                proptest::collection::vec(inner.clone(), 0..6),
            )
                .prop_map(|(subtype, boundary, fault, children)| Part::Multipart {
                    subtype,
                    boundary,
                    fault,
                    children,
                }),
            1 => (any::<bool>(), proptest::collection::vec(header_value(), 0..4), inner, any::<bool>())
                .prop_map(|(base64, headers, body, crlf)| Part::Message {
                    base64,
                    email: Box::new(Email { headers: with_from(headers), body, crlf, spelling: 0 }),
                }),
        ]
    })
}

fn with_from(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    if !headers.iter().any(|(k, _)| k == "From") {
        headers.insert(0, ("From".into(), FROMS[0].into()));
    }
    headers
}

pub fn email() -> impl Strategy<Value = Email> {
    (
        prop::sample::select(FROMS),
        proptest::collection::vec(header_value(), 0..6),
        part(),
        any::<bool>(),
        prop_oneof![1 => Just(0u32), 3 => 1u32..],
    )
        .prop_map(|(from, mut headers, body, crlf, spelling)| {
            headers.insert(0, ("From".into(), from.into()));
            headers.push(("MIME-Version".into(), "1.0".into()));
            Email {
                headers,
                body,
                crlf,
                spelling,
            }
        })
}

// ---------------------------------------------------------------------------
// Rendering

fn encode_charset(text: &str, charset: &str) -> Vec<u8> {
    match charset {
        "iso-8859-1" | "windows-1252" => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
        "utf-16" | "utf-16le" => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        _ => text.as_bytes().to_vec(),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8], wrap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut col = 0;
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
        col += 4;
        if col >= wrap.max(4) {
            out.extend_from_slice(b"\n");
            col = 0;
        }
    }
    out
}

fn quoted_printable(bytes: &[u8], wrap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut col = 0;
    for &b in bytes {
        if b == b'\n' {
            out.push(b);
            col = 0;
            continue;
        }
        if col >= wrap.max(2) {
            // A soft line break, wherever it falls (also inside a number).
            out.extend_from_slice(b"=\n");
            col = 0;
        }
        if b == b'=' || !(32..127).contains(&b) {
            out.extend_from_slice(format!("={b:02X}").as_bytes());
            col += 3;
        } else {
            out.push(b);
            col += 1;
        }
    }
    out
}

fn render_part(p: &Part, out: &mut Vec<u8>, sp: &mut Spelling) {
    match p {
        Part::Leaf {
            html,
            charset,
            cte,
            text,
            wrap,
        } => {
            let sub = if *html { "html" } else { "plain" };
            let text = if *html {
                format!("<html><body><table><tr><td>{text}</td></tr></table></body></html>")
            } else {
                text.clone()
            };
            let params = sp.params();
            if charset.is_empty() {
                out.extend_from_slice(
                    sp.line("Content-Type", &format!("text/{sub}{params}"))
                        .as_bytes(),
                );
            } else {
                out.extend_from_slice(
                    sp.line(
                        "Content-Type",
                        &format!("text/{sub}; charset={charset}{params}"),
                    )
                    .as_bytes(),
                );
            }
            let raw = encode_charset(&text, charset);
            let (name, body) = match cte {
                Cte::None => ("", raw),
                Cte::SevenBit => ("7bit", raw),
                Cte::EightBit => ("8bit", raw),
                Cte::Base64 => ("base64", base64(&raw, *wrap)),
                Cte::BrokenBase64 => {
                    let mut b = base64(&raw, *wrap);
                    let at = wrap % (b.len() + 1);
                    b.splice(at..at, b"*=%\x00".iter().copied());
                    b.truncate(b.len().saturating_sub(wrap % 3));
                    ("base64", b)
                }
                Cte::Qp => ("quoted-printable", quoted_printable(&raw, *wrap)),
                Cte::BrokenQp => {
                    let mut b = quoted_printable(&raw, *wrap);
                    b.extend_from_slice(b"=Z=\n=4=");
                    ("quoted-printable", b)
                }
                Cte::Bogus => ("x-uuencode", raw),
            };
            if !name.is_empty() {
                out.extend_from_slice(sp.line("Content-Transfer-Encoding", name).as_bytes());
            }
            out.extend_from_slice(b"\n");
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\n");
        }
        Part::Multipart {
            subtype,
            boundary,
            fault,
            children,
        } => {
            let b = match fault {
                BoundaryFault::Long => boundary.repeat(20),
                _ => boundary.clone(),
            };
            let ct = match fault {
                BoundaryFault::NoParam => format!("multipart/{subtype}"),
                BoundaryFault::Quoted => format!("multipart/{subtype};\n boundary=\"{b}\""),
                _ => format!("multipart/{subtype}; boundary={b}"),
            };
            out.extend_from_slice(sp.line("Content-Type", &ct).as_bytes());
            out.extend_from_slice(b"\nThis is a multi-part message in MIME format.\n");
            if let BoundaryFault::FakeInPreamble = fault {
                out.extend_from_slice(format!("--{b}x\n--{b}--\n").as_bytes());
            }
            for c in children {
                out.extend_from_slice(format!("--{b}\n").as_bytes());
                render_part(c, out, sp);
            }
            match fault {
                BoundaryFault::NoClose => {}
                BoundaryFault::Truncated => {
                    out.extend_from_slice(format!("--{}", &b[..b.len() / 2]).as_bytes())
                }
                _ => out.extend_from_slice(format!("--{b}--\nepilogue\n").as_bytes()),
            }
        }
        Part::Message { base64: b64, email } => {
            let global = sp.0 != 0 && sp.next().is_multiple_of(4);
            let ct = if global {
                "message/global"
            } else {
                "message/rfc822"
            };
            out.extend_from_slice(sp.line("Content-Type", ct).as_bytes());
            let inner = render_with(email, sp);
            if *b64 {
                out.extend_from_slice(sp.line("Content-Transfer-Encoding", "base64").as_bytes());
                out.extend_from_slice(b"\n");
                out.extend_from_slice(&base64(&inner, 76));
            } else {
                out.extend_from_slice(b"\n");
                out.extend_from_slice(&inner);
            }
            out.extend_from_slice(b"\n");
        }
        Part::Opaque { ctype, bytes } => {
            out.extend_from_slice(sp.line("Content-Type", ctype).as_bytes());
            out.extend_from_slice(b"\n");
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\n");
        }
    }
}

/// The email's bytes (LF or CRLF line ends).
pub fn render(e: &Email) -> Vec<u8> {
    render_with(e, &mut Spelling::new(e.spelling))
}

/// [`render`] continuing the spelling of an enclosing email (an attached
/// one has none of its own).
fn render_with(e: &Email, sp: &mut Spelling) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in &e.headers {
        out.extend_from_slice(sp.line(k, v).as_bytes());
    }
    render_part(&e.body, &mut out, sp);
    if e.crlf {
        let mut c = Vec::with_capacity(out.len() + out.len() / 20);
        for b in out {
            if b == b'\n' {
                c.push(b'\r');
            }
            c.push(b);
        }
        c
    } else {
        out
    }
}

// ---------------------------------------------------------------------------
// Byte-level damage and splicing

#[derive(Debug, Clone)]
pub enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), 1usize..4096).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

pub fn apply(raw: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let n = raw.len();
        match m {
            Mutation::Flip(i, b) if n > 0 => raw[i % n] ^= b | 1,
            Mutation::Flip(..) => {}
            Mutation::Insert(i, b) => {
                let at = i % (n + 1);
                raw.splice(at..at, b.iter().copied());
            }
            Mutation::Truncate(i) => raw.truncate(i % (n + 1)),
            Mutation::Duplicate(i, len) => {
                let from = i % (n + 1);
                let to = (from + len).min(n);
                let piece = raw[from..to].to_vec();
                raw.splice(to..to, piece);
            }
        }
    }
}

/// A container type nested by [`Input::Deep`].
#[derive(Debug, Clone, Copy)]
pub enum Container {
    Multipart(&'static str),
    /// `message/<subtype>`, base64-encoded or not.
    Message(&'static str, bool),
}

/// Every container RFC 2046 (and RFC 6532's message/global) defines.
pub const CONTAINERS: &[Container] = &[
    Container::Message("rfc822", false),
    Container::Message("rfc822", true),
    Container::Message("global", false),
    Container::Message("global", true),
    Container::Multipart("mixed"),
    Container::Multipart("alternative"),
    Container::Multipart("related"),
    Container::Multipart("digest"),
    Container::Multipart("report"),
    Container::Multipart("signed"),
    Container::Multipart("x-unknown"),
];

/// What one fuzz input is.
#[derive(Debug, Clone)]
pub enum Input {
    /// A generated email, then damaged.
    Generated(Email, Vec<Mutation>),
    /// A real fixture with a generated part spliced in, then damaged.
    Spliced {
        fixture: usize,
        at: usize,
        part: Part,
        muts: Vec<Mutation>,
    },
    /// A real fixture attached to a generated envelope (a forward).
    Forwarded { fixture: usize, envelope: Email },
    /// Plain random bytes.
    Bytes(Vec<u8>),
    /// Nesting around the parser's bounds and far past them: `depth`
    /// containers inside each other (each level's [`Container`] picked by
    /// `kinds`, its header spelt by `spelling`), or `parts` sibling parts,
    /// around a fixture.
    Deep {
        fixture: usize,
        depth: usize,
        kinds: u32,
        spelling: u32,
        parts: usize,
    },
}

pub fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        5 => (email(), proptest::collection::vec(mutation(), 0..3))
            .prop_map(|(e, m)| Input::Generated(e, m)),
        4 => (any::<usize>(), any::<usize>(), part(), proptest::collection::vec(mutation(), 0..6))
            .prop_map(|(fixture, at, part, muts)| Input::Spliced { fixture, at, part, muts }),
        1 => (any::<usize>(), email())
            .prop_map(|(fixture, envelope)| Input::Forwarded { fixture, envelope }),
        1 => proptest::collection::vec(any::<u8>(), 0..4096).prop_map(Input::Bytes),
        1 => (
            any::<usize>(),
            prop_oneof![8 => 0usize..48, 1 => 900usize..1100, 1 => 5_000usize..20_000],
            any::<u32>(),
            any::<u32>(),
            prop_oneof![Just(0usize), 990usize..1010],
        )
            .prop_map(|(fixture, depth, kinds, spelling, parts)| Input::Deep { fixture, depth, kinds, spelling, parts }),
    ]
}

fn fixture(i: usize) -> Vec<u8> {
    let f = &*FIXTURES;
    if f.is_empty() {
        return Vec::new();
    }
    f[i % f.len()].clone()
}

/// The bytes of one input.
pub fn bytes(input: &Input) -> Vec<u8> {
    match input {
        Input::Generated(e, muts) => {
            let mut raw = render(e);
            apply(&mut raw, muts);
            raw
        }
        Input::Spliced {
            fixture: i,
            at,
            part,
            muts,
        } => {
            let mut raw = fixture(*i);
            let mut piece = Vec::new();
            render_part(part, &mut piece, &mut Spelling::new(*at as u32));
            let at = at % (raw.len() + 1);
            raw.splice(at..at, piece);
            apply(&mut raw, muts);
            raw
        }
        Input::Forwarded {
            fixture: i,
            envelope,
        } => {
            let mut e = envelope.clone();
            let inner = fixture(*i);
            e.body = Part::Multipart {
                subtype: "mixed",
                boundary: "fwd-boundary".into(),
                fault: BoundaryFault::None,
                children: vec![
                    e.body.clone(),
                    Part::Opaque {
                        ctype: "message/rfc822".into(),
                        bytes: inner,
                    },
                ],
            };
            render(&e)
        }
        Input::Bytes(b) => b.clone(),
        Input::Deep {
            fixture: i,
            depth,
            kinds,
            spelling,
            parts,
        } => {
            // Levels are collected as a prefix and a suffix each and joined
            // once (copying the whole nest at every level was quadratic);
            // a base64 level joins what is inside it and encodes that.
            let mut core = fixture(*i);
            let mut pre: Vec<Vec<u8>> = Vec::new();
            let mut post: Vec<Vec<u8>> = Vec::new();
            let join = |core: Vec<u8>, pre: &mut Vec<Vec<u8>>, post: &mut Vec<Vec<u8>>| {
                let mut out = Vec::new();
                for p in pre.drain(..).rev() {
                    out.extend_from_slice(&p);
                }
                out.extend_from_slice(&core);
                for p in post.drain(..) {
                    out.extend_from_slice(&p);
                }
                out
            };
            let mut sp = Spelling::new(*spelling);
            // One kind for every level, or a different one per level.
            let mut pick = Spelling::new(kinds | 1);
            let same = kinds % 2 == 0;
            let mut encoded = 0;
            for d in 0..*depth {
                let kind = CONTAINERS
                    [(if same { *kinds >> 1 } else { pick.next() }) as usize % CONTAINERS.len()];
                let mut outer = format!(
                    "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: Fwd {d}\n"
                )
                .into_bytes();
                match kind {
                    Container::Multipart(sub) => {
                        let ct = format!("multipart/{sub}; boundary=b{d}");
                        outer.extend_from_slice(sp.line("Content-Type", &ct).as_bytes());
                        outer.extend_from_slice(format!("\n--b{d}\n").as_bytes());
                        if sub == "digest" {
                            // RFC 2046 §5.1.5: a digest part without a
                            // Content-Type is a message/rfc822.
                            outer.extend_from_slice(b"\n");
                        }
                        pre.push(outer);
                        post.push(format!("\n--b{d}--\n").into_bytes());
                    }
                    Container::Message(sub, b64) => {
                        outer.extend_from_slice(
                            sp.line("Content-Type", &format!("message/{sub}"))
                                .as_bytes(),
                        );
                        // Base64 grows each level by a third: a few levels only.
                        if b64 && encoded < 4 && core.len() + 128 * pre.len() < 1 << 20 {
                            encoded += 1;
                            let inner = join(std::mem::take(&mut core), &mut pre, &mut post);
                            outer.extend_from_slice(
                                sp.line("Content-Transfer-Encoding", "base64").as_bytes(),
                            );
                            outer.extend_from_slice(b"\n");
                            outer.extend_from_slice(&base64(&inner, 76));
                            core = outer;
                        } else {
                            outer.extend_from_slice(b"\n");
                            pre.push(outer);
                        }
                    }
                }
            }
            let mut raw = join(core, &mut pre, &mut post);
            if *parts > 0 {
                let mut outer = b"From: AliExpress <transaction@notice.aliexpress.com>\nContent-Type: multipart/mixed; boundary=many\n\n".to_vec();
                for _ in 0..*parts {
                    outer.extend_from_slice(b"--many\nContent-Type: text/plain\n\nx\n");
                }
                outer.extend_from_slice(b"--many\n");
                outer.extend_from_slice(&raw);
                outer.extend_from_slice(b"\n--many--\n");
                raw = outer;
            }
            raw
        }
    }
}

// ---------------------------------------------------------------------------
// The checks

/// The most time one input may take in the suite's debug build (the
/// release build of `scripts/fuzz` reports its slowest input).
pub const TIME_LIMIT: Duration = Duration::from_secs(5);

/// What an extraction must satisfy, whatever the input.
pub fn check_extraction(ex: &Extraction) -> Result<(), String> {
    if ex.orders.len() > MAX_ORDERS_PER_EMAIL {
        return Err(format!("{} orders from one email", ex.orders.len()));
    }
    if !ex.is_aliexpress && !ex.orders.is_empty() {
        return Err("orders from an email that is not AliExpress's".into());
    }
    let ids: Vec<&str> = ex
        .orders
        .iter()
        .filter_map(|o| o.order_id.as_deref())
        .collect();
    for id in &ids {
        aliwatch::model::check_order_id(id).map_err(|e| format!("order id: {e}"))?;
    }
    let mut seen = std::collections::HashSet::new();
    for id in &ids {
        if !seen.insert(*id) {
            return Err(format!("order {id} twice"));
        }
    }
    for o in &ex.orders {
        let mut seen = std::collections::HashSet::new();
        for t in &o.tracking_numbers {
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            {
                return Err(format!("tracking number {t:?} is not normalised"));
            }
            match numbers::classify(t) {
                Verdict::Invalid => return Err(format!("tracking number {t} fails its check")),
                Verdict::Unknown if !numbers::plausible_unknown(t) => {
                    return Err(format!("tracking number {t} is not plausible"))
                }
                _ => {}
            }
            if ids.contains(&t.as_str()) {
                return Err(format!("{t} is both an order and a tracking number"));
            }
            if ex.replaced_tracking_numbers.contains(t) {
                return Err(format!("{t} is both replaced and current"));
            }
            if !seen.insert(t) {
                return Err(format!("tracking number {t} twice in one order"));
            }
        }
    }
    let json = serde_json::to_string(&ex.to_spec_json("fuzz.eml")).map_err(|e| e.to_string())?;
    serde_json::from_str::<serde_json::Value>(&json).map_err(|e| e.to_string())?;
    Ok(())
}

/// Extracts one email within [`TIME_LIMIT`] and checks its output.
/// Returns the time it took.
pub fn check_extract(raw: &[u8], limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let out = extract(raw);
    let took = start.elapsed();
    if took > limit {
        return Err(format!("took {took:?} (limit {limit:?})"));
    }
    match out {
        Ok(ex) => check_extraction(&ex)?,
        Err(e) => {
            if e.to_string().is_empty() {
                return Err("an empty error".into());
            }
        }
    }
    Ok(took)
}

/// Writes `emails` as an mboxrd file: `From ` lines between them, body
/// lines matching `>*From ` quoted with one more `>`.
pub fn mboxrd(emails: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in emails.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(b"From MAILER-DAEMON Mon Mar  2 10:00:00 2026\n");
        for line in e.split_inclusive(|b| *b == b'\n') {
            let gt = line.iter().take_while(|&&b| b == b'>').count();
            if line.get(gt..).is_some_and(|r| r.starts_with(b"From ")) {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
    }
    out
}

/// An email as an mbox holds it: non-empty and ending in a line end.
pub fn mbox_ready(mut e: Vec<u8>) -> Vec<u8> {
    if !e.ends_with(b"\n") {
        e.push(b'\n');
    }
    e
}

/// Reads an mbox from memory: the messages, and what could not be read.
pub fn read_mbox(bytes: &[u8]) -> (Vec<Vec<u8>>, ReadProblems) {
    let mut out = Vec::new();
    let mut problems = ReadProblems::default();
    let r = mailfile::read_mbox(
        Cursor::new(bytes),
        "fuzz.mbox",
        chrono::DateTime::default(),
        &mut problems,
        &mut |m| {
            out.push(m.raw);
            Ok(())
        },
    );
    if let Err(e) = r {
        problems.errors.push(e.to_string());
    }
    (out, problems)
}

/// mboxrd round trip: the reader gives back exactly the emails written,
/// and each is extracted under the same checks.
pub fn check_mbox_round_trip(emails: &[Vec<u8>], limit: Duration) -> Result<(), String> {
    let emails: Vec<Vec<u8>> = emails.iter().cloned().map(mbox_ready).collect();
    let file = mboxrd(&emails);
    let (got, problems) = read_mbox(&file);
    if !problems.errors.is_empty() {
        return Err(format!("mbox problems: {:?}", problems.errors));
    }
    if got.len() != emails.len() {
        return Err(format!(
            "{} emails written, {} read back",
            emails.len(),
            got.len()
        ));
    }
    for (i, (a, b)) in emails.iter().zip(&got).enumerate() {
        if a != b {
            return Err(format!("email {i} changed in the mbox round trip"));
        }
        check_extract(b, limit)?;
    }
    Ok(())
}

/// Any bytes as an mbox: no panic, no more bytes out than in.
pub fn check_mbox_bytes(bytes: &[u8]) -> Result<(), String> {
    let (got, _) = read_mbox(bytes);
    let total: usize = got.iter().map(Vec::len).sum();
    if total > bytes.len() {
        return Err(format!(
            "{total} bytes read from a {}-byte mbox",
            bytes.len()
        ));
    }
    Ok(())
}

/// One import tree: a Maildir (`cur`, `new`, `tmp`), loose `.eml` files,
/// an mbox and files that are not mail, in nested directories.
#[derive(Debug, Clone)]
pub struct Tree {
    pub cur: Vec<Vec<u8>>,
    pub new: Vec<Vec<u8>>,
    pub tmp: Vec<Vec<u8>>,
    pub eml: Vec<Vec<u8>>,
    pub mbox: Vec<Vec<u8>>,
    pub other: Vec<Vec<u8>>,
    pub depth: usize,
}

fn small_email() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => input().prop_map(|i| bytes(&i)),
        1 => any::<usize>().prop_map(fixture),
    ]
    .prop_map(|mut b| {
        // A file walked as an mbox starts with "From "; a Maildir file never does.
        while b.starts_with(b"From ") {
            b.remove(0);
        }
        b
    })
}

pub fn tree() -> impl Strategy<Value = Tree> {
    let emails = |n| proptest::collection::vec(small_email(), 0..n);
    (
        emails(4),
        emails(4),
        emails(2),
        emails(4),
        emails(4),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..256), 0..3),
        0usize..4,
    )
        .prop_map(|(cur, new, tmp, eml, mbox, other, depth)| Tree {
            cur,
            new,
            tmp,
            eml,
            mbox,
            other,
            depth,
        })
}

/// Writes the tree, imports it with the real reader and checks that every
/// message is read once (none from `tmp/`, none from non-mail files) and
/// extracts under the same checks.
pub fn check_tree(t: &Tree, limit: Duration) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut root = dir.path().to_path_buf();
    for d in 0..t.depth {
        root = root.join(format!("level{d}"));
    }
    let md = root.join("Maildir");
    for (sub, msgs) in [("cur", &t.cur), ("new", &t.new), ("tmp", &t.tmp)] {
        std::fs::create_dir_all(md.join(sub)).map_err(|e| e.to_string())?;
        for (i, m) in msgs.iter().enumerate() {
            std::fs::write(md.join(sub).join(format!("{i}.host:2,S")), m)
                .map_err(|e| e.to_string())?;
        }
    }
    for (i, m) in t.eml.iter().enumerate() {
        std::fs::write(root.join(format!("loose{i}.eml")), m).map_err(|e| e.to_string())?;
    }
    for (i, m) in t.other.iter().enumerate() {
        let mut m = m.clone();
        while m.starts_with(b"From ") {
            m.remove(0);
        }
        std::fs::write(root.join(format!("notes{i}.txt")), m).map_err(|e| e.to_string())?;
    }
    let mbox: Vec<Vec<u8>> = t.mbox.iter().cloned().map(mbox_ready).collect();
    if !mbox.is_empty() {
        std::fs::write(root.join("export"), mboxrd(&mbox)).map_err(|e| e.to_string())?;
    }
    let mut read = Vec::new();
    let problems = mailfile::for_each_message(&[dir.path().to_path_buf()], &mut |m| {
        read.push(m.raw);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    if !problems.errors.is_empty() {
        return Err(format!("problems: {:?}", problems.errors));
    }
    let want = t.cur.len() + t.new.len() + t.eml.len() + mbox.len();
    if read.len() != want {
        return Err(format!("{want} messages written, {} read", read.len()));
    }
    let mut expected: Vec<&Vec<u8>> = t
        .cur
        .iter()
        .chain(&t.new)
        .chain(&t.eml)
        .chain(&mbox)
        .collect();
    let mut got: Vec<&Vec<u8>> = read.iter().collect();
    expected.sort();
    got.sort();
    if expected != got {
        return Err("the messages read differ from those written".into());
    }
    for m in &read {
        check_extract(m, limit)?;
    }
    Ok(())
}
