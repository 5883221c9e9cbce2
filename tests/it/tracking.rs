//! Parcel tracking against the local provider stand-in (`standin.rs`):
//! registration once, the schedule, delivery with its history, last-mile
//! numbers, quota exhaustion, faults, and request counts over a simulated
//! day. Time is injected (`now`); only the HTTP exchanges are real.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aliwatch::config::{Provider, Secret, TrackingConfig};
use aliwatch::decide::{Rules, TrackingRules};
use aliwatch::model::ParcelStatus;
use aliwatch::pipeline::RefreshSummary;
use aliwatch::store::{fmt_time, Store};
use aliwatch::tracking::{Pacing, Tracker};

/// The provider account state the tracking tests look at.
#[derive(Clone, Copy)]
enum Meta {
    LastError,
    QuotaExhausted,
}
const META_LAST_ERROR: Meta = Meta::LastError;
const META_QUOTA_EXHAUSTED: Meta = Meta::QuotaExhausted;

/// Reads one field of the stored tracking state.
trait TrackingMeta {
    fn tracking_meta(&self, key: Meta) -> anyhow::Result<Option<String>>;
}

impl TrackingMeta for Store {
    fn tracking_meta(&self, key: Meta) -> anyhow::Result<Option<String>> {
        let s = self.tracking_state()?;
        Ok(match key {
            Meta::LastError => s.last_error,
            Meta::QuotaExhausted => s.quota_exhausted,
        })
    }
}
use chrono::{DateTime, TimeZone, Utc};

use super::standin::{journey, Fault, Request, Standin, Step};

const KEY: &str = "test-17token-secret";
const ORDER: &str = "3084943433511931";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .expect("valid")
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

fn pacing() -> Pacing {
    Pacing {
        min_interval: Duration::from_millis(1),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        max_retries: 3,
        max_retry_after: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
    }
}

struct Env {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
    standin: Standin,
    tracker: Tracker,
    rules: Rules,
}

impl Env {
    fn new(provider: Provider, refresh_h: u64) -> Env {
        Env::with(provider, refresh_h, KEY, pacing())
    }

    fn with(provider: Provider, refresh_h: u64, key: &str, pacing: Pacing) -> Env {
        let secret = Secret::Inline {
            key: "api_key",
            value: key.to_owned(),
        };
        Env::with_secret(
            provider,
            refresh_h,
            secret,
            pacing,
            tempfile::tempdir().expect("tempdir"),
        )
    }

    fn with_secret(
        provider: Provider,
        refresh_h: u64,
        secret: Secret,
        pacing: Pacing,
        dir: tempfile::TempDir,
    ) -> Env {
        let path = dir.path().join("aliwatch.db");
        let store = Store::open(&path).expect("store opens");
        let standin = Standin::start();
        standin.set_api_key(KEY);
        let cfg = TrackingConfig::single(
            provider,
            Some(secret),
            standin.base_url(),
            Duration::from_secs(refresh_h * 3600),
        );
        let tracker = Tracker::with_pacing(&cfg, pacing).expect("tracker");
        let rules = Rules {
            tracking: TrackingRules {
                providers: cfg.providers,
                refresh_interval: cfg.refresh_interval,
            },
            ..Rules::default()
        };
        Env {
            _dir: dir,
            path,
            store,
            standin,
            tracker,
            rules,
        }
    }

    /// Inserts an order with parcels the way ingestion does (schema v1).
    fn add(&self, order: &str, numbers: &[&str]) {
        add_parcels(&self.path, order, numbers);
    }

    async fn refresh(&mut self, now: DateTime<Utc>) -> RefreshSummary {
        aliwatch::pipeline::tracking_pass(&mut self.store, &self.tracker, &self.rules, now)
            .await
            .expect("a pass never fails on provider trouble")
    }

    fn parcel(&self, n: &str) -> aliwatch::store::tracking::ParcelTracking {
        self.store
            .tracking_parcel(n)
            .expect("reads")
            .expect("parcel exists")
    }

    fn is_due(&self, n: &str, now: DateTime<Utc>) -> bool {
        aliwatch::pipeline::tracking::due_parcels(&self.store, now, &self.rules)
            .expect("reads")
            .iter()
            .any(|p| p.number == n)
    }
}

