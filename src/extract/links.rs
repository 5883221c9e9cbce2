//! Step 5 of extraction: links in the raw HTML and text. `orderId`,
//! `tradeOrderId`, `o_ids` lists and `trackingNumber`, each tracking
//! number paired with the orders of the same link.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn scan_links(raw: &str, found: &mut Found) {
    let flush = |orders: &mut Vec<String>, tracks: &mut Vec<String>, found: &mut Found| {
        for o in orders.iter() {
            for t in tracks.iter() {
                found.pairs.push((o.clone(), t.clone()));
            }
        }
        found.link_orders.append(orders);
        found.tracks.extend(tracks.drain(..).map(|t| (t, None)));
    };
    let mut current: Option<usize> = None;
    let mut orders = Vec::new();
    let mut tracks = Vec::new();
    for p in text::params(raw) {
        if current != Some(p.url_start) {
            flush(&mut orders, &mut tracks, found);
            current = Some(p.url_start);
        }
        for item in text::split_list(p.value) {
            if p.is_order {
                if is_order_id(item) {
                    orders.push(item.to_string());
                }
            } else {
                let t = numbers::normalise(item);
                if accept_labelled(&t) {
                    tracks.push(t);
                }
            }
        }
    }
    flush(&mut orders, &mut tracks, found);
}
