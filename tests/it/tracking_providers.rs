//! Several tracking providers against two local stand-ins, one speaking
//! Cainiao's `detail.json`, the other 17TRACK v2.2 (`standin.rs`, built
//! from the real payloads): routing per parcel, the not-found grace
//! period, fallback when Cainiao fails or bans, 17TRACK's quota, merging
//! two providers' answers without going backwards, and the requests one
//! simulated day costs. Time is injected; only the HTTP is real.

use std::path::PathBuf;
use std::time::Duration;

use aliwatch::config::{Provider, Providers, Secret, TrackingConfig};
use aliwatch::decide::{Rules, TrackingRules};
use aliwatch::model::ParcelStatus;
use aliwatch::pipeline::RefreshSummary;
use aliwatch::store::{fmt_time, Store};
use aliwatch::tracking::{Pacing, Tracker};
use chrono::{DateTime, TimeZone, Utc};

use super::standin::{journey, Fault, Request, Standin};

const KEY: &str = "test-17token-secret";

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
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        max_retries: 3,
        max_retry_after: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
    }
}

/// A store with `providers = ["cainiao", "17track"]`, each at its own
/// stand-in.
struct Both {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
    cainiao: Standin,
    seventeen: Standin,
    tracker: Tracker,
    rules: Rules,
}

impl Both {
    fn new() -> Both {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aliwatch.db");
        let store = Store::open(&path).expect("store opens");
        let cainiao = Standin::start();
        let seventeen = Standin::start();
        seventeen.set_api_key(KEY);
        let cfg = TrackingConfig {
            providers: Providers::new(&[Provider::Cainiao, Provider::SeventeenTrack]),
            api_key: Some(Secret::Inline {
                key: "api_key",
                value: KEY.to_owned(),
            }),
            base_url: String::new(),
            base_urls: vec![
                (Provider::Cainiao, cainiao.base_url()),
                (Provider::SeventeenTrack, seventeen.base_url()),
            ],
            refresh_interval: Duration::from_secs(6 * 3600),
        };
        let tracker = Tracker::with_pacing(&cfg, pacing()).expect("tracker");
        let rules = Rules {
            tracking: TrackingRules {
                providers: cfg.providers,
                refresh_interval: cfg.refresh_interval,
            },
            ..Rules::default()
        };
        Both {
            _dir: dir,
            path,
            store,
            cainiao,
            seventeen,
            tracker,
            rules,
        }
    }

    /// Parcels of one order, first named by an email at `named`.
    fn add(&self, order: &str, numbers: &[&str], named: DateTime<Utc>) {
        let conn = rusqlite::Connection::open(&self.path).expect("second connection");
        conn.execute(
            "INSERT OR IGNORE INTO orders(order_id, first_seen_at) VALUES (?1, ?2)",
            (order, fmt_time(named)),
        )
        .expect("order");
        for n in numbers {
            conn.execute(
                "INSERT OR IGNORE INTO parcels(tracking_number, first_seen_at) VALUES (?1, ?2)",
                (n, fmt_time(named)),
            )
            .expect("parcel");
            conn.execute(
                "INSERT OR IGNORE INTO order_parcels(order_id, tracking_number) VALUES (?1, ?2)",
                (order, n),
            )
            .expect("link");
        }
    }

    async fn refresh(&mut self, now: DateTime<Utc>) -> RefreshSummary {
        aliwatch::pipeline::tracking_pass(&mut self.store, &self.tracker, &self.rules, now)
            .await
            .expect("a pass never fails on provider trouble")
    }

    fn status(&self, n: &str) -> Option<ParcelStatus> {
        self.store
            .tracking_parcel(n)
            .expect("reads")
            .expect("exists")
            .status
    }

