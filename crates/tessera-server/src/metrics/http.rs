//! Requests by route and status, and their latency: one fixed slot per route of the route
//! table (plus one for everything unmatched), found by the route template axum matched —
//! never the raw path, so no request can add a series.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::response::Response;

use super::request_id::REQUEST_ID_HEADER;
use crate::routes::Verb;
use crate::state::AppState;

/// The `route` label of requests no route matched (404s, and methods a path does not take).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds of the latency histogram buckets, in seconds (`+Inf` follows). From a cached
/// JWT check (microseconds) through a login's Argon2id (about 12 ms per core) to a store
/// timing out (seconds).
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// [`LATENCY_BUCKETS`] in microseconds, for the comparison made per request.
const BUCKET_MICROS: [u64; 13] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    5_000_000,
];

/// Status codes are three digits: 100 to 599.
const STATUSES: usize = 500;
const FIRST_STATUS: u16 = 100;

/// The counts of one route.
#[derive(Debug)]
struct Series {
    method: String,
    route: &'static str,
    /// Responses by status code, indexed by `status - 100`.
    statuses: Box<[AtomicU64]>,
    /// Requests per latency bucket (not cumulative; the exposition sums them), the last one
    /// past every bound.
    buckets: [AtomicU64; BUCKET_MICROS.len() + 1],
    /// The sum of all latencies, in microseconds.
    sum_micros: AtomicU64,
}

impl Series {
    fn new(method: String, route: &'static str) -> Self {
        Self {
            method,
            route,
            statuses: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// What one series holds, read for the exposition.
#[derive(Debug)]
pub struct SeriesSnapshot {
    /// The route's method (`GET`, `POST`, …), or `other` for the unmatched series.
    pub method: String,
    /// The route template (`/v1/sessions/{id}`) or [`UNMATCHED_ROUTE`].
    pub route: &'static str,
    /// `(status, count)` for every status seen, ascending.
    pub statuses: Vec<(u16, u64)>,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`], then `+Inf` (= the count).
    pub cumulative: Vec<u64>,
    /// The sum of latencies in seconds.
    pub sum_secs: f64,
}

/// Per-route request counters and latency histograms.
#[derive(Debug)]
pub struct HttpMetrics {
    /// Route template → its methods and their series' index.
    index: HashMap<&'static str, Vec<(Method, usize)>>,
    /// One per route of the table, then the unmatched one (last).
    series: Box<[Series]>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new(&crate::routes::route_table())
    }
}

impl HttpMetrics {
    /// Slots for every `(verb, route template)` of `routes`, and one for the unmatched.
    #[must_use]
    pub fn new(routes: &[(Verb, &'static str)]) -> Self {
        let mut index: HashMap<&'static str, Vec<(Method, usize)>> = HashMap::new();
        let mut series = Vec::with_capacity(routes.len() + 1);
        for &(verb, route) in routes {
            let method = verb.method();
            let slots = index.entry(route).or_default();
            if !slots.iter().any(|(m, _)| *m == method) {
                series.push(Series::new(method.as_str().to_owned(), route));
                slots.push((method, series.len() - 1));
            }
        }
        series.push(Series::new("other".to_owned(), UNMATCHED_ROUTE));
        Self {
            index,
            series: series.into_boxed_slice(),
        }
    }

    /// The series of a request: its matched route template and method (`HEAD` counts as the
    /// `GET` it is served by), or the unmatched one.
    fn slot(&self, method: &Method, route: Option<&str>) -> usize {
        let method = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        route
            .and_then(|route| self.index.get(route))
            .and_then(|slots| slots.iter().find(|(m, _)| m == method))
            .map_or(self.series.len().saturating_sub(1), |&(_, slot)| slot)
    }

    /// The route label of a series.
    fn route(&self, slot: usize) -> &'static str {
        self.series.get(slot).map_or(UNMATCHED_ROUTE, |s| s.route)
    }

    /// Counts one response of series `slot`.
    fn record(&self, slot: usize, status: u16, elapsed: Duration) {
        let Some(series) = self.series.get(slot) else {
            return;
        };
        let index = usize::from(status.saturating_sub(FIRST_STATUS));
        if let Some(c) = series.statuses.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKET_MICROS.len());
        if let Some(b) = series.buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        series.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Every series: those of the route table always (a rate needs its zero), the unmatched
    /// one once it has counted something.
    #[must_use]
    pub fn snapshot(&self) -> Vec<SeriesSnapshot> {
        let last = self.series.len().saturating_sub(1);
        let mut out = Vec::with_capacity(self.series.len());
        for (i, s) in self.series.iter().enumerate() {
            let statuses: Vec<(u16, u64)> = s
                .statuses
                .iter()
                .zip(FIRST_STATUS..)
                .map(|(c, code)| (code, c.load(Ordering::Relaxed)))
                .filter(|&(_, n)| n > 0)
                .collect();
            if i == last && statuses.is_empty() {
                continue;
            }
            let mut running = 0u64;
            let cumulative = s
                .buckets
                .iter()
                .map(|b| {
                    running = running.saturating_add(b.load(Ordering::Relaxed));
                    running
                })
                .collect();
            #[allow(clippy::cast_precision_loss)] // microseconds to seconds, for display
            let sum_secs = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            out.push(SeriesSnapshot {
                method: s.method.clone(),
                route: s.route,
                statuses,
                cumulative,
                sum_secs,
            });
        }
        out
    }
}

/// One request as it is observed: its request id (taken from an acceptable `X-Request-Id`,
/// else made) in a tracing span around the request, so every log line of the request carries
/// it; then, when the response is ready, the id echoed in it and the response counted under its
/// route and status, with the time to its head.
pub(crate) struct Observation {
    start: Instant,
    slot: usize,
    id: HeaderValue,
    span: tracing::Span,
}

impl Observation {
    /// Starts observing `req`.
    pub(crate) fn begin(state: &AppState, req: &Request) -> Self {
        let start = Instant::now();
        let http = &state.metrics.http;
        let slot = http.slot(
            req.method(),
            req.extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str),
        );
        let id = state.request_ids.for_request(req.headers());
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or_default(),
            method = %req.method(),
            route = http.route(slot),
        );
        Self {
            start,
            slot,
            id,
            span,
        }
    }

    /// The span the request is served in.
    pub(crate) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Counts `resp` and gives it the request id.
    pub(crate) fn end(self, state: &AppState, resp: &mut Response) {
        let elapsed = self.start.elapsed();
        let status = resp.status().as_u16();
        state.metrics.http.record(self.slot, status, elapsed);
        self.span.in_scope(|| {
            tracing::debug!(
                status,
                latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                "request done"
            );
        });
        resp.headers_mut().insert(REQUEST_ID_HEADER, self.id);
    }
}
