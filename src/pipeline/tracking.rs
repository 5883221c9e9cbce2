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
use crate::model::Provider;
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

/// One pass: every due parcel is routed to a provider
/// (`decide::schedule::route`), registered where that provider needs it and
/// asked for, in batches; the answers are written one transaction per
/// request. A provider that fails, rate-limits or refuses is left alone
/// (`decide::schedule::backoff`) and its parcels are routed to the next
/// provider in the same pass; no parcel is asked of the same provider twice
/// in one pass. Provider failures never fail the pass: the parcels stay due
/// and the summary says what happened. Only store errors are `Err`.
pub async fn tracking_pass(
    store: &mut Store,
    tracker: &Tracker,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<RefreshSummary> {
    let mut sum = RefreshSummary::default();
    if rules.tracking.providers.is_empty() {
        return Ok(sum);
    }
    let start_requests = tracker.requests();
    let mut state = store.tracking_state()?;
    let before = state.clone();
    // A backoff that ran out is no fact any more.
    state
        .unavailable
        .retain(|(_, a)| a.unavailable_until.is_some_and(|u| u > now));
    let providers = tracker.list();
    let mut asked: HashSet<(String, Provider)> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    // Parcels waiting for 17TRACK quota with no other provider to ask.
    let mut queued: HashSet<String> = HashSet::new();
    // Providers that refused or failed in this pass without a backoff.
    let mut out_this_pass: HashSet<Provider> = HashSet::new();
    // Each round asks each provider at most once per parcel, so the rounds
    // end; the bound is only a second guard.
    // Parcels a provider answered "not found" for in this pass: when the
    // grace period is over, the next provider is asked in the same pass
    // (the answer already scheduled them for later).
    let mut not_found_now: HashSet<String> = HashSet::new();
    for _round in 0..(3 * Provider::TRACKERS.len() + 2) {
        let mut due = due_parcels(store, now, rules)?;
        if !not_found_now.is_empty() {
            let have: HashSet<String> = due.iter().map(|p| p.number.to_string()).collect();
            due.extend(
                store
                    .tracking_candidates()?
                    .into_iter()
                    .map(|c| c.parcel)
                    .filter(|p| {
                        let n = p.number.as_str();
                        not_found_now.contains(n) && !have.contains(n)
                    }),
            );
        }
        if due.is_empty() {
            break;
        }
        let mut groups: Vec<(Provider, Vec<DueParcel>)> =
            providers.iter().map(|p| (p, Vec::new())).collect();
        {
            let available = |p: Provider| state.available(p, now) && !out_this_pass.contains(&p);
            let facts = schedule::RouteFacts {
                providers,
                available: &available,
                can_register: schedule::may_register(&state, now),
            };
            for p in due {
                let prov = match schedule::route(&facts, &p, now) {
                    schedule::Route::Ask(prov) => prov,
                    schedule::Route::NeedsQuota => {
                        // Counted once: 17TRACK reports those it queued itself.
                        let n = p.number.to_string();
                        let told = asked.contains(&(n.clone(), Provider::SeventeenTrack));
                        if !told && queued.insert(n) {
                            sum.queued += 1;
                        }
                        continue;
                    }
                    schedule::Route::Paced(_) | schedule::Route::Nobody => continue,
                };
                if !asked.insert((p.number.to_string(), prov)) {
                    continue;
                }
                if seen.insert(p.number.to_string()) {
                    sum.due += 1;
                }
                if let Some((_, g)) = groups.iter_mut().find(|(q, _)| *q == prov) {
                    g.push(p);
                }
            }
        }
        if groups.iter().all(|(_, g)| g.is_empty()) {
            break;
        }
        for (prov, due) in groups {
            let Some(provider) = tracker.get(prov).filter(|_| !due.is_empty()) else {
                continue;
            };
            let outcomes = provider.refresh(&due, &state, now).await;
            for o in &outcomes {
                if let Outcome::Batch(b) = o {
                    not_found_now.extend(
                        b.results
                            .iter()
                            .filter(|r| !r.found)
                            .map(|r| r.number.to_string()),
                    );
                }
            }
            let confirmed = apply(
                store,
                prov,
                rules,
                &due,
                outcomes,
                &mut state,
                &mut sum,
                &mut out_this_pass,
                now,
            )?;
            if !confirmed.is_empty() && !out_this_pass.contains(&prov) {
                let outcomes = provider.finish(&confirmed).await;
                apply(
                    store,
                    prov,
                    rules,
                    &due,
                    outcomes,
                    &mut state,
                    &mut sum,
                    &mut out_this_pass,
                    now,
                )?;
            }
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
    let outcomes: std::collections::BTreeMap<(String, String), u64> = tracker
        .take_outcomes()
        .into_iter()
        .map(|((provider, outcome), n)| ((provider.to_string(), outcome.to_string()), n))
        .collect();
    store.add_counters(TRACKING_REQUESTS, &outcomes)?;
    if sum.due > 0 {
        tracing::info!(
            providers = %providers.spelled(),
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
    provider: Provider,
    rules: &Rules,
    due: &[DueParcel],
    outcomes: Vec<Outcome>,
    state: &mut TrackingState,
    sum: &mut RefreshSummary,
    out_this_pass: &mut HashSet<Provider>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Option<i64>)>> {
    let name = provider.as_str();
    let mut codes: HashMap<String, Option<i64>> = due
        .iter()
        .map(|p| (p.number.to_string(), p.carrier_code))
        .collect();
    let mut confirmed = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Batch(batch) => {
                let out = store.apply_provider_batch(provider, &batch, now, |prev, r| {
                    parcel::decide(prev, r, provider, now, &rules.tracking)
                })?;
                for (n, code) in &batch.registered {
                    codes.insert(n.to_string(), *code);
                }
                if provider == Provider::SeventeenTrack {
                    if let Some(q) = state.quota_remain.as_mut() {
                        *q = (*q - batch.registered.len() as i64).max(0);
                    }
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
                kind,
            } => {
                let wait = schedule::backoff(provider, kind);
                tracing::warn!(provider = name, numbers = numbers.len(), error = %error, backoff_s = wait.as_secs(), "{what} failed; parcels stay due, the next provider is asked");
                sum.failed += numbers.len();
                sum.errors.push(format!("{name} {what}: {error}"));
                out_this_pass.insert(provider);
                if !wait.is_zero() {
                    let until =
                        now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(1));
                    state.set_unavailable(provider, until, format!("{what}: {error}"));
                }
            }
            Outcome::Queued(n) => sum.queued += n,
            Outcome::QuotaProbed(at) => state.quota_checked_at = Some(at),
            Outcome::QuotaRead(remain) => state.quota_remain = Some(remain),
            Outcome::QuotaExhausted(news) => {
                if let Some(msg) = news {
                    state.quota_exhausted = Some(msg);
                    state.quota_checked_at = Some(now);
                }
                sum.quota_exhausted = true;
            }
            Outcome::QuotaBack => state.quota_exhausted = None,
            Outcome::AuthFailed(msg) => {
                tracing::error!(provider = name, error = %msg, "this provider is skipped for this pass");
                state.last_error = Some(msg.clone());
                out_this_pass.insert(provider);
                sum.auth_failed = true;
                sum.errors.push(msg);
            }
        }
    }
    Ok(confirmed)
}
