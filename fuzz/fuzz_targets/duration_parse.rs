//! Duration parsing (`src/api/duration.rs`) on arbitrary text: it accepts
//! exactly what the CRD's pattern admits (unless the total does not fit a
//! `Duration`), and its value is the sum of the parts.
//!
//! Input: bytes read as UTF-8 (invalid sequences become U+FFFD).
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use closte_operator::api::duration;
use libfuzzer_sys::fuzz_target;
use regex::Regex;

static PATTERN: LazyLock<Regex> = LazyLock::new(|| Regex::new(duration::PATTERN).unwrap());
static PART: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)").unwrap());

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = duration::parse(&text);
    if !PATTERN.is_match(&text) {
        assert!(
            parsed.is_err(),
            "{text:?} is outside the pattern, parsed as {parsed:?}"
        );
        return;
    }
    // the same sum, from the pattern's own reading of the parts
    let total: f64 = PART
        .captures_iter(&text)
        .map(|c| {
            let value: f64 = c[1].parse().unwrap();
            let unit = match &c[2] {
                "ns" => 1e-9,
                "us" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                _ => 3600.0,
            };
            value * unit
        })
        .sum();
    assert_eq!(
        duration::parse_flag(&text).ok(),
        parsed.clone().ok(),
        "the flag parser is the same parser"
    );
    assert_eq!(
        parsed.ok(),
        Duration::try_from_secs_f64(total).ok(),
        "{text:?}"
    );
});
