//! Generated domain names for property tests: mostly near the rules' edges
//! (valid names with one thing wrong, labels of 63 and 64 characters, names
//! of about 253 bytes, wildcards in odd places, case, Unicode), some
//! arbitrary text. Shared by `tests/properties.rs` and the API server
//! comparison in `tests/api.rs`.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?",
        1 => "[a-z0-9-]{0,6}",
        1 => "[a-z]{61,65}",
        1 => "[0-9]{1,4}",
        1 => prop::sample::select(vec!["xn--bcher-kva", "bücher", "ÖL", "日本", "ｅｘａｍｐｌｅ", "*", "a_b", "a b", "ß"])
            .prop_map(str::to_owned),
    ]
}

/// One change that may break a name.
fn damage() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::weighted(
        0.3,
        prop::sample::select(vec![
            "/", ":", ":8080", "*", " ", "\t", ".", "..", "-", "_", "http://", "É", "\u{0}", "\n",
        ]),
    )
}

/// A name: labels joined by dots (rarely a single one), maybe a wildcard,
/// in capitals, with a trailing dot, damaged somewhere, near 253 characters long.
pub fn name() -> impl Strategy<Value = String> {
    let structured = (
        prop::bool::weighted(0.2),
        prop::collection::vec(label(), 1..5),
        prop::option::weighted(0.9, "[a-z]{2,6}|[0-9]{1,3}|[a-z0-9-]{1,4}"),
        damage(),
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.1, prop::sample::select(vec!["p", "ü"])),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(wildcard, labels, tld, damage, at, dot, long, shout)| {
            let mut labels = labels;
            if let Some(pad) = long {
                // pad to about the limit of 253 characters (in ASCII or not)
                while labels.iter().map(|l| l.chars().count() + 1).sum::<usize>() + 64 <= 262 {
                    labels.insert(0, pad.repeat(63));
                }
            }
            labels.extend(tld);
            let mut name = labels.join(".");
            if shout {
                name = name.to_uppercase();
            }
            if wildcard {
                name.insert_str(0, "*.");
            }
            if let Some(damage) = damage {
                let mut cut = at.index(name.len() + 1);
                while !name.is_char_boundary(cut) {
                    cut -= 1;
                }
                name.insert_str(cut, damage);
            }
            if dot {
                name.push('.');
            }
            name
        });
    prop_oneof![
        8 => structured,
        1 => "[a-zA-Z0-9.*:/ _-]{0,12}",
        1 => any::<String>(),
    ]
}

/// `count` names from a deterministic runner: the same every run.
pub fn sample(count: usize) -> Vec<String> {
    let mut runner = TestRunner::deterministic();
    let strategy = name();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}
