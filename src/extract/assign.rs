//! Step 6 of extraction: from everything found to the answer. Fixes
//! running numbers glued to order numbers, bounds and deduplicates the
//! numbers, gives every order the parcels the email gives for it, and
//! settles the kind once the orders are known.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Multi-order mails glue a running number in front of each order number
/// ("Bestellung 19999999999990001", "Bestellung 29999999999990002", see
/// fixtures real/126). When the label-found numbers of a list start with
/// 1, 2, 3 … and stripping that index yields a number the email also gives
/// elsewhere, strip it from all of them. Then drop any number that is just
/// a 1–2 digit prefix glued to another order number of the email.
pub(super) fn fix_running_numbers(found: &mut Found) {
    let others: HashSet<String> = found
        .subject_orders
        .iter()
        .chain(&found.link_orders)
        .cloned()
        .collect();
    let mut seen = HashSet::new();
    let list: Vec<String> = found
        .label_orders
        .iter()
        .filter(|(id, _)| seen.insert(id.clone()))
        .map(|(id, _)| id.clone())
        .collect();
    let long: Vec<&String> = list.iter().filter(|id| id.len() >= 13).collect();
    if long.len() >= 2 {
        let stripped: Option<Vec<(String, String)>> = long
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let idx = (i + 1).to_string();
                id.strip_prefix(idx.as_str())
                    .filter(|rest| rest.len() >= 12)
                    .map(|rest| ((*id).clone(), rest.to_string()))
            })
            .collect();
        if let Some(stripped) = stripped {
            if stripped
                .iter()
                .any(|(_, s)| others.contains(s) || list.contains(s))
            {
                for (orig, new) in stripped {
                    for (id, _) in found.label_orders.iter_mut() {
                        if *id == orig {
                            id.clone_from(&new);
                        }
                    }
                }
            }
        }
    }
    let all: HashSet<String> = found
        .label_orders
        .iter()
        .map(|(id, _)| id.clone())
        .chain(others)
        .collect();
    let glued = |id: &str| {
        (1..=2).any(|k| {
            id.get(k..)
                .is_some_and(|rest| rest.len() >= 12 && all.contains(rest))
        })
    };
    found.label_orders.retain(|(id, _)| !glued(id));
}