fn add_parcels(path: &Path, order: &str, numbers: &[&str]) {
    let conn = rusqlite::Connection::open(path).expect("second connection");
    conn.execute(
        "INSERT OR IGNORE INTO orders(order_id, first_seen_at) VALUES (?1, ?2)",
        (order, fmt_time(t0())),
    )
    .expect("order");
    for n in numbers {
        conn.execute(
            "INSERT OR IGNORE INTO parcels(tracking_number, first_seen_at) VALUES (?1, ?2)",
            (n, fmt_time(t0())),
        )
        .expect("parcel");
        conn.execute(
            "INSERT OR IGNORE INTO order_parcels(order_id, tracking_number) VALUES (?1, ?2)",
            (order, n),
        )
        .expect("link");
    }
}

fn order_parcels(path: &Path, order: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("second connection");
    let mut stmt = conn
        .prepare("SELECT tracking_number FROM order_parcels WHERE order_id = ?1 ORDER BY 1")
        .expect("prepares");
    stmt.query_map([order], |r| r.get(0))
        .expect("queries")
        .collect::<rusqlite::Result<Vec<String>>>()
        .expect("rows")
}

fn count(reqs: &[Request], endpoint: &str, n: &str) -> usize {
    reqs.iter()
        .filter(|r| r.endpoint == endpoint && r.numbers.iter().any(|x| x == n))
        .count()
}

#[tokio::test]
async fn seventeen_registers_once_follows_the_schedule_and_ends_delivered() {
    let n = "LP00123456789012";
    let mut env = Env::new(Provider::SeventeenTrack, 6);
    env.add(ORDER, &[n]);
    env.standin.set_timeline(n, journey());

    // First pass: registered and fetched at once (nothing found yet).
    let s = env.refresh(t0()).await;
    assert_eq!((s.registered, s.refreshed, s.failed), (1, 1, 0), "{s:?}");
    let p = env.parcel(n);
    assert_eq!(p.status, Some(ParcelStatus::Pending));
    assert_eq!(p.carrier_code, Some(190271));
    assert!(p.registered_at.is_some() && p.not_found_since.is_some());
    let next = p.next_check_at.expect("scheduled");
    assert!(next >= t0() + hours(6) && next <= t0() + chrono::Duration::minutes(396));

    // Not due an hour later: no request at all.
    let before = env.standin.requests().len();
    let s = env.refresh(t0() + hours(1)).await;
    assert_eq!((s.due, s.requests), (0, 0));
    assert_eq!(env.standin.requests().len(), before);

    let mut now;
    let want = [
        ParcelStatus::InfoReceived,
        ParcelStatus::InTransit,
        ParcelStatus::Customs,
        ParcelStatus::OutForDelivery,
        ParcelStatus::Delivered,
    ];
    for st in want {
        assert!(env.standin.advance(n));
        let next = env.parcel(n).next_check_at.expect("still scheduled");
        assert!(!env.is_due(n, next - chrono::Duration::minutes(1)));
        now = next;
        let s = env.refresh(now).await;
        assert_eq!(s.failed, 0, "{s:?}");
        let p = env.parcel(n);
        assert_eq!(p.status, Some(st));
        let gap = p.next_check_at.map(|t| t - now);
        match st {
            ParcelStatus::OutForDelivery => {
                assert!(
                    gap.is_some_and(|g| g <= chrono::Duration::minutes(132)),
                    "fast: {gap:?}"
                )
            }
            ParcelStatus::Delivered => {
                assert!(gap.is_some(), "one confirming refresh");
                assert!(p.tracking_done_at.is_none());
            }
            _ => assert!(gap.is_some_and(|g| g >= hours(6)), "{st}: {gap:?}"),
        }
    }
    // The confirming refresh ends tracking and tells 17TRACK to stop.
    now = env.parcel(n).next_check_at.expect("confirming refresh");
    let s = env.refresh(now).await;
    assert_eq!(s.finished, 1, "{s:?}");
    let p = env.parcel(n);
    assert!(p.tracking_done_at.is_some() && p.next_check_at.is_none());
    assert_eq!(env.standin.stopped(), vec![n.to_owned()]);

    // Never asked again.
    let before = env.standin.requests().len();
    for d in 1..=5 {
        let s = env.refresh(now + hours(24 * d)).await;
        assert_eq!(s.requests, 0);
    }
    assert_eq!(env.standin.requests().len(), before);

    // Registered exactly once; the whole history kept, newest first.
    let reqs = env.standin.requests();
    assert_eq!(count(&reqs, "register", n), 1);
    assert_eq!(env.standin.registrations(n), 1);
    let p = env.parcel(n);
    assert_eq!(p.carrier.as_deref(), Some("Cainiao"));
    assert_eq!(p.raw_status.as_deref(), Some("Delivered/Delivered_Other"));
    assert_eq!(p.status_detail.as_deref(), Some("Parcel delivered"));
    assert_eq!(p.delivered_at, Some(t0() + hours(24)));
    assert_eq!(p.eta_from.as_deref(), Some("2026-11-20"));
    assert_eq!(p.eta_to.as_deref(), Some("2026-11-24"));
    let ev = env.store.tracking_events(n).expect("events");
    assert_eq!(ev.len(), 5, "deduplicated across refreshes: {ev:#?}");
    assert_eq!(ev[0].description, "Parcel delivered");
    assert_eq!(ev[0].status, Some(ParcelStatus::Delivered));
    assert_eq!(ev[0].raw_code.as_deref(), Some("Delivered_Other"));
    assert_eq!(
        ev[0].time_local.as_deref(),
        Some("2026-11-02T01:00:00+01:00")
    );
    assert_eq!(
        ev[4].time_local.as_deref(),
        Some("2026-11-01T08:00:00+08:00")
    );
    assert!(ev.windows(2).all(|w| w[0].time_utc > w[1].time_utc));
    assert_eq!(
        env.store.tracking_meta(META_LAST_ERROR).expect("meta"),
        None
    );
    assert!(reqs.iter().all(|r| r
        .user_agent
        .as_deref()
        .is_some_and(|u| u.starts_with("aliwatch/"))));
}

