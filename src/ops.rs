//! What the database commands do, once: `status`, `calendar`,
//! `digest --print`, `add`, `protection`, `done` and `import`, each a
//! function of a store, the config and "now" that returns what the command
//! prints. The command line calls them on the database when no service
//! runs, and the running service calls the same functions for the command
//! line through its control socket (SPEC §1, "one state per config"), so
//! both paths say and change exactly the same.

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::{EmailOrigin, IngestOutcome, OrderAction, TrackingNumber};
use crate::pipeline;
use crate::render::status::Layout;
use crate::store::Store;

/// A refusal the user caused (exit 1 with this message, nothing else).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failed {
    pub message: String,
}

impl Failed {
    pub fn new(message: impl Into<String>) -> Failed {
        Failed {
            message: message.into(),
        }
    }
}

/// `digest --send` needs `[smtp]`: a config error (exit 78) without it.
pub fn smtp_for_digest(cfg: &Config) -> Result<&crate::config::SmtpConfig> {
    cfg.smtp.as_ref().ok_or_else(|| {
        crate::config::ConfigError("digest --send needs an [smtp] section in the config".into())
            .into()
    })
}

/// `digest --send`: today's digest by email now (an extra copy if it was
/// sent already); the line that says so. The caller holds the right to
/// send (the run lock, or the service's sending guard).
pub async fn digest_send(cfg: &Config, now: DateTime<Utc>) -> Result<String> {
    let sender = crate::notify::SmtpSender::new(smtp_for_digest(cfg)?)?;
    let mut store = Store::open(&cfg.database)?;
    let report = pipeline::status_report(&store, now, &cfg.rules())?;
    let sent = pipeline::send_digest_now(&mut store, &report, cfg, now, &sender).await?;
    Ok(format!("digest sent ({})\n", sent.message_id))
}

/// Exit code of an invalid config (sysexits.h EX_CONFIG, SPEC §1).
pub const EXIT_CONFIG: u8 = 78;

/// How a failed command ends, the same whether it ran here or in the
/// service: the exit code (78 for a config error, including a secret file
/// that is missing or empty; 1 otherwise) and the message after
/// "aliwatch: " (none for a [`Failed`] that already said everything).
pub fn exit_for(e: &anyhow::Error) -> (u8, Option<String>) {
    if let Some(ce) = e.downcast_ref::<crate::config::ConfigError>() {
        return (EXIT_CONFIG, Some(format!("invalid config: {ce}")));
    }
    if let Some(crate::config::SecretError::Config(ce)) =
        e.downcast_ref::<crate::config::SecretError>()
    {
        return (EXIT_CONFIG, Some(format!("invalid config: {ce}")));
    }
    if let Some(f) = e.downcast_ref::<Failed>() {
        return (1, (!f.message.is_empty()).then(|| f.message.clone()));
    }
    (1, Some(format!("{e:#}")))
}

/// `status`: the table (in `layout`) or, with `json`, `status --json`.
pub fn status(
    store: &Store,
    cfg: &Config,
    now: DateTime<Utc>,
    json: bool,
    all: bool,
    layout: Layout,
) -> Result<String> {
    let rules = cfg.rules();
    if json {
        // The same function answers `GET /api/status`.
        return pipeline::status_json(store, now, &rules, all);
    }
    let mut report = pipeline::status_report(store, now, &rules)?;
    if !all {
        report.orders.retain(|o| o.is_active());
    }
    Ok(crate::render::render_status_table(&report, &rules, layout))
}

/// `calendar`: the iCalendar feed.
pub fn calendar(store: &Store, cfg: &Config, now: DateTime<Utc>) -> Result<String> {
    pipeline::calendar(store, now, &cfg.rules())
}

/// `digest --print`: the digest's text part.
pub fn digest_text(store: &Store, cfg: &Config, now: DateTime<Utc>) -> Result<String> {
    let rules = cfg.rules();
    let report = pipeline::status_report(store, now, &rules)?;
    Ok(crate::render::render_digest(&report, &rules, now).text)
}

