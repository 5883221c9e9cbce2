//! What this database's instance keeps on MQTT brokers: its instance id
//! (stable per database, part of every Home Assistant discovery id) and
//! the retained discovery configs each channel published, so that an
//! instance removes only configs it published itself (SPEC §8), never
//! another install's on the same broker.

use std::collections::BTreeSet;

use anyhow::Result;
use rusqlite::{params, OptionalExtension};

use super::Store;

impl Store {
    /// This database's instance id (8 hex digits, made by the migration).
    pub fn instance_id(&self) -> Result<String> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'instance_id'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id.unwrap_or_else(|| "00000000".into()))
    }

    /// The config topics `channel` published and has not removed.
    pub fn retained_topics(&self, channel: &str) -> Result<BTreeSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT topic FROM mqtt_retained WHERE channel = ?1")?;
        let rows = stmt.query_map([channel], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that `channel` is publishing `topic` (before it does).
    pub fn record_retained_topic(&mut self, channel: &str, topic: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO mqtt_retained (channel, topic) VALUES (?1, ?2)",
            params![channel, topic],
        )?;
        Ok(())
    }

    /// Forgets `topic` once `channel` cleared it on the broker.
    pub fn forget_retained_topic(&mut self, channel: &str, topic: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM mqtt_retained WHERE channel = ?1 AND topic = ?2",
            params![channel, topic],
        )?;
        Ok(())
    }

    /// Whether `channel` still has to clear the configs that versions
    /// before instance ids published (only for a database that had orders
    /// then).
    pub fn legacy_configs_pending(&self, channel: &str) -> Result<bool> {
        let pending: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'mqtt.legacy_configs')
               AND NOT EXISTS (SELECT 1 FROM meta WHERE key = 'mqtt.legacy_configs_done:' || ?1)",
            [channel],
            |r| r.get(0),
        )?;
        Ok(pending)
    }

    /// `channel` cleared the old configs.
    pub fn legacy_configs_done(&mut self, channel: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('mqtt.legacy_configs_done:' || ?1, 'done')",
            [channel],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_forgets_only_what_it_cleared_and_each_database_has_its_own_id() {
        let mut s = Store::open_in_memory().expect("store");
        let id = s.instance_id().expect("id");
        assert_eq!(id.len(), 8, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(
            Store::open_in_memory()
                .expect("store")
                .instance_id()
                .expect("id"),
            id
        );
        s.record_retained_topic("ha", "homeassistant/sensor/x/a/config")
            .expect("records");
        s.record_retained_topic("ha", "homeassistant/sensor/x/b/config")
            .expect("records");
        s.record_retained_topic("other", "homeassistant/sensor/x/c/config")
            .expect("records");
        s.forget_retained_topic("ha", "homeassistant/sensor/x/a/config")
            .expect("forgets");
        assert_eq!(
            s.retained_topics("ha").expect("reads"),
            BTreeSet::from(["homeassistant/sensor/x/b/config".to_string()])
        );
        // A fresh database has no configs of earlier versions to clear.
        assert!(!s.legacy_configs_pending("ha").expect("reads"));
    }
}
