//! Outlier detection's logic on a clock passed in: ejection, its growing time, probation,
//! the ejection and health limits.

use std::sync::atomic::AtomicU32;

use super::*;

struct Ep {
    health: Health,
    pending: AtomicU32,
    name: &'static str,
}

impl Ejectable for Ep {
    fn health(&self) -> &Health {
        &self.health
    }
    fn in_flight(&self) -> u32 {
        self.pending.load(Ordering::Relaxed)
    }
    fn name(&self) -> String {
        self.name.to_string()
    }
}

fn endpoints(n: usize) -> Vec<Arc<Ep>> {
    const NAMES: [&str; 4] = ["a", "b", "c", "d"];
    (0..n)
        .map(|i| {
            Arc::new(Ep {
                health: Health::default(),
                pending: AtomicU32::new(0),
                name: NAMES[i],
            })
        })
        .collect()
}

fn outlier(settings: OutlierView) -> Outlier {
    Outlier {
        settings,
        service: "t/echo".into(),
        ejections_5xx: Counter::default(),
        ejections_gateway: Counter::default(),
        readmissions: Counter::default(),
    }
}

fn fail(o: &Outlier, all: &[Arc<Ep>], i: usize, v: Verdict, times: usize, now: u64) {
    for _ in 0..times {
        o.record(&*all[i], all, v, now);
    }
}

#[test]
fn five_consecutive_5xx_eject_and_500_counts() {
    let o = outlier(OutlierView::default());
    let all = endpoints(3);
    fail(&o, &all, 0, Verdict::ServerError, 4, 0);
    o.record(&*all[0], &all, Verdict::Success, 0);
    fail(&o, &all, 0, Verdict::ServerError, 4, 0);
    assert!(o.admits(&*all[0], &all, 1), "a success reset the count");
    o.record(&*all[0], &all, Verdict::ServerError, 0);
    assert!(
        !o.admits(&*all[0], &all, 1),
        "the fifth 500 in a row ejects"
    );
    assert_eq!(o.ejections_5xx.get(), 1);
    // Load is not failure.
    fail(&o, &all, 1, Verdict::Neutral, 10, 0);
    assert!(o.admits(&*all[1], &all, 1));
    // Nor are verdicts on gRPC statuses other than the server's failures.
    assert_eq!(Verdict::of_status(200, Some(8)), Verdict::Neutral);
    assert_eq!(Verdict::of_status(200, Some(14)), Verdict::GatewayError);
    assert_eq!(Verdict::of_status(200, Some(13)), Verdict::ServerError);
    assert_eq!(Verdict::of_status(200, Some(5)), Verdict::Success);
    assert_eq!(Verdict::of_status(429, None), Verdict::Neutral);
    assert_eq!(Verdict::of_status(500, None), Verdict::ServerError);
}

#[test]
fn gateway_errors_have_their_own_count() {
    let o = outlier(OutlierView {
        consecutive_5xx: 0,
        consecutive_gateway: 3,
        ..OutlierView::default()
    });
    let all = endpoints(3);
    fail(&o, &all, 0, Verdict::GatewayError, 2, 0);
    o.record(&*all[0], &all, Verdict::ServerError, 0);
    fail(&o, &all, 0, Verdict::GatewayError, 2, 0);
    assert!(
        o.admits(&*all[0], &all, 1),
        "a 500 breaks a run of gateway errors"
    );
    o.record(&*all[0], &all, Verdict::GatewayError, 0);
    assert!(!o.admits(&*all[0], &all, 1));
    assert_eq!(o.ejections_gateway.get(), 1);
    // 500s alone never eject when consecutive5xxErrors is 0.
    fail(&o, &all, 1, Verdict::ServerError, 50, 0);
    assert!(o.admits(&*all[1], &all, 1));
}

#[test]
fn an_ejected_endpoint_is_probed_back_one_request_at_a_time_and_ejected_for_longer() {
    let o = outlier(OutlierView {
        max_ejection_percent: 100,
        ..OutlierView::default()
    });
    let all = endpoints(3);
    let a = &*all[0];
    fail(&o, &all, 0, Verdict::GatewayError, 5, 1_000);
    assert!(!o.admits(a, &all, 30_999), "ejected for 30 s");
    // Time up: readmitted, on probation.
    assert!(o.admits(a, &all, 31_000));
    assert_eq!(o.readmissions.get(), 1);
    a.pending.store(1, Ordering::Relaxed);
    assert!(!o.admits(a, &all, 31_001), "one probe at a time");
    a.pending.store(0, Ordering::Relaxed);
    // The probe fails: ejected again at once, for twice as long.
    o.record(a, &all, Verdict::GatewayError, 31_010);
    assert!(!o.admits(a, &all, 91_009));
    assert!(o.admits(a, &all, 91_010));
    // This probe succeeds: fully back, any number in flight.
    o.record(a, &all, Verdict::Success, 91_020);
    a.pending.store(5, Ordering::Relaxed);
    assert!(o.admits(a, &all, 91_030));
    // Healthy for three intervals (10 s): both ejections forgiven, so the next lasts 30 s.
    a.pending.store(0, Ordering::Relaxed);
    fail(&o, &all, 0, Verdict::GatewayError, 5, 121_020);
    assert!(!o.admits(a, &all, 151_019));
    assert!(o.admits(a, &all, 151_020));
}

#[test]
fn max_ejection_percent_keeps_endpoints_in_but_one_may_always_go() {
    let o = outlier(OutlierView::default()); // 10 %
    let all = endpoints(3);
    fail(&o, &all, 0, Verdict::ServerError, 5, 0);
    fail(&o, &all, 1, Verdict::ServerError, 5, 0);
    assert!(!o.admits(&*all[0], &all, 1), "one may always be ejected");
    assert!(o.admits(&*all[1], &all, 1), "a second would pass 10 %");
    let o = outlier(OutlierView {
        max_ejection_percent: 50,
        ..OutlierView::default()
    });
    let all = endpoints(4);
    for i in 0..4 {
        fail(&o, &all, i, Verdict::ServerError, 5, 0);
    }
    let ejected = all.iter().filter(|e| !o.admits(&***e, &all, 1)).count();
    assert_eq!(ejected, 2, "half of four");
}

#[test]
fn below_min_health_every_endpoint_gets_traffic() {
    let o = outlier(OutlierView {
        max_ejection_percent: 100,
        min_health_percent: 60,
        ..OutlierView::default()
    });
    let all = endpoints(2);
    fail(&o, &all, 0, Verdict::ServerError, 5, 0);
    assert!(
        o.admits(&*all[0], &all, 1),
        "one of two healthy is under 60 %: ejections are ignored"
    );
    let o = outlier(OutlierView {
        max_ejection_percent: 100,
        min_health_percent: 50,
        ..OutlierView::default()
    });
    let all = endpoints(2);
    fail(&o, &all, 0, Verdict::ServerError, 5, 0);
    assert!(!o.admits(&*all[0], &all, 1), "50 % healthy is enough");
}