    /// The provider whose answer the parcel shows, as `status --json` has it.
    fn shown_by(&self, n: &str, now: DateTime<Utc>) -> Option<&'static str> {
        let report =
            aliwatch::pipeline::status_report(&self.store, now, &self.rules).expect("report");
        report
            .orders
            .iter()
            .flat_map(|o| o.parcels.iter())
            .chain(report.unassigned_parcels.iter())
            .find(|p| p.tracking_number == n)
            .and_then(|p| p.provider)
            .map(|p| p.as_str())
    }

    fn requests(&self) -> (Vec<Request>, Vec<Request>) {
        (self.cainiao.requests(), self.seventeen.requests())
    }
}

fn asked(reqs: &[Request], n: &str) -> usize {
    reqs.iter()
        .filter(|r| r.numbers.iter().any(|x| x == n))
        .count()
}

fn assert_batch_limits(c: &[Request], s: &[Request]) {
    for r in c {
        assert!(
            r.numbers.len() <= 10,
            "cainiao: {} numbers in one request",
            r.numbers.len()
        );
    }
    for r in s {
        assert!(
            r.numbers.len() <= 40,
            "17track: {} numbers in one request",
            r.numbers.len()
        );
    }
}

#[tokio::test]
async fn a_number_cainiao_does_not_know_is_tracked_through_17track_after_the_grace_period() {
    let (known, unknown) = ("LP00000000000701", "LP00000000000702");
    let mut env = Both::new();
    env.add("3084943433500701", &[known, unknown], t0());
    env.cainiao.set_timeline(known, journey());
    env.cainiao.advance(known);
    // Cainiao has never heard of `unknown`; 17TRACK has.
    env.seventeen.set_timeline(unknown, journey());
    env.seventeen.advance(unknown);

    let mut now = t0();
    env.refresh(now).await;
    assert_eq!(env.status(known), Some(ParcelStatus::InfoReceived));
    assert_eq!(env.status(unknown), Some(ParcelStatus::Pending));
    assert!(
        env.seventeen.requests().is_empty(),
        "within the grace period nothing is registered"
    );

    // Every 6 h for two days Cainiao alone is asked.
    while now + hours(7) < t0() + hours(48) {
        now += hours(7);
        env.refresh(now).await;
        assert!(
            env.seventeen.requests().is_empty(),
            "at {now}: 17track asked within the grace period"
        );
    }
    // Past the grace period: 17TRACK registers it and answers.
    now = t0() + hours(49);
    env.refresh(now).await;
    let (c, s) = env.requests();
    assert_eq!(env.seventeen.registrations(unknown), 1);
    assert_eq!(
        env.seventeen.registrations(known),
        0,
        "no quota for a number Cainiao tracks"
    );
    assert_eq!(env.status(unknown), Some(ParcelStatus::InfoReceived));
    assert_eq!(env.shown_by(unknown, now), Some("17track"));
    assert_eq!(env.shown_by(known, now), Some("cainiao"));
    assert_batch_limits(&c, &s);

    // Later refreshes of it go to 17TRACK (polling is free), not Cainiao.
    let before = asked(&env.cainiao.requests(), unknown);
    env.seventeen.advance(unknown);
    now += hours(7);
    env.refresh(now).await;
    assert_eq!(env.status(unknown), Some(ParcelStatus::InTransit));
    assert_eq!(asked(&env.cainiao.requests(), unknown), before);
    assert_eq!(env.seventeen.registrations(unknown), 1, "registered once");
}

