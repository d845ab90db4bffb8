//! Fuzzes what the control plane reads from every proxy's `/metrics` for `weft stat` and the
//! audit: the Prometheus text parser, the sample it is reduced to (`weft_control::stats`),
//! and the audit's ledger (`weft_control::audit`), which reads the same text twice and counts
//! what grew. A proxy may be broken or hostile; the control plane must not be. Checks:
//! nothing panics, and whatever was read gives golden signals (rates, quantiles), ledger
//! windows and PromQL expressions without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_control::audit::ledger::Ledger;
use weft_control::stats::sample::Sample;
use weft_control::stats::window::Golden;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = weft_control::stats::parse::line(line);
    }
    let earlier = Sample::from_metrics(&text, 0.0);
    let later = Sample::from_metrics(&text, 10.0);
    for (key, counts) in &later.series {
        let delta = counts.since(earlier.series.get(key));
        let _ = Golden::of(&delta, 10.0);
        let _ = Golden::of(counts, 0.0);
    }
    let ledger = Ledger::open(None);
    ledger.observe("ns/fuzzed", "", 1_000_000);
    ledger.observe("ns/fuzzed", &text, 1_000_010);
    ledger.observe("ns/fuzzed", &text, 1_000_400);
    let seen = ledger.window(std::time::Duration::from_secs(3600), 1_000_400);
    for fact in seen.totals.keys() {
        let _ = fact.promql("1h");
    }
});
