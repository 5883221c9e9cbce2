//! The schema, as an append-only list of migrations keyed by
//! `PRAGMA user_version`.
//!
//! Rules (Delta Chat core, `src/sql/migrations.rs`): never edit a migration
//! that has shipped; add a new one at the end. Each runs in one transaction
//! together with its version bump, so a crash leaves the database either
//! before or after a migration, never half-way.

/// Migration `i` (0-based) moves the database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: the first schema.
    r#"
-- Every email aliwatch has looked at, AliExpress or not, so that it is
-- processed once. `dedup_key` is "mid:<Message-ID>" when the email has one,
-- else "sha256:<hash of the raw bytes>".
CREATE TABLE emails (
    id              INTEGER PRIMARY KEY,
    dedup_key       TEXT NOT NULL UNIQUE,
    message_id      TEXT,
    content_sha256  TEXT NOT NULL,
    subject         TEXT NOT NULL DEFAULT '',
    email_date      TEXT,               -- RFC 3339 UTC: Date header, else INTERNALDATE/file time
    is_aliexpress   INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    error           TEXT,               -- set when the email could not be parsed
    source          TEXT NOT NULL,      -- "imap:<account>/<mailbox>" or "import:<path>"
    processed_at    TEXT NOT NULL
) STRICT;
CREATE INDEX emails_content ON emails(content_sha256);

-- Where an email was seen on an IMAP server.
CREATE TABLE email_locations (
    account      TEXT NOT NULL,
    mailbox      TEXT NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    email_id     INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    PRIMARY KEY (account, mailbox, uidvalidity, uid)
) STRICT;

-- Per account and mailbox: (UIDVALIDITY, next UID to look at). uid_next is
-- advanced only after every email below it is processed and committed.
CREATE TABLE mailbox_state (
    account       TEXT NOT NULL,
    mailbox       TEXT NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uid_next      INTEGER NOT NULL,
    last_sync_at  TEXT,
    PRIMARY KEY (account, mailbox)
) STRICT;

CREATE TABLE orders (
    order_id       TEXT PRIMARY KEY,
    first_seen_at  TEXT NOT NULL
) STRICT;

-- Facts per (order, email). Order state, dates and protection are derived
-- from these facts at read time, so the result does not depend on the
-- order in which emails arrive.
CREATE TABLE order_emails (
    order_id          TEXT NOT NULL REFERENCES orders(order_id) ON DELETE CASCADE,
    email_id          INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    email_date        TEXT NOT NULL,
    parcel_status     TEXT,
    parcel_count      INTEGER NOT NULL DEFAULT 0,  -- parcels the email named for this order
    protection_until  TEXT,           -- YYYY-MM-DD
    extended_days     INTEGER,
    completed         INTEGER NOT NULL DEFAULT 0,
    disputed          INTEGER NOT NULL DEFAULT 0,
    eta_from          TEXT,
    eta_to            TEXT,
    PRIMARY KEY (order_id, email_id)
) STRICT;

-- Manual commands: `protection --extend/--until`, `done`.
CREATE TABLE order_actions (
    id        INTEGER PRIMARY KEY,
    order_id  TEXT NOT NULL REFERENCES orders(order_id) ON DELETE CASCADE,
    action    TEXT NOT NULL,          -- 'extend' | 'until' | 'done'
    value     TEXT,                   -- days for extend, YYYY-MM-DD for until
    at        TEXT NOT NULL
) STRICT;

CREATE TABLE parcels (
    tracking_number    TEXT PRIMARY KEY,
    first_seen_at      TEXT NOT NULL,
    -- the number this one was replaced by (LP… -> last-mile number)
    replaced_by        TEXT REFERENCES parcels(tracking_number),
    -- from the tracking provider
    carrier            TEXT,
    carrier_code       INTEGER,
    provider_status    TEXT,           -- unified status from the provider
    status_detail      TEXT,
    raw_status         TEXT,           -- the provider's own status/sub-status
    eta_from           TEXT,
    eta_to             TEXT,
    delivered_at       TEXT,
    registered_at      TEXT,
    last_checked_at    TEXT,
    next_check_at      TEXT,
    not_found_since    TEXT,
    tracking_done_at   TEXT,           -- no more refreshes (delivered+confirmed, expired, stopped)
    tracking_error     TEXT
) STRICT;