#[tokio::test]
async fn cainiao_failing_for_a_day_leaves_every_parcel_tracked_through_17track() {
    for down in [Fault::Status(500), Fault::TooMany(None)] {
        let mut env = Both::new();
        let nums: Vec<String> = (0..25).map(|i| format!("LP{:014}", 800 + i)).collect();
        let refs: Vec<&str> = nums.iter().map(String::as_str).collect();
        env.add("3084943433500801", &refs, t0());
        for n in &nums {
            env.cainiao.set_timeline(n, journey());
            env.seventeen.set_timeline(n, journey());
            env.seventeen.advance(n);
        }
        env.cainiao.set_down(Some(down.clone()));
        let mut now = t0();
        for _ in 0..24 {
            env.refresh(now).await;
            // A second pass at once asks nobody again.
            let before = env.requests();
            let s = env.refresh(now).await;
            assert_eq!(s.requests, 0, "{down:?} at {now}: {s:?}");
            assert_eq!(env.requests().0.len(), before.0.len());
            assert_eq!(env.requests().1.len(), before.1.len());
            now += hours(1);
        }
        for n in &nums {
            assert_eq!(
                env.status(n),
                Some(ParcelStatus::InfoReceived),
                "{down:?} {n}"
            );
            assert_eq!(env.shown_by(n, now), Some("17track"), "{down:?} {n}");
        }
        let (c, s) = env.requests();
        assert_batch_limits(&c, &s);
        // A ban sign (429) leaves Cainiao alone for the day: one failing
        // request (with its retries), not one per pass.
        if matches!(down, Fault::TooMany(_)) {
            assert!(
                c.len() <= 4,
                "429: cainiao asked {} times in a day",
                c.len()
            );
        } else {
            assert!(
                c.len() <= 4 * 24,
                "500: cainiao asked {} times in a day",
                c.len()
            );
        }
        let metrics = env.store.tracking_state().expect("state");
        assert!(
            metrics
                .unavailable
                .iter()
                .any(|(p, _)| *p == Provider::Cainiao)
                || !matches!(down, Fault::TooMany(_)),
            "{down:?}: cainiao recorded as unavailable"
        );
    }
}

#[tokio::test]
async fn seventeen_quota_at_zero_stops_registrations_and_cainiao_carries_on() {
    let (known, unknown) = ("LP00000000000901", "LP00000000000902");
    let mut env = Both::new();
    // Named three days ago: the grace period is over at once.
    env.add("3084943433500901", &[known, unknown], t0() - hours(72));
    env.cainiao.set_timeline(known, journey());
    env.cainiao.advance(known);
    env.seventeen.set_timeline(unknown, journey());
    env.seventeen.advance(unknown);
    env.seventeen.set_quota(Some(0));

    env.refresh(t0()).await;
    // Cainiao said "not found" for `unknown` once; its grace counts from
    // the email, so the very next pass hands it on.
    let s = env.refresh(t0() + hours(7)).await;
    assert!(s.quota_exhausted, "{s:?}");
    assert_eq!(env.seventeen.registrations(unknown), 0);
    assert_eq!(env.status(known), Some(ParcelStatus::InfoReceived));
    let registers = |env: &Both| {
        env.seventeen
            .requests()
            .iter()
            .filter(|r| r.endpoint == "register")
            .count()
    };
    // `getquota` was read before spending: no registration was even tried.
    let tried = registers(&env);
    assert_eq!(tried, 0, "no registration with the quota at 0");

    // For the next half day no registration is tried; Cainiao carries on.
    env.cainiao.advance(known);
    let mut now = t0() + hours(7);
    for _ in 0..2 {
        now += chrono::Duration::minutes(30);
        env.refresh(now).await;
    }
    now = t0() + hours(14);
    env.refresh(now).await;
    assert_eq!(env.status(known), Some(ParcelStatus::InTransit));
    assert_eq!(env.shown_by(known, now), Some("cainiao"));
    let probes = env
        .seventeen
        .requests()
        .iter()
        .filter(|r| r.endpoint == "getquota")
        .count();
    assert!(
        registers(&env) <= tried + 1,
        "at most one retry after an hourly probe"
    );
    // At most one `getquota` an hour (passes at 7 h, 7.5 h, 8 h and 14 h).
    assert!(probes <= 3, "{probes} quota probes");
    assert_eq!(env.seventeen.registrations(unknown), 0);
}