/// `add`: the number is checked before it is recorded (a typo or an order
/// number never becomes a parcel that is asked for every day).
pub fn add(
    store: &mut Store,
    tracking_number: &str,
    order: Option<&str>,
    create: bool,
    force: bool,
    now: DateTime<Utc>,
) -> Result<String> {
    let number = TrackingNumber::new(tracking_number);
    let (format, from_email) = match crate::extract::numbers::check_typed(number.as_str(), force) {
        Ok(f) => (f, false),
        // A number aliwatch itself took from an AliExpress email (a
        // subject's parcel position accepts formats it does not know) is a
        // parcel by that email's word: the digest suggests `add NUMBER
        // --order ID` for exactly these, so the suggestion must work
        // without --force. Anything else refused stays refused.
        Err(message) => {
            if !store.parcel_named_by_email(number.as_str())? {
                return Err(Failed::new(message).into());
            }
            let f =
                crate::extract::numbers::check_typed(number.as_str(), true).map_err(Failed::new)?;
            (f, true)
        }
    };
    if !from_email && store.order_known(number.as_str())? {
        return Err(Failed::new(format!(
            "{number} is an AliExpress order number (an email named it), not a tracking number; to tie a parcel to it use `aliwatch add TRACKING_NUMBER --order {number}`"
        ))
        .into());
    }
    let new = store.add_parcel(&number, order, create, now)?;
    let format = match (format, from_email) {
        (Some(f), _) => f,
        (None, true) => "named by an AliExpress email",
        (None, false) => "format unknown to aliwatch",
    };
    let order = order.map(crate::model::normalise_number);
    Ok(match (new, &order) {
        (true, Some(o)) => format!("tracking {number} ({format}) for order {o}\n"),
        (true, None) => format!("tracking {number} ({format})\n"),
        (false, Some(o)) => format!("{number} ({format}) is tied to order {o}\n"),
        (false, None) => format!("already tracking {number} ({format})\n"),
    })
}

/// The longest one `protection --extend` may be (AliExpress sellers
/// extend by days or weeks). Checked here, not only by the command line's
/// parser: the control socket and the web face come through here too.
pub const MAX_EXTEND_DAYS: u32 = 365;

/// What `protection --extend DAYS | --until DATE` records (`--extend`
/// wins when both are given); a refusal when neither is, or when DAYS is
/// not 1 to [`MAX_EXTEND_DAYS`].
pub fn protection_action(
    extend: Option<u32>,
    until: Option<chrono::NaiveDate>,
) -> Result<OrderAction, Failed> {
    match (extend, until) {
        (Some(days), _) if !(1..=MAX_EXTEND_DAYS).contains(&days) => Err(Failed::new(format!(
            "extend: {days} days is not between 1 and {MAX_EXTEND_DAYS}; give the days the seller granted"
        ))),
        (Some(days), _) => Ok(OrderAction::Extend(days)),
        (None, Some(date)) => Ok(OrderAction::Until(date)),
        (None, None) => Err(Failed::new(
            "protection needs --extend DAYS or --until YYYY-MM-DD",
        )),
    }
}

/// `protection ORDER --extend DAYS | --until DATE`.
pub fn protection(
    store: &mut Store,
    cfg: &Config,
    order_id: &str,
    action: OrderAction,
    now: DateTime<Utc>,
) -> Result<String> {
    store.add_order_action(order_id, action, now)?;
    let report = pipeline::status_report(store, now, &cfg.rules())?;
    let Some(o) = report.orders.iter().find(|o| o.order_id == order_id.trim()) else {
        return Ok(String::new());
    };
    Ok(match (o.protection_ends, o.protection_days_left) {
        (Some(end), Some(left)) => format!(
            "order {}: protection ends {end} ({left} days left, source {})\n",
            o.order_id,
            o.protection_source.as_str()
        ),
        // Advice that works: say why nothing moved and what does.
        _ if o.protection_source == crate::model::ProtectionSource::Unknown => format!(
            "order {}: recorded; its protection end is unknown (nothing dates its shipping), so the extension applies once a date is known; check the order page ({}) and give its date with --until YYYY-MM-DD\n",
            o.order_id, o.url
        ),
        _ => format!("order {}: recorded\n", o.order_id),
    })
}

/// `done ORDER`.
pub fn done(store: &mut Store, order_id: &str, now: DateTime<Utc>) -> Result<String> {
    store.add_order_action(order_id, OrderAction::Done, now)?;
    Ok(format!(
        "order {}: completed; no more tracking or warnings\n",
        order_id.trim()
    ))
}