CREATE TABLE order_parcels (
    order_id         TEXT NOT NULL REFERENCES orders(order_id) ON DELETE CASCADE,
    tracking_number  TEXT NOT NULL REFERENCES parcels(tracking_number) ON DELETE CASCADE,
    PRIMARY KEY (order_id, tracking_number)
) STRICT;
CREATE INDEX order_parcels_parcel ON order_parcels(tracking_number);

-- Facts per (parcel, email): what the email said about the parcel.
CREATE TABLE parcel_emails (
    tracking_number  TEXT NOT NULL REFERENCES parcels(tracking_number) ON DELETE CASCADE,
    email_id         INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    email_date       TEXT NOT NULL,
    parcel_status    TEXT,
    PRIMARY KEY (tracking_number, email_id)
) STRICT;

-- Carrier events from a tracking provider, deduplicated by
-- (provider, UTC time, normalised description).
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    tracking_number  TEXT NOT NULL REFERENCES parcels(tracking_number) ON DELETE CASCADE,
    provider         TEXT NOT NULL,
    time_utc         TEXT NOT NULL,     -- RFC 3339 UTC
    time_local       TEXT,              -- as the provider gave it, with its offset
    description      TEXT NOT NULL,
    description_key  TEXT NOT NULL,     -- normalised, for deduplication
    location         TEXT,
    status           TEXT,
    raw_code         TEXT,
    UNIQUE (tracking_number, provider, time_utc, description_key)
) STRICT;
CREATE INDEX events_parcel_time ON events(tracking_number, time_utc DESC);

-- Every notification, recorded before it is sent and marked after, so that
-- it is sent once across restarts and crashes.
CREATE TABLE notifications (
    key            TEXT PRIMARY KEY,    -- "warning:<order>:<days>d" or "digest:<YYYY-MM-DD>"
    kind           TEXT NOT NULL,       -- 'warning' | 'digest'
    order_id       TEXT,
    threshold_days INTEGER,
    digest_date    TEXT,
    message_id     TEXT NOT NULL,
    state          TEXT NOT NULL,       -- 'pending' | 'sent' | 'superseded'
    created_at     TEXT NOT NULL,
    sent_at        TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT
) STRICT;

-- Small key/value facts (tracking quota state, last provider error, …).
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;
"#,
    // v2: what the `meta` key/value table carried moves into columns; the
    // notification ledger gains a channel (existing rows are email).
    r#"
-- The ledger, keyed by (channel, key): each push channel gets every event
-- once, independently of the others.
CREATE TABLE notifications_v2 (
    channel         TEXT NOT NULL,       -- 'email' or a [[notify]] name
    key             TEXT NOT NULL,       -- "warning:<order>:<days>d" or "digest:<YYYY-MM-DD>"
    kind            TEXT NOT NULL,       -- 'warning' | 'digest'
    order_id        TEXT,
    threshold_days  INTEGER,
    digest_date     TEXT,
    message_id      TEXT NOT NULL,
    state           TEXT NOT NULL,       -- 'pending' | 'sent' | 'superseded'
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_attempt_at TEXT,                -- when the last failed attempt was made
    PRIMARY KEY (channel, key)
) STRICT;
INSERT INTO notifications_v2 (channel, key, kind, order_id, threshold_days, digest_date,
                              message_id, state, created_at, sent_at, attempts, last_error,
                              last_attempt_at)
SELECT 'email', n.key, n.kind, n.order_id, n.threshold_days, n.digest_date, n.message_id,
       n.state, n.created_at, n.sent_at, n.attempts, n.last_error,
       (SELECT m.value FROM meta m WHERE m.key = 'notify.last_attempt:' || n.key)