#[tokio::test]
async fn cainiao_ends_delivered_and_never_asks_more_often_than_every_6_hours() {
    let n = "LP00527423524449";
    // refresh_interval 1 h: Cainiao still waits 6 h.
    let mut env = Env::new(Provider::Cainiao, 1);
    env.add(ORDER, &[n]);
    env.standin.set_timeline(n, journey());
    let mut asked_at = Vec::new();
    let mut now = t0();
    let end = t0() + hours(72);
    let mut step = 0;
    while now < end {
        let before = env.standin.requests().len();
        env.refresh(now).await;
        if env.standin.requests().len() > before {
            asked_at.push(now);
        }
        step += 1;
        if step % 20 == 0 {
            env.standin.advance(n);
        }
        now += chrono::Duration::minutes(30);
    }
    assert!(
        asked_at.windows(2).all(|w| w[1] - w[0] >= hours(6)),
        "{asked_at:?}"
    );
    let p = env.parcel(n);
    assert_eq!(p.status, Some(ParcelStatus::Delivered));
    assert_eq!(p.carrier.as_deref(), Some("Cainiao"));
    assert_eq!(p.raw_status.as_deref(), Some("GTMS_SIGNED"));
    assert!(p.tracking_done_at.is_some(), "confirmed and done");
    let ev = env.store.tracking_events(n).expect("events");
    assert_eq!(ev.len(), 5);
    assert_eq!(ev[0].raw_code.as_deref(), Some("GTMS_SIGNED"));
    assert_eq!(
        ev[0].time_local.as_deref(),
        Some("2026-11-02T01:00:00+01:00")
    );
    assert!(env.standin.requests().iter().all(|r| r.numbers.len() <= 10));
}

#[tokio::test]
async fn a_delivered_parcel_never_moves_back_because_of_older_events() {
    let n = "LP00000000000001";
    let mut env = Env::new(Provider::SeventeenTrack, 6);
    env.add(ORDER, &[n]);
    env.standin.set_timeline(n, journey());
    for _ in 0..5 {
        env.standin.advance(n);
    }
    env.refresh(t0()).await;
    assert_eq!(env.parcel(n).status, Some(ParcelStatus::Delivered));
    // The provider glitches back to an older view of the parcel.
    env.standin.set_timeline(n, journey());
    for _ in 0..3 {
        env.standin.advance(n);
    }
    env.refresh(t0() + hours(7)).await;
    let p = env.parcel(n);
    assert_eq!(p.status, Some(ParcelStatus::Delivered));
    assert_eq!(p.delivered_at, Some(t0() + hours(24)));
}

