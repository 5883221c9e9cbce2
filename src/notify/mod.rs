//! Notifications: the daily digest and Buyer Protection warnings — what is
//! due (pure), how they look (pure), and sending them over SMTP.

/// One pass: send what is due (placeholder until the notify module lands).
pub async fn pass(
    cfg: &crate::config::Config,
    store: &mut crate::store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let _ = (cfg, store, now);
    Ok(())
}
