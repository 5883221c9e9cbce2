//! One tracking pass: which parcels are due (`decide::schedule`, with the
//! one "completed" rule of `decide::orders`), what the provider says about
//! them (`tracking`), what each answer changes (`decide::parcel`), written
//! one transaction per provider request (`store`). A second round asks for
//! last-mile numbers learned in the first.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::decide::{parcel, schedule, Rules};
use crate::facts::{DoneReason, DueParcel, TrackingState};
use crate::store::Store;
use crate::tracking::{Outcome, Tracker};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshSummary {
    /// Parcels that were due.
    pub due: usize,
    /// Numbers registered with 17TRACK in this pass.
    pub registered: usize,
    /// Parcels with a fresh answer from the provider.
    pub refreshed: usize,
    /// Parcels whose status changed.
    pub changed: usize,
    pub new_events: usize,
    /// Parcels whose tracking ended (delivered and confirmed, expired, …).
    pub finished: usize,
    /// Last-mile numbers learned.
    pub last_mile: usize,
    /// Parcels left due because a request failed.
    pub failed: usize,
    /// Parcels waiting for registration quota.
    pub queued: usize,
    pub quota_exhausted: bool,
    /// The provider refused the key: the pass stopped.
    pub auth_failed: bool,
    /// HTTP requests sent (retries included).
    pub requests: u64,
    pub errors: Vec<String>,
}

/// The ids of completed orders, by the status derivation.
fn completed_orders(store: &Store, now: DateTime<Utc>, rules: &Rules) -> Result<HashSet<String>> {
    let report = super::status_report(store, now, rules)?;
    Ok(report
        .orders
        .into_iter()
        .filter(|o| !o.is_active())
        .map(|o| o.order_id)
        .collect())
}

/// Parcels due for a refresh at `now`: followed (not done, not replaced),
/// not belonging only to completed orders, and never checked or past
/// their next check. Never-checked parcels come first.
pub fn due_parcels(store: &Store, now: DateTime<Utc>, rules: &Rules) -> Result<Vec<DueParcel>> {
    let candidates = store.tracking_candidates()?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let completed = completed_orders(store, now, rules)?;
    Ok(schedule::due(candidates, &completed, now))
}

/// Parcels still being followed (not done, not replaced, not delivered or
/// returned, not only in completed orders), for the daemon's status line.
pub fn active_parcel_count(store: &Store, now: DateTime<Utc>, rules: &Rules) -> Result<usize> {
    let report = super::status_report(store, now, rules)?;
    let candidates: HashSet<String> = store
        .tracking_candidates()?
        .into_iter()
        .map(|c| c.parcel.number.to_string())
        .collect();
    let active_orders = report.orders.iter().filter(|o| o.is_active());
    let parcels = active_orders
        .flat_map(|o| o.parcels.iter())
        .chain(report.unassigned_parcels.iter())
        .filter(|p| !p.status.is_final() && candidates.contains(&p.tracking_number))
        .map(|p| p.tracking_number.as_str())
        .collect::<HashSet<_>>();
    Ok(parcels.len())
}

/// The counter of tracking requests in the store (labels: provider,
/// outcome).
pub const TRACKING_REQUESTS: &str = "tracking_requests";