#[tokio::test]
async fn a_last_mile_number_keeps_both_numbers_linked() {
    for provider in [Provider::SeventeenTrack, Provider::Cainiao] {
        let (old, new) = ("LP00111111111111", "NL0000000001X");
        let mut env = Env::new(provider, 6);
        env.add(ORDER, &[old]);
        env.standin
            .set_timeline(old, vec![Step::PickedUp, Step::LastMile(new.to_owned())]);
        env.standin
            .set_timeline(new, vec![Step::OutForDelivery, Step::Delivered]);
        env.standin.advance(old);
        env.standin.advance(old);
        env.standin.advance(new);
        let s = env.refresh(t0()).await;
        assert_eq!(s.last_mile, 1, "{provider:?}: {s:?}");
        let o = env.parcel(old);
        assert_eq!(o.replaced_by.as_deref(), Some(new));
        assert!(
            o.tracking_done_at.is_some(),
            "the old number is no longer asked for"
        );
        let mut want = vec![new.to_owned(), old.to_owned()];
        want.sort();
        assert_eq!(order_parcels(&env.path, ORDER), want);
        // The new number was asked for in the same pass.
        let p = env.parcel(new);
        assert_eq!(p.status, Some(ParcelStatus::OutForDelivery), "{provider:?}");
        assert!(!env.store.tracking_events(old).expect("events").is_empty());
        // Later passes follow the new number only.
        env.standin.advance(new);
        env.standin.clear_requests();
        let at = p.next_check_at.expect("scheduled");
        env.refresh(at).await;
        assert_eq!(env.parcel(new).status, Some(ParcelStatus::Delivered));
        assert!(env
            .standin
            .requests()
            .iter()
            .all(|r| !r.numbers.contains(&old.to_owned())));
    }
}

#[tokio::test]
async fn quota_exhaustion_queues_numbers_and_resumes_when_quota_is_back() {
    let mut env = Env::new(Provider::SeventeenTrack, 6);
    let nums = ["LP00000000000011", "LP00000000000012", "LP00000000000013"];
    env.add(ORDER, &nums);
    // Three left: one is registered, two are kept back (the reserve), so
    // registrations stop before the quota is gone.
    env.standin.set_quota(Some(3));
    let s = env.refresh(t0()).await;
    assert_eq!(s.registered, 1, "{s:?}");
    assert_eq!(s.queued, 2);
    assert!(s.quota_exhausted);
    let msg = env
        .store
        .tracking_meta(META_QUOTA_EXHAUSTED)
        .expect("meta")
        .expect("recorded");
    assert!(msg.contains("quota"), "{msg}");
    let queued: Vec<_> = nums
        .iter()
        .filter(|n| env.parcel(n).registered_at.is_none())
        .collect();
    assert_eq!(queued.len(), 2);
    for n in &queued {
        assert!(env.is_due(n, t0()), "queued numbers stay due");
    }

    // Half an hour later: no registration attempt, no probe.
    env.standin.clear_requests();
    let s = env.refresh(t0() + chrono::Duration::minutes(30)).await;
    assert_eq!(s.queued, 2);
    assert!(env
        .standin
        .requests()
        .iter()
        .all(|r| r.endpoint != "register" && r.endpoint != "getquota"));

    // Two hours later the quota is back: one probe, then registration.
    env.standin.set_quota(Some(10));
    env.standin.clear_requests();
    let s = env.refresh(t0() + hours(2)).await;
    assert_eq!(s.registered, 2, "{s:?}");
    assert!(!s.quota_exhausted);
    let reqs = env.standin.requests();
    assert_eq!(reqs.iter().filter(|r| r.endpoint == "getquota").count(), 1);
    assert_eq!(
        env.store.tracking_meta(META_QUOTA_EXHAUSTED).expect("meta"),
        None
    );
    for n in nums {
        assert!(env.parcel(n).registered_at.is_some());
        assert_eq!(env.standin.registrations(n), 1);
    }
}

#[tokio::test]
async fn register_rejections_already_registered_and_bad_format() {
    let mut env = Env::new(Provider::SeventeenTrack, 6);
    let (known, bad) = ("RR123456789CN", "LP1234");
    env.add(ORDER, &[known, bad]);
    env.standin.preregister(known);
    env.standin
        .reject_register(bad, -18010012, "The format of 'LP1234' is invalid.");
    let s = env.refresh(t0()).await;
    assert_eq!(
        s.registered, 1,
        "already registered counts as success: {s:?}"
    );
    assert!(env.parcel(known).registered_at.is_some());
    assert_eq!(env.standin.registrations(known), 1, "not registered twice");
    let b = env.parcel(bad);
    assert!(b.tracking_done_at.is_some());
    assert!(b
        .tracking_error
        .as_deref()
        .is_some_and(|e| e.contains("invalid")));
}