#[tokio::test]
async fn a_parcel_known_to_both_shows_the_more_advanced_status() {
    let n = "LP00000000001001";
    let mut env = Both::new();
    env.add("3084943433501001", &[n], t0());
    env.cainiao.set_timeline(n, journey());
    env.seventeen.set_timeline(n, journey());
    env.cainiao.advance(n); // info received
    for _ in 0..3 {
        env.seventeen.advance(n); // customs
    }
    // Cainiao bans for the first day: 17TRACK answers, further along.
    env.cainiao.set_down(Some(Fault::TooMany(None)));
    env.refresh(t0()).await;
    assert_eq!(env.status(n), Some(ParcelStatus::Customs));
    assert_eq!(env.shown_by(n, t0()), Some("17track"));

    // A day later Cainiao answers again, behind: the status stays.
    env.cainiao.set_down(None);
    let now = t0() + hours(25);
    env.refresh(now).await;
    assert!(
        asked(&env.cainiao.requests(), n) >= 2,
        "cainiao asked again"
    );
    assert_eq!(
        env.status(n),
        Some(ParcelStatus::Customs),
        "never backwards"
    );
    assert_eq!(env.shown_by(n, now), Some("17track"));

    // When Cainiao is ahead, its answer is shown.
    env.cainiao.advance(n);
    env.cainiao.advance(n);
    env.cainiao.advance(n); // out for delivery
    let now = t0() + hours(32);
    env.refresh(now).await;
    assert_eq!(env.status(n), Some(ParcelStatus::OutForDelivery));
    assert_eq!(env.shown_by(n, now), Some("cainiao"));
}

/// Requests over one simulated day with both providers: 100 parcels, 90
/// Cainiao knows and 10 only 17TRACK does (named three days ago, so they
/// are handed on at once). Returns (requests, parcels).
#[tokio::test]
async fn request_count_for_100_parcels_over_a_day_both_providers() {
    let mut env = Both::new();
    let nums: Vec<String> = (0..100).map(|i| format!("LP{:014}", 5000 + i)).collect();
    for (i, n) in nums.iter().enumerate() {
        env.add(
            &format!("30849434336{:05}", i / 2),
            &[n.as_str()],
            t0() - hours(72),
        );
        if i < 90 {
            env.cainiao.set_timeline(n, journey());
        } else {
            env.seventeen.set_timeline(n, journey());
        }
    }
    let mut log: Vec<(DateTime<Utc>, &'static str, Request)> = Vec::new();
    for step in 0..96 {
        let now = t0() + chrono::Duration::minutes(15 * step);
        // Slow journeys: two steps a day, as most parcels.
        if step == 0 || step == 24 || step == 60 {
            for n in &nums {
                env.cainiao.advance(n);
                env.seventeen.advance(n);
            }
        }
        let (c0, s0) = (env.cainiao.requests().len(), env.seventeen.requests().len());
        env.refresh(now).await;
        let (c, s) = env.requests();
        log.extend(c.into_iter().skip(c0).map(|r| (now, "cainiao", r)));
        log.extend(s.into_iter().skip(s0).map(|r| (now, "17track", r)));
    }
    let total = log.len();
    let per_parcel = total as f64 / nums.len() as f64;
    eprintln!(
        "both providers: {total} requests for 100 parcels in a simulated day ({per_parcel:.2} per parcel; cainiao {}, 17track {})",
        log.iter().filter(|(_, p, _)| *p == "cainiao").count(),
        log.iter().filter(|(_, p, _)| *p == "17track").count(),
    );
    assert!(
        per_parcel <= 4.0,
        "{per_parcel} requests per parcel per day"
    );
    for n in &nums {
        let times: Vec<DateTime<Utc>> = log
            .iter()
            .filter(|(_, p, r)| *p == "cainiao" && r.numbers.contains(n))
            .map(|(t, _, _)| *t)
            .collect();
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= hours(6),
                "{n}: cainiao asked at {} and {}",
                w[0],
                w[1]
            );
        }
    }
    for (i, n) in nums.iter().enumerate() {
        let regs = env.seventeen.registrations(n);
        assert_eq!(regs, u32::from(i >= 90), "{n}: 17track registrations");
    }
    let c: Vec<Request> = log
        .iter()
        .filter(|(_, p, _)| *p == "cainiao")
        .map(|(_, _, r)| r.clone())
        .collect();
    let s: Vec<Request> = log
        .iter()
        .filter(|(_, p, _)| *p == "17track")
        .map(|(_, _, r)| r.clone())
        .collect();
    assert_batch_limits(&c, &s);
}
