//! Fuzzes what the control plane reads from every proxy's `/metrics` for `weft stat`: the
//! Prometheus text parser and the sample it is reduced to (`weft_control::stats`). A proxy
//! may be broken or hostile; the control plane must not be. Checks: nothing panics, and
//! whatever was read gives golden signals (rates, quantiles) without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
});