#[tokio::test]
async fn http_faults_never_crash_and_never_lose_a_parcel() {
    let n = "LP00000000000021";
    let fast = Pacing {
        request_timeout: Duration::from_millis(300),
        ..pacing()
    };
    let mut env = Env::with(Provider::SeventeenTrack, 6, KEY, fast);
    env.add(ORDER, &[n]);
    env.standin.set_timeline(n, journey());
    env.standin.advance(n);

    // 500, 503 and a timeout are retried within the pass.
    env.standin.push_fault(Fault::Status(500));
    env.standin.push_fault(Fault::Status(503));
    env.standin
        .push_fault(Fault::Slow(Duration::from_millis(800)));
    let s = env.refresh(t0()).await;
    assert_eq!((s.registered, s.refreshed, s.failed), (1, 1, 0), "{s:?}");
    assert_eq!(env.parcel(n).status, Some(ParcelStatus::InfoReceived));

    // 429 with a short Retry-After: retried after it in the same pass.
    env.standin.advance(n);
    let now = env.parcel(n).next_check_at.expect("scheduled");
    env.standin.push_fault(Fault::TooMany(Some(1)));
    let started = Instant::now();
    let s = env.refresh(now).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "honours Retry-After"
    );
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");
    assert_eq!(env.parcel(n).status, Some(ParcelStatus::InTransit));

    // Each of these leaves the parcel due for a later pass.
    env.standin.advance(n);
    let mut now = env.parcel(n).next_check_at.expect("scheduled");
    let faults: Vec<Vec<Fault>> = vec![
        vec![Fault::TooMany(Some(120))],
        vec![Fault::Garbage],
        vec![Fault::Body("{\"code\":0}".into())],
        vec![Fault::Body(
            "{\"code\":-18010003,\"data\":{\"errors\":[]}}".into(),
        )],
        vec![Fault::Status(500); 4],
        vec![Fault::Slow(Duration::from_millis(800)); 4],
        vec![Fault::TooMany(None); 4],
    ];
    for (i, fs) in faults.into_iter().enumerate() {
        for f in fs {
            env.standin.push_fault(f);
        }
        let checked = env.parcel(n).last_checked_at;
        let s = env.refresh(now).await;
        assert_eq!(s.failed, 1, "case {i}: {s:?}");
        assert!(!s.errors.is_empty());
        assert!(env.is_due(n, now), "case {i}: still due");
        assert_eq!(
            env.parcel(n).last_checked_at,
            checked,
            "case {i}: nothing recorded"
        );
        assert!(env
            .store
            .tracking_meta(META_LAST_ERROR)
            .expect("meta")
            .is_some());
        now += chrono::Duration::minutes(15);
    }
    // And then it goes on.
    let s = env.refresh(now).await;
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");
    assert_eq!(env.parcel(n).status, Some(ParcelStatus::Customs));
    assert_eq!(
        env.store.tracking_meta(META_LAST_ERROR).expect("meta"),
        None,
        "cleared"
    );
    assert_eq!(env.standin.registrations(n), 1);
}

#[tokio::test]
async fn cainiao_faults_leave_parcels_due() {
    let n = "LP00000000000031";
    let mut env = Env::new(Provider::Cainiao, 6);
    env.add(ORDER, &[n]);
    env.standin.set_timeline(n, journey());
    env.standin.advance(n);
    // (faults, how long Cainiao is then left alone): an hour after a
    // failure, a whole day after a refusal (`success:false`, a ban sign).
    let faults = vec![
        (vec![Fault::Garbage], 61),
        (
            vec![Fault::Body(
                "{\"success\":false,\"errorCode\":\"RGV587_ERROR\"}".into(),
            )],
            24 * 60 + 1,
        ),
        (vec![Fault::Status(502); 4], 61),
    ];
    let mut now = t0();
    for (i, (fs, wait)) in faults.into_iter().enumerate() {
        for f in fs {
            env.standin.push_fault(f);
        }
        let s = env.refresh(now).await;
        assert_eq!(s.failed, 1, "case {i}: {s:?}");
        assert!(env.is_due(n, now));
        // Cainiao is left alone for an hour after a failure (pacing is a
        // rule of the schedule): a pass within it asks nobody.
        let before = env.standin.requests().len();
        let s = env.refresh(now + chrono::Duration::minutes(15)).await;
        assert_eq!(s.requests, 0, "case {i}: {s:?}");
        assert_eq!(env.standin.requests().len(), before);
        let s = env.refresh(now + chrono::Duration::minutes(wait - 2)).await;
        assert_eq!(s.requests, 0, "case {i}: still left alone: {s:?}");
        now += chrono::Duration::minutes(wait);
    }
    let s = env.refresh(now).await;
    assert_eq!(s.refreshed, 1);
    assert_eq!(env.parcel(n).status, Some(ParcelStatus::InfoReceived));
}

