//! The control socket's messages (pure): what the command line asks, what
//! the service answers, and the framing (one JSON object per line, each at
//! most [`MAX_FRAME`] bytes).

use std::io::BufRead;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ops::ImportedEmail;

/// The version both sides speak; a service that speaks another refuses
/// the request with a message naming both.
pub const VERSION: u32 = 1;

/// The largest email `import` hands to the service (IMAP's default
/// `max_message_size` is 25 MiB); a larger one is reported as unreadable.
pub const MAX_EMAIL: usize = 32 * 1024 * 1024;

/// The largest line either side accepts: an email of [`MAX_EMAIL`] in
/// base64 (4/3 of it) and its label.
pub const MAX_FRAME: usize = 48 * 1024 * 1024;

/// The first line a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub aliwatch: u32,
    pub request: Request,
}

/// A command for the service, with what the command line parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Status {
        json: bool,
        all: bool,
        wide: bool,
        /// The width of the client's terminal.
        columns: usize,
    },
    Calendar,
    DigestPrint,
    DigestSend,
    Add {
        tracking_number: String,
        order: Option<String>,
        create: bool,
        force: bool,
    },
    Protection {
        order_id: String,
        extend: Option<u32>,
        until: Option<NaiveDate>,
    },
    Done {
        order_id: String,
    },
    Untrack {
        order_id: String,
    },
    /// Followed by [`ImportFrame`]s, the last one `End`.
    Import,
    Sync,
}

impl Request {
    /// The command's name, for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status { .. } => "status",
            Request::Calendar => "calendar",
            Request::DigestPrint => "digest --print",
            Request::DigestSend => "digest --send",
            Request::Add { .. } => "add",
            Request::Protection { .. } => "protection",
            Request::Done { .. } => "done",
            Request::Untrack { .. } => "untrack",
            Request::Import => "import",
            Request::Sync => "sync",
        }
    }
}

/// What an `import` client sends after its hello.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFrame {
    Email(ImportedEmail),
    /// The inputs the client could not read (they count in the summary).
    End {
        unreadable: usize,
    },
}

/// The service's first answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub accepted: bool,
    /// Why not, when not.
    #[serde(default)]
    pub error: Option<String>,
}

/// The service's last answer: what the command prints and its exit code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub stdout: String,
    /// Notes for stderr (shown unless `-q`).
    pub notes: String,
    /// The error message for stderr, without the `aliwatch: ` prefix.
    pub error: Option<String>,
    pub exit: u8,
}

impl Reply {
    /// A reply from a command's result, with the exit codes of SPEC §1.
    pub fn from_result(r: anyhow::Result<String>) -> Reply {
        match r {
            Ok(stdout) => Reply {
                stdout,
                ..Reply::default()
            },
            Err(e) => Reply::from_error(&e),
        }
    }

    /// The exit code and message for `e`, as `main` reports errors
    /// ([`crate::ops::exit_for`]).
    pub fn from_error(e: &anyhow::Error) -> Reply {
        let (exit, error) = crate::ops::exit_for(e);
        Reply {
            error,
            exit,
            ..Reply::default()
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the line is longer than {MAX_FRAME} bytes")]
    TooLong,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a valid message: {0}")]
    Json(#[from] serde_json::Error),
}

/// One message as a line.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Reads one line of at most [`MAX_FRAME`] bytes and parses it; `Ok(None)`
/// at the end of the stream.
pub fn read_frame<T: for<'de> Deserialize<'de>>(
    reader: &mut impl BufRead,
) -> Result<Option<T>, FrameError> {
    let mut line = Vec::new();
    let mut limited = std::io::Read::take(&mut *reader, MAX_FRAME as u64 + 1);
    let n = limited.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') && line.len() > MAX_FRAME {
        return Err(FrameError::TooLong);
    }
    Ok(Some(serde_json::from_slice(&line)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_line_each() {
        let requests = [
            Request::Status {
                json: true,
                all: false,
                wide: false,
                columns: 80,
            },
            Request::Done {
                order_id: "8123".into(),
            },
            Request::Protection {
                order_id: "8123".into(),
                extend: None,
                until: NaiveDate::from_ymd_opt(2027, 1, 2),
            },
            Request::Sync,
        ];
        let mut wire = Vec::new();
        for r in &requests {
            wire.extend(encode(&Hello {
                aliwatch: VERSION,
                request: r.clone(),
            }));
        }
        let mut reader = std::io::Cursor::new(wire);
        for r in &requests {
            let h: Hello = read_frame(&mut reader).expect("reads").expect("a line");
            assert_eq!(&h.request, r);
        }
        assert!(read_frame::<Hello>(&mut reader).expect("reads").is_none());
    }

    #[test]
    fn a_line_over_the_limit_is_refused_without_reading_it_all() {
        let mut wire = vec![b'x'; MAX_FRAME + 10];
        wire.push(b'\n');
        let mut reader = std::io::Cursor::new(wire);
        assert!(matches!(
            read_frame::<Hello>(&mut reader),
            Err(FrameError::TooLong)
        ));
        assert!(matches!(
            read_frame::<Hello>(&mut std::io::Cursor::new(b"{\"aliwatch\":1}\n".to_vec())),
            Err(FrameError::Json(_))
        ));
    }
}
