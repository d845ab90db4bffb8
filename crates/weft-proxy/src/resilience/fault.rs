//! A FaultInjection (Istio's `HTTPFaultInjection`) as a rule carries it: what to inject, how
//! often, and its counters (resolved when the snapshot is built, so an injection takes no
//! lock). The outbound fault stage applies it.

use http::{HeaderValue, Response, StatusCode};
use prometheus_client::metrics::counter::Counter;
use weft_api::view::FaultView;

use crate::error::WEFT_ERROR;
use crate::http::{empty, full, Body};

pub struct Fault {
    pub view: FaultView,
    pub delayed: Counter,
    pub aborted: Counter,
}

impl Fault {
    /// The delay to apply to this request, if it is one of the share delayed.
    pub fn delay(&self) -> Option<std::time::Duration> {
        let d = self.view.delay.as_ref()?;
        chance(d.percentage).then(|| {
            self.delayed.inc();
            std::time::Duration::from_millis(d.fixed_delay_ms)
        })
    }

    /// The answer to give instead of sending the request, if it is one of the share aborted.
    pub fn abort(&self, grpc: bool) -> Option<Response<Body>> {
        let a = self.view.abort.as_ref()?;
        if !chance(a.percentage) {
            return None;
        }
        self.aborted.inc();
        let why = HeaderValue::from_str(&format!(
            "fault-injected; FaultInjection {}",
            self.view.name
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("fault-injected"));
        let mut resp = match (grpc, a.grpc_status, a.http_status) {
            (true, Some(_), _) | (true, None, None) => {
                let code = a.grpc_status.unwrap_or(14);
                let mut r = Response::new(empty());
                let h = r.headers_mut();
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                h.insert("grpc-status", HeaderValue::from(code));
                h.insert("grpc-message", HeaderValue::from_static("fault injected"));
                r
            }
            (_, grpc_status, http_status) => {
                let status = http_status
                    .or_else(|| grpc_status.map(http_status_for_grpc))
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut r = Response::new(full("fault injected\n"));
                *r.status_mut() = status;
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
        };
        resp.headers_mut().insert(WEFT_ERROR, why);
        Some(resp)
    }
}

/// True for `percentage` percent of calls.
fn chance(percentage: f64) -> bool {
    percentage >= 100.0 || (percentage > 0.0 && fastrand::f64() * 100.0 < percentage)
}

/// The HTTP status gRPC's HTTP mapping gives a gRPC status (for a gRPC abort of a request
/// that is not gRPC).
fn http_status_for_grpc(code: u32) -> u16 {
    match code {
        3 | 9 | 11 => 400,
        16 => 401,
        7 => 403,
        5 => 404,
        6 | 10 => 409,
        8 => 429,
        1 => 499,
        12 => 501,
        14 => 503,
        4 => 504,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::view::resilience::{FaultAbortView, FaultDelayView};

    fn fault(delay: Option<(u64, f64)>, abort: Option<(Option<u16>, Option<u32>, f64)>) -> Fault {
        Fault {
            view: FaultView {
                name: "shop/f".into(),
                delay: delay.map(|(ms, p)| FaultDelayView {
                    fixed_delay_ms: ms,
                    percentage: p,
                }),
                abort: abort.map(|(http_status, grpc_status, percentage)| FaultAbortView {
                    http_status,
                    grpc_status,
                    percentage,
                }),
            },
            delayed: Counter::default(),
            aborted: Counter::default(),
        }
    }

    #[test]
    fn shares_are_honoured() {
        let f = fault(Some((100, 25.0)), Some((Some(503), None, 10.0)));
        let n = 20_000;
        let delayed = (0..n).filter(|_| f.delay().is_some()).count();
        let aborted = (0..n).filter(|_| f.abort(false).is_some()).count();
        assert!((4_400..5_600).contains(&delayed), "{delayed}");
        assert!((1_600..2_400).contains(&aborted), "{aborted}");
        assert_eq!(f.delayed.get() as usize, delayed);
        let none = fault(Some((100, 0.0)), Some((Some(503), None, 0.0)));
        assert!((0..1000).all(|_| none.delay().is_none() && none.abort(false).is_none()));
        let all = fault(Some((250, 100.0)), None);
        assert_eq!(all.delay(), Some(std::time::Duration::from_millis(250)));
    }

    #[test]
    fn aborts_answer_in_the_callers_protocol() {
        let f = fault(None, Some((Some(503), Some(14), 100.0)));
        let http = f.abort(false).expect("abort");
        assert_eq!(http.status(), 503);
        assert_eq!(
            http.headers()[WEFT_ERROR],
            "fault-injected; FaultInjection shop/f"
        );
        let grpc = f.abort(true).expect("abort");
        assert_eq!(grpc.status(), 200);
        assert_eq!(grpc.headers()["grpc-status"], "14");
        // A gRPC status alone, for a request that is not gRPC: its HTTP mapping.
        let g = fault(None, Some((None, Some(8), 100.0)));
        assert_eq!(g.abort(false).expect("abort").status(), 429);
    }
}