/// A user who replaces the key in `api_key_file` (a new key from the
/// 17TRACK dashboard) does not restart: the next pass reads the file again.
#[tokio::test]
async fn a_replaced_api_key_file_is_used_by_the_next_pass_without_a_restart() {
    let n = "LP00000000000042";
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("17track-key");
    std::fs::write(&key_file, "the-revoked-key\n").expect("write");
    let secret = Secret::File {
        key: "api_key_file",
        path: key_file.clone(),
    };
    let mut env = Env::with_secret(Provider::SeventeenTrack, 6, secret, pacing(), dir);
    env.add(ORDER, &[n]);
    let s = env.refresh(t0()).await;
    assert!(s.auth_failed, "{s:?}");
    assert!(env.is_due(n, t0()));

    std::fs::write(&key_file, format!("{KEY}\n")).expect("rotate");
    let s = env.refresh(t0() + chrono::Duration::minutes(1)).await;
    assert!(!s.auth_failed, "the new key is used: {s:?}");
    assert!(s.requests > 0, "{s:?}");
    assert!(
        env.standin
            .requests()
            .iter()
            .any(|r| r.endpoint == "register" && r.status == 200),
        "{:?}",
        env.standin.requests()
    );
}

#[tokio::test]
async fn an_invalid_key_is_not_retried_and_is_reported() {
    let n = "LP00000000000041";
    let mut env = Env::with(Provider::SeventeenTrack, 6, "wrong-key", pacing());
    env.add(ORDER, &[n]);
    let s = env.refresh(t0()).await;
    assert!(s.auth_failed, "{s:?}");
    assert_eq!(s.requests, 1, "401 is never retried");
    let err = env
        .store
        .tracking_meta(META_LAST_ERROR)
        .expect("meta")
        .expect("recorded");
    assert!(err.contains("api key"), "{err}");
    assert!(
        !err.contains("wrong-key"),
        "the key never appears in errors"
    );
    assert!(env.is_due(n, t0()));
}

#[tokio::test]
async fn provider_none_makes_no_requests() {
    let mut env = Env::new(Provider::None, 6);
    env.add(ORDER, &["LP00000000000051"]);
    let s = env.refresh(t0()).await;
    assert_eq!(s, RefreshSummary::default());
    assert!(env.standin.requests().is_empty());
}

#[tokio::test]
async fn requests_are_paced_at_most_two_per_second_by_default_interval() {
    let paced = Pacing {
        min_interval: Duration::from_millis(100),
        ..pacing()
    };
    let mut env = Env::with(Provider::Cainiao, 6, KEY, paced);
    let nums: Vec<String> = (0..25).map(|i| format!("LP{i:014}")).collect();
    let refs: Vec<&str> = nums.iter().map(String::as_str).collect();
    env.add(ORDER, &refs);
    let started = Instant::now();
    let s = env.refresh(t0()).await;
    assert_eq!(s.requests, 3);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(Pacing::default().min_interval, Duration::from_millis(500));
}