/// One pass: every due parcel is registered (17TRACK, once) and asked for,
/// in batches, and the answers are written one transaction per request.
/// Provider failures never fail the pass: the parcels stay due and the
/// summary says what happened. Only store errors are `Err`.
pub async fn tracking_pass(
    store: &mut Store,
    tracker: &Tracker,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<RefreshSummary> {
    let mut sum = RefreshSummary::default();
    if rules.tracking.provider == crate::model::Provider::None {
        return Ok(sum);
    }
    let start_requests = tracker.requests();
    let mut state = store.tracking_state()?;
    let before = state.clone();
    let mut attempted: HashSet<String> = HashSet::new();
    for _round in 0..2 {
        let due: Vec<DueParcel> = due_parcels(store, now, rules)?
            .into_iter()
            .filter(|p| !attempted.contains(p.number.as_str()))
            .collect();
        if due.is_empty() {
            break;
        }
        attempted.extend(due.iter().map(|p| p.number.to_string()));
        sum.due += due.len();
        let last_mile_before = sum.last_mile;
        let outcomes = tracker.provider().refresh(&due, &state, now).await;
        let confirmed = apply(
            store, tracker, rules, &due, outcomes, &mut state, &mut sum, now,
        )?;
        if !confirmed.is_empty() && !sum.auth_failed {
            let outcomes = tracker.provider().finish(&confirmed).await;
            apply(
                store, tracker, rules, &due, outcomes, &mut state, &mut sum, now,
            )?;
        }
        if sum.auth_failed || sum.last_mile == last_mile_before {
            break;
        }
    }
    sum.requests = tracker.requests() - start_requests;
    if !sum.auth_failed {
        if sum.errors.is_empty() {
            if sum.requests > 0 {
                state.last_error = None;
            }
        } else {
            state.last_error = Some(sum.errors.join("; "));
        }
    }
    if state != before {
        store.set_tracking_state(&state)?;
    }
    // `aliwatch_tracking_requests_total` (SPEC §9): kept in the database,
    // so it survives restarts and counts `sync` too.
    let provider = tracker.provider().name();
    let outcomes: std::collections::BTreeMap<(String, String), u64> = tracker
        .take_outcomes()
        .into_iter()
        .map(|(outcome, n)| ((provider.to_string(), outcome.to_string()), n))
        .collect();
    store.add_counters(TRACKING_REQUESTS, &outcomes)?;
    if sum.due > 0 {
        tracing::info!(
            provider = tracker.provider().name(),
            due = sum.due,
            registered = sum.registered,
            refreshed = sum.refreshed,
            changed = sum.changed,
            finished = sum.finished,
            failed = sum.failed,
            queued = sum.queued,
            requests = sum.requests,
            "tracking pass"
        );
    }
    Ok(sum)
}

/// Carries out a provider's outcomes in order; returns the parcels whose
/// delivery was just confirmed (with their carrier codes).
#[allow(clippy::too_many_arguments)]
fn apply(
    store: &mut Store,
    tracker: &Tracker,
    rules: &Rules,
    due: &[DueParcel],
    outcomes: Vec<Outcome>,
    state: &mut TrackingState,
    sum: &mut RefreshSummary,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Option<i64>)>> {
    let name = tracker.provider().name();
    let mut codes: HashMap<String, Option<i64>> = due
        .iter()
        .map(|p| (p.number.to_string(), p.carrier_code))
        .collect();
    let mut confirmed = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Batch(batch) => {
                let out = store.apply_provider_batch(name, &batch, now, |prev, r| {
                    parcel::decide(prev, r, now, &rules.tracking)
                })?;
                for (n, code) in &batch.registered {
                    codes.insert(n.to_string(), *code);
                }
                sum.registered += batch.registered.len();
                sum.refreshed += batch.results.len();
                sum.changed += out.changed;
                sum.new_events += out.new_events;
                sum.finished += out.done.len();
                sum.last_mile += out.last_mile.len();
                for (n, reason) in out.done {
                    if reason == DoneReason::Confirmed {
                        let code = codes.get(&n).copied().flatten();
                        confirmed.push((n, code));
                    }
                }
            }
            Outcome::BatchFailed {
                what,
                numbers,
                error,
            } => {
                tracing::warn!(provider = name, numbers, error = %error, "{what} failed; parcels stay due");
                sum.failed += numbers;
                sum.errors.push(format!("{name} {what}: {error}"));
            }
            Outcome::Queued(n) => sum.queued += n,
            Outcome::QuotaProbed(at) => state.quota_checked_at = Some(at),
            Outcome::QuotaExhausted(news) => {
                if let Some(msg) = news {
                    state.quota_exhausted = Some(msg);
                    state.quota_checked_at = Some(now);
                }
                sum.quota_exhausted = true;
            }
            Outcome::QuotaBack => state.quota_exhausted = None,
            Outcome::AuthFailed(msg) => {
                tracing::error!(provider = name, error = %msg, "tracking stopped for this pass");
                state.last_error = Some(msg.clone());
                sum.auth_failed = true;
                sum.errors.push(msg);
            }
        }
    }
    Ok(confirmed)
}