pub(super) fn dedup(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

pub(super) fn assign(
    found: &Found,
    orders: &[String],
    tracks: &[String],
    body: &str,
) -> Vec<OrderRef> {
    if orders.is_empty() {
        if tracks.is_empty() {
            return Vec::new();
        }
        return vec![OrderRef {
            order_id: None,
            tracking_numbers: tracks.to_vec(),
            ..OrderRef::default()
        }];
    }
    let mut out: Vec<OrderRef> = orders
        .iter()
        .map(|o| OrderRef {
            order_id: Some(o.clone()),
            ..OrderRef::default()
        })
        .collect();
    let paired: HashSet<&str> = found
        .pairs
        .iter()
        .filter(|(o, t)| orders.contains(o) && tracks.contains(t))
        .map(|(_, t)| t.as_str())
        .collect();
    let unpaired: Vec<&String> = tracks
        .iter()
        .filter(|t| !paired.contains(t.as_str()))
        .collect();
    // Order mentions with body positions, for table layouts.
    let mentions: Vec<(&str, usize)> = found
        .label_orders
        .iter()
        .filter(|(id, _)| orders.contains(id))
        .map(|(id, p)| (id.as_str(), *p))
        .collect();
    let distinct_mentioned: HashSet<&str> = mentions.iter().map(|(id, _)| *id).collect();
    let by_position = unpaired.len() >= 2 && distinct_mentioned.len() >= 2;
    for t in tracks {
        let mut targets: Vec<&str> = Vec::new();
        if paired.contains(t.as_str()) {
            targets.extend(
                found
                    .pairs
                    .iter()
                    .filter(|(_, pt)| pt == t)
                    .map(|(o, _)| o.as_str()),
            );
        } else if by_position {
            // A parcel shared by several orders is listed once per order
            // (one table row each): every position the number stands at
            // names the order mentioned nearest before it.
            let near: Vec<&str> = found
                .tracks
                .iter()
                .filter(|(x, _)| x == t)
                .filter_map(|(_, p)| *p)
                .filter_map(|p| {
                    mentions
                        .iter()
                        .filter(|(_, mp)| *mp <= p)
                        .max_by_key(|(_, mp)| *mp)
                        .or_else(|| {
                            mentions
                                .iter()
                                .filter(|(_, mp)| *mp > p)
                                .min_by_key(|(_, mp)| *mp)
                        })
                        .map(|(id, _)| *id)
                })
                .collect();
            if near.is_empty() {
                targets.extend(orders.iter().map(String::as_str));
            } else {
                targets.extend(near);
            }
        } else if let Some(own) = row_owners(found, &mentions, t, body) {
            targets.extend(own);
        } else {
            targets.extend(orders.iter().map(String::as_str));
        }
        for o in out.iter_mut() {
            if o.order_id
                .as_deref()
                .is_some_and(|id| targets.contains(&id))
                && !o.tracking_numbers.contains(t)
            {
                o.tracking_numbers.push(t.clone());
            }
        }
    }
    out
}

/// A label row of stacked order/parcel rows ("Order number N1 / Status …",
/// "Order number N2 / Tracking number T"): the one parcel number stands at
/// most a few lines below exactly one order's label, with no other order
/// between, so it is that order's, not every order's. `None` when any of
/// its positions is not like that (a number given once for a combined
/// delivery below all the orders' blocks is theirs together).
pub(super) fn row_owners<'f>(
    found: &'f Found,
    mentions: &[(&'f str, usize)],
    t: &str,
    body: &str,
) -> Option<Vec<&'f str>> {
    /// How many lines a row's order label may stand above its parcel
    /// number: the label, the order number (same or next line), one more
    /// row of the same order ("Status: Shipped") or the parcel's label.
    const ROW_LINES: usize = 3;
    let distinct: HashSet<&str> = mentions.iter().map(|(id, _)| *id).collect();
    if distinct.len() < 2 {
        return None;
    }
    let mut owners = Vec::new();
    for p in found.tracks.iter().filter(|(x, _)| x == t).map(|(_, p)| *p) {
        let p = p?;
        let mp = mentions
            .iter()
            .map(|(_, mp)| *mp)
            .filter(|mp| *mp <= p)
            .max()?;
        let mut at: Vec<&str> = mentions
            .iter()
            .filter(|(_, m)| *m == mp)
            .map(|(id, _)| *id)
            .collect();
        at.dedup();
        let between = body.get(mp..p)?;
        let lines = between.split('\n').filter(|l| !l.trim().is_empty()).count();
        if at.len() != 1 || lines > ROW_LINES {
            return None;
        }
        owners.extend(at);
    }
    (!owners.is_empty()).then_some(owners)
}

/// Keeps the first [`MAX_ORDERS_PER_EMAIL`] orders and logs when it drops
/// some.
pub(super) fn cap_orders(ex: &mut Extraction) {
    if ex.orders.len() > MAX_ORDERS_PER_EMAIL {
        tracing::warn!(
            message_id = ex.message_id.as_deref().unwrap_or("-"),
            orders = ex.orders.len(),
            kept = MAX_ORDERS_PER_EMAIL,
            "an email names more orders than any real one; keeping the first"
        );
        ex.orders.truncate(MAX_ORDERS_PER_EMAIL);
    }
}

/// Bounds, fixes and deduplicates the numbers found: returns the orders, the
/// current tracking numbers and the replaced ones, no number in two lists.
pub(super) fn select_numbers(found: &mut Found) -> (Vec<String>, Vec<String>, Vec<String>) {
    // Bound the work on hostile input: no real email names more than a few
    // dozen orders or parcels.
    found.label_orders.truncate(MAX_ITEMS);
    found.link_orders.truncate(MAX_ITEMS);
    found.subject_orders.truncate(MAX_ITEMS);
    found.pairs.truncate(MAX_ITEMS * 4);
    found.replaced.truncate(MAX_ITEMS);
    fix_running_numbers(found);
    let replaced = dedup(found.replaced.iter().cloned());
    let tracks: Vec<String> = dedup(
        found
            .tracks
            .iter()
            .map(|(t, _)| t.clone())
            .filter(|t| !replaced.contains(t)),
    )
    .into_iter()
    .take(MAX_ITEMS * 4)
    .collect();
    let orders: Vec<String> = dedup(
        found
            .subject_orders
            .iter()
            .cloned()
            .chain(found.label_orders.iter().map(|(id, _)| id.clone()))
            .chain(found.link_orders.iter().cloned())
            .filter(|o| !tracks.contains(o) && !replaced.contains(o)),
    );
    let orders: Vec<String> = orders.into_iter().take(MAX_ITEMS).collect();
    let tracks: Vec<String> = tracks
        .into_iter()
        .filter(|t| !orders.contains(t))
        .take(MAX_ITEMS)
        .collect();
    (orders, tracks, replaced)
}

/// What the kind is settled from, besides the status phrase's kind.
pub(super) struct Evidence {
    /// A status phrase was found (subject or opening lines).
    pub(super) status: bool,
    /// The subject names a parcel in its parcel position.
    pub(super) subject_parcel: bool,
    /// The subject is an event by structure and vocabulary alone: a status
    /// phrase and a parcel position whose number was refused.
    pub(super) subject_event: bool,
    /// The email comes from a carrier (directly or forwarded).
    pub(super) from_carrier: bool,
    /// Some tracking number was taken.
    pub(super) tracks: bool,
}

/// Settles the kind once the orders are assigned: without a status phrase,
/// from the parcels given; a carrier's `shipped` is `in_transit`; an email
/// without any order or parcel is `other`, unless its subject alone says
/// what happened to a parcel.
pub(super) fn settle_kind(ex: &mut Extraction, ev: Evidence) {
    let Evidence {
        status: has_status,
        subject_parcel,
        subject_event,
        from_carrier,
        tracks: has_tracks,
    } = ev;
    if !has_status {
        // No known status phrase: a parcel subject (`Package T: …`) is a
        // carrier step; a tracking number given elsewhere means shipped.
        (ex.kind, ex.parcel_status) = if subject_parcel || (from_carrier && has_tracks) {
            (EmailKind::InTransit, Some(ParcelStatus::InTransit))
        } else if has_tracks {
            (EmailKind::Shipped, Some(ParcelStatus::InfoReceived))
        } else {
            (EmailKind::Other, None)
        };
    }
    if from_carrier && ex.kind == EmailKind::Shipped {
        // A carrier holding the parcel ("your parcel is on its way") is a
        // later carrier step, not the seller's shipping (SPEC §3).
        ex.kind = EmailKind::InTransit;
        if ex.parcel_status == Some(ParcelStatus::InfoReceived) {
            ex.parcel_status = Some(ParcelStatus::InTransit);
        }
    }
    if ex.orders.is_empty() && !subject_event {
        // Status words without any order or parcel are marketing ("deals
        // delivered to you"), not an event (SPEC §3: marketing is `other`).
        // A subject shaped `Package T: <status>` is an event even when T
        // fails its check digit and is not taken (SPEC §3: "must pass
        // it"): the number is left out, the kind stays the subject's, and
        // with no order nothing in the store moves.
        ex.kind = EmailKind::Other;
        ex.parcel_status = None;
        ex.order_completed = false;
        ex.dispute_opened = false;
    }
}