/// 100 active parcels over a simulated day, a pass every 15 minutes.
/// Parcels 0–79 stay in transit; 80–99 go out for delivery and are
/// delivered during the day.
async fn simulate_day(provider: Provider, max_batch: usize) -> (usize, usize) {
    let mut env = Env::new(provider, 6);
    let nums: Vec<String> = (0..100).map(|i| format!("LP{:014}", 1000 + i)).collect();
    for (i, n) in nums.iter().enumerate() {
        env.add(&format!("30849434335{:05}", i / 2), &[n.as_str()]);
        env.standin.set_timeline(n, journey());
    }
    let mut log: Vec<(DateTime<Utc>, Request)> = Vec::new();
    let started = Instant::now();
    for step in 0..96 {
        let now = t0() + chrono::Duration::minutes(15 * step);
        let h = step / 4;
        if step % 4 == 0 {
            for (i, n) in nums.iter().enumerate() {
                let advance = if i < 80 {
                    h == 3 || h == 9
                } else {
                    h % 2 == 0 && h > 0
                };
                if advance {
                    env.standin.advance(n);
                }
            }
        }
        let before = env.standin.requests().len();
        env.refresh(now).await;
        for r in env.standin.requests().into_iter().skip(before) {
            log.push((now, r));
        }
    }
    let wall = started.elapsed();
    let total = log.len();
    for (_, r) in &log {
        assert!(
            r.numbers.len() <= max_batch,
            "{} numbers in one request",
            r.numbers.len()
        );
    }
    assert!(
        total <= 4 * nums.len(),
        "{total} requests for {} parcels",
        nums.len()
    );
    let fetch = if provider == Provider::Cainiao {
        "detail"
    } else {
        "gettrackinfo"
    };
    let mut max_fetch = 0;
    for (i, n) in nums.iter().enumerate() {
        let fetched = log
            .iter()
            .filter(|(_, r)| r.endpoint == fetch && r.numbers.contains(n))
            .count();
        max_fetch = max_fetch.max(fetched);
        if i < 80 {
            assert!(fetched <= 4, "{n}: asked for {fetched} times in a day");
        }
        if provider == Provider::SeventeenTrack {
            let reqs: Vec<Request> = log.iter().map(|(_, r)| r.clone()).collect();
            assert_eq!(count(&reqs, "register", n), 1, "{n}");
        }
        if i >= 80 {
            let p = env.parcel(n);
            assert_eq!(p.status, Some(ParcelStatus::Delivered), "{n}");
            let done = p
                .tracking_done_at
                .expect("delivered and confirmed within the day");
            assert!(
                log.iter().all(|(t, r)| *t <= done
                    || r.endpoint == "stoptrack"
                    || !r.numbers.contains(n)),
                "{n} asked for after the confirming refresh"
            );
        }
    }
    eprintln!(
        "{}: {total} requests for 100 parcels in a simulated day ({:.2} per parcel), \
         at most {max_fetch} fetches of one parcel, wall {wall:?}",
        provider.as_str(),
        total as f64 / 100.0
    );
    assert!(wall < Duration::from_secs(30));
    (total, max_fetch)
}

#[tokio::test]
async fn request_count_for_100_parcels_over_a_day_17track() {
    let (total, _) = simulate_day(Provider::SeventeenTrack, 40).await;
    assert!(total <= 100);
}

#[tokio::test]
async fn request_count_for_100_parcels_over_a_day_cainiao() {
    let (total, max_fetch) = simulate_day(Provider::Cainiao, 10).await;
    assert!(total <= 150);
    assert!(max_fetch <= 4, "cainiao: never more than every 6 h");
}

#[tokio::test]
async fn tracking_request_counters_in_the_store_add_up_to_the_requests_sent() {
    let n = "LP00000000000061";
    let mut env = Env::new(Provider::SeventeenTrack, 6);
    env.add(ORDER, &[n]);
    env.standin.set_timeline(n, journey());
    env.standin.advance(n);
    env.standin.push_fault(Fault::Status(500));
    env.standin.push_fault(Fault::TooMany(Some(1)));
    let s = env.refresh(t0()).await;
    assert_eq!(s.failed, 0, "{s:?}");
    let counters = env
        .store
        .counters(aliwatch::pipeline::tracking::TRACKING_REQUESTS)
        .expect("reads");
    let get = |o: &str| {
        counters
            .get(&("17track".to_string(), o.to_string()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(get("error"), 1, "{counters:?}");
    assert_eq!(get("rate_limited"), 1, "{counters:?}");
    assert!(get("ok") >= 2, "register and refresh: {counters:?}");
    let total: u64 = counters.values().sum();
    assert_eq!(total, env.tracker.requests(), "{counters:?}");
    assert_eq!(total as usize, env.standin.requests().len());
    // A second pass adds to the same rows (they survive restarts: they
    // are in the database, not in the process).
    env.standin.advance(n);
    let now = env.parcel(n).next_check_at.expect("scheduled");
    env.refresh(now).await;
    let again: u64 = env
        .store
        .counters(aliwatch::pipeline::tracking::TRACKING_REQUESTS)
        .expect("reads")
        .values()
        .sum();
    assert_eq!(again, env.tracker.requests());
}