FROM notifications n;
DROP TABLE notifications;
ALTER TABLE notifications_v2 RENAME TO notifications;
CREATE INDEX notifications_pending ON notifications(state) WHERE state = 'pending';

-- The tracking provider's account state: one row.
CREATE TABLE tracking_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    quota_exhausted   TEXT,      -- set while 17TRACK refuses registrations: why
    quota_checked_at  TEXT,      -- last getquota probe
    last_error        TEXT       -- the last error that needs the user
) STRICT;
INSERT INTO tracking_state (id, quota_exhausted, quota_checked_at, last_error)
SELECT 1,
       (SELECT value FROM meta WHERE key = 'tracking.quota_exhausted'),
       (SELECT value FROM meta WHERE key = 'tracking.quota_checked_at'),
       (SELECT value FROM meta WHERE key = 'tracking.last_error');
DELETE FROM meta WHERE key LIKE 'notify.last_attempt:%' OR key LIKE 'tracking.%';
"#,
    // v3: what each email shows an order contains, and its store.
    r#"
-- Items per (order, email), in the email's order.
CREATE TABLE order_items (
    order_id        TEXT NOT NULL REFERENCES orders(order_id) ON DELETE CASCADE,
    email_id        INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    title           TEXT NOT NULL,
    variant         TEXT,
    quantity        INTEGER,
    price_amount    TEXT,             -- decimal with a dot, e.g. '1.99'
    price_currency  TEXT,             -- ISO 4217
    PRIMARY KEY (order_id, email_id, position)
) STRICT;
ALTER TABLE order_emails ADD COLUMN store TEXT;
"#,
    // v4: this database's instance id, and the MQTT retained configs it
    // published (SPEC §8: an instance removes only what it recorded).
    r#"
INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', lower(hex(randomblob(4))));
-- Discovery configs published under the old topics (no instance id) by
-- this database's earlier versions: removed once per channel, and only
-- when this database already knew orders.
INSERT OR IGNORE INTO meta (key, value)
SELECT 'mqtt.legacy_configs', 'pending' WHERE EXISTS (SELECT 1 FROM orders);
CREATE TABLE mqtt_retained (
    channel  TEXT NOT NULL,   -- the [[notify]] name
    topic    TEXT NOT NULL,   -- a discovery config topic published retained
    PRIMARY KEY (channel, topic)
) STRICT;
"#,
    // v5: several tracking providers (issue 22): which provider's answer
    // each parcel shows, what each provider answered per parcel (routing,
    // not-found grace, per-parcel pacing), and providers left alone.
    r#"
ALTER TABLE parcels ADD COLUMN provider TEXT;   -- whose answer the parcel shows
UPDATE parcels SET provider = (
    SELECT e.provider FROM events e WHERE e.tracking_number = parcels.tracking_number
    ORDER BY e.time_utc DESC, e.id DESC LIMIT 1);
CREATE TABLE parcel_providers (
    tracking_number  TEXT NOT NULL REFERENCES parcels(tracking_number) ON DELETE CASCADE,
    provider         TEXT NOT NULL,   -- config spelling
    last_asked_at    TEXT,            -- its last answer for the parcel
    not_found_since  TEXT,            -- it has had nothing since (NULL: found)
    PRIMARY KEY (tracking_number, provider)
) STRICT;
-- What each provider answered before v5 (one provider then): its last
-- check, so that Cainiao's 6 h pacing holds across the upgrade.
INSERT INTO parcel_providers (tracking_number, provider, last_asked_at, not_found_since)
SELECT tracking_number, provider, last_checked_at, not_found_since FROM parcels
WHERE provider IS NOT NULL AND last_checked_at IS NOT NULL;
CREATE TABLE provider_state (
    provider           TEXT PRIMARY KEY,
    unavailable_until  TEXT,
    reason             TEXT
) STRICT;
ALTER TABLE tracking_state ADD COLUMN quota_remain INTEGER;
"#,
];