/// `untrack ORDER` (Home Assistant's "Stop tracking").
pub fn untrack(store: &mut Store, order_id: &str, now: DateTime<Utc>) -> Result<String> {
    let n = store.stop_tracking_order(order_id, now)?;
    Ok(format!(
        "order {}: tracking stopped ({n} parcel{} no longer asked for); its protection warnings go on\n",
        crate::model::normalise_number(order_id),
        if n == 1 { "" } else { "s" }
    ))
}

/// One email for `import`, wherever it was read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImportedEmail {
    /// The file (and message) it came from, for messages.
    pub label: String,
    pub received_at: DateTime<Utc>,
    #[serde(with = "base64_bytes")]
    pub raw: Vec<u8>,
}

/// Counts for the `import` summary.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportSummary {
    pub read: u64,
    pub aliexpress: u64,
    pub duplicates: u64,
    pub orders_new: u64,
    pub orders_updated: u64,
    pub parcels_new: u64,
    pub unparseable: u64,
}

impl ImportSummary {
    /// Feeds one email through the pipeline, as mail from IMAP is.
    pub fn ingest(
        &mut self,
        store: &mut Store,
        m: &ImportedEmail,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let origin = EmailOrigin {
            source: format!("import:{}", m.label),
            imap: None,
            received_at: m.received_at,
        };
        let outcome = pipeline::ingest_email(store, &m.raw, &origin, now)
            .map_err(|e| e.context(format!("importing {}", m.label)))?;
        self.read += 1;
        match outcome {
            IngestOutcome::New {
                is_aliexpress,
                orders_new,
                orders_updated,
                parcels_new,
            } => {
                self.aliexpress += u64::from(is_aliexpress);
                self.orders_new += orders_new as u64;
                self.orders_updated += orders_updated as u64;
                self.parcels_new += parcels_new as u64;
            }
            IngestOutcome::Duplicate => self.duplicates += 1,
            IngestOutcome::Unparseable(e) => {
                tracing::warn!(file = %m.label, error = %e, "skipped an email that cannot be parsed");
                self.unparseable += 1;
            }
        }
        Ok(())
    }

    /// The summary line.
    pub fn line(&self, secs: f64, unreadable: usize) -> String {
        format!(
            "imported {} emails in {secs:.1}s: {} from AliExpress, {} already known, {} new orders, {} orders updated, {} new parcels, {} unparseable, {unreadable} unreadable inputs\n",
            self.read, self.aliexpress, self.duplicates, self.orders_new, self.orders_updated, self.parcels_new, self.unparseable
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service's replies once said exit 1 where the command run
    /// directly said 78 (an empty secret file), and printed a bare
    /// "aliwatch: " for a refusal with nothing more to say.
    #[test]
    fn a_failure_ends_the_same_whether_the_command_or_the_service_ran_it() {
        let secret = anyhow::Error::from(crate::config::SecretError::Config(
            crate::config::ConfigError("smtp.password_file: the secret is empty".into()),
        ));
        let (code, msg) = exit_for(&secret);
        assert_eq!(code, EXIT_CONFIG);
        assert_eq!(
            msg.as_deref(),
            Some("invalid config: smtp.password_file: the secret is empty")
        );
        let reply = crate::control::protocol::Reply::from_error(&secret);
        assert_eq!((reply.exit, reply.error), (code, msg));
        assert_eq!(exit_for(&Failed::new("").into()), (1, None));
        assert_eq!(
            exit_for(&anyhow::anyhow!("imap: connection refused")),
            (1, Some("imap: connection refused".to_string()))
        );
    }

    /// The control socket and the web face reach this without the command
    /// line's parser: an out-of-range extension is refused here.
    #[test]
    fn protection_extensions_outside_1_to_365_days_are_refused_whoever_asks() {
        for bad in [0, 366, 4_000_000_000] {
            let e = protection_action(Some(bad), None).expect_err("refused");
            assert!(
                e.message.contains("between 1 and 365"),
                "{bad}: {}",
                e.message
            );
        }
        for good in [1, 365] {
            assert_eq!(
                protection_action(Some(good), None).expect("accepted"),
                OrderAction::Extend(good)
            );
        }
    }
}

/// Raw bytes as base64 in JSON (the control socket carries emails).
mod base64_bytes {
    use base64::Engine;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
