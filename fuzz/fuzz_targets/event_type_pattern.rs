//! Fuzzes `EventTypePattern`, the glob language routes and destinations
//! subscribe with. Patterns come from API users and event types from
//! webhook senders, so parsing and matching must never panic; and because a
//! route that silently fails to match loses events, matching must agree
//! with the obvious definition of a glob.
//!
//! Input: UTF-8 text (invalid bytes cut it short); line 0 is the pattern,
//! every further line an event type. (Patterns with an embedded `\n` are not
//! produced; `\n` is only ever trimmed whitespace, like `\r` or `\t`.)
//!
//! Checks:
//! - `parse` never panics; an accepted pattern echoes its source exactly
//!   (`as_str`, `Display`) and survives a serde round trip unchanged.
//! - `matches` never panics on any event type, valid or not.
//! - For short inputs (pattern <= 12 chars, type <= 24 chars) `matches`
//!   equals a tiny naive recursive matcher: split on `,`, trim each glob,
//!   `*` matches any run of characters including none.
//! - For inputs of any length: each glob matches itself with every `*`
//!   deleted, and with every `*` replaced by any fuzzed event type; a valid
//!   event type parsed as a pattern matches itself.

#![no_main]

use hookgate::routing::pattern::{validate_event_type, EventTypePattern};
use libfuzzer_sys::fuzz_target;

/// Naive-matcher bounds, in chars: keeps the unmemoised recursion cheap.
const NAIVE_MAX_PATTERN: usize = 12;
const NAIVE_MAX_TYPE: usize = 24;
/// Longest event type substituted for `*` in the long-input checks.
const MAX_SUBSTITUTE: usize = 64;

/// Whether `glob` matches all of `text`; `*` matches any run, incl. empty.
///
/// A run of `*` is treated as one (it matches the same texts); without that
/// `***********x` would take C(35, 11) calls to fail on 24 chars.
fn naive_glob(glob: &[char], text: &[char]) -> bool {
    match glob.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) if rest.first() == Some(&'*') => naive_glob(rest, text),
        Some(('*', rest)) => (0..=text.len()).any(|skip| naive_glob(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && naive_glob(rest, &text[1..]),
    }
}

fn naive_matches(pattern: &str, event_type: &str) -> bool {
    let text: Vec<char> = event_type.chars().collect();
    pattern.split(',').any(|glob| {
        let glob: Vec<char> = glob.trim().chars().collect();
        naive_glob(&glob, &text)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    let mut lines = text.split('\n');
    let source = lines.next().unwrap_or_default();
    let event_types: Vec<&str> = lines.collect();

    for event_type in &event_types {
        if validate_event_type(event_type).is_ok() {
            match EventTypePattern::parse(event_type) {
                Ok(exact) => assert!(
                    exact.matches(event_type),
                    "valid event type {event_type:?} does not match itself"
                ),
                Err(e) => panic!("valid event type {event_type:?} is not a pattern: {e}"),
            }
        }
    }

    let Ok(pattern) = EventTypePattern::parse(source) else {
        return;
    };
    assert_eq!(pattern.as_str(), source);
    assert_eq!(pattern.to_string(), source);
    let json = serde_json::to_string(&pattern).expect("a pattern serialises as a string");
    match serde_json::from_str::<EventTypePattern>(&json) {
        Ok(back) => assert_eq!(back, pattern, "serde round trip changed {source:?}"),
        Err(e) => panic!("pattern {source:?} does not deserialise from {json}: {e}"),
    }

    for glob in source.split(',').map(str::trim) {
        let no_stars = glob.replace('*', "");
        assert!(
            pattern.matches(&no_stars),
            "{source:?} does not match {no_stars:?} (every * matched empty)"
        );
        for event_type in event_types.iter().filter(|t| t.len() <= MAX_SUBSTITUTE) {
            let filled = glob.replace('*', event_type);
            assert!(
                pattern.matches(&filled),
                "{source:?} does not match {filled:?} (every * matched {event_type:?})"
            );
        }
    }

    let short_pattern = source.chars().count() <= NAIVE_MAX_PATTERN;
    for event_type in &event_types {
        let got = pattern.matches(event_type);
        if short_pattern && event_type.chars().count() <= NAIVE_MAX_TYPE {
            let want = naive_matches(source, event_type);
            assert_eq!(got, want, "pattern {source:?} on event type {event_type:?}");
        }
    }
});
