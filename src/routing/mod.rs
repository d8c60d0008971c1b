//! Routing: which destinations an event goes to.
//!
//! [`pattern`] holds event-type patterns and event-type validation. [`AccountRoutes`] is one
//! account's routes, prepared for matching: pure CPU, no I/O, so the ingest path can compute an
//! event's destinations before handing the write to the journal. An event goes to each
//! destination at most once, however many of its routes match.

pub mod pattern;

use std::collections::HashMap;

use crate::ids::{DestinationId, SourceId};
use crate::model::Route;
use pattern::EventTypePattern;

#[derive(Debug, Clone)]
struct Rule {
    destination: DestinationId,
    pattern: Option<EventTypePattern>,
}

impl Rule {
    /// An untyped event matches only routes without a pattern, or whose pattern matches the
    /// empty type (`*`).
    fn matches(&self, event_type: Option<&str>) -> bool {
        match &self.pattern {
            None => true,
            Some(p) => p.matches(event_type.unwrap_or("")),
        }
    }
}

/// One account's routes.
#[derive(Debug, Default, Clone)]
pub struct AccountRoutes {
    by_source: HashMap<SourceId, Vec<Rule>>,
    catch_all: Vec<Rule>,
}

impl AccountRoutes {
    pub fn new(routes: impl IntoIterator<Item = Route>) -> Self {
        let mut out = Self::default();
        for r in routes {
            let rule = Rule {
                destination: r.destination_id,
                pattern: r.event_type_pattern,
            };
            match r.source_id {
                Some(s) => out.by_source.entry(s).or_default().push(rule),
                None => out.catch_all.push(rule),
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty() && self.catch_all.is_empty()
    }

    /// The destinations an event of `event_type` from `source` goes to, in route order,
    /// each once.
    pub fn destinations(&self, source: SourceId, event_type: Option<&str>) -> Vec<DestinationId> {
        let mut out: Vec<DestinationId> = Vec::new();
        let source_rules = self
            .by_source
            .get(&source)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for rule in source_rules.iter().chain(&self.catch_all) {
            if rule.matches(event_type) && !out.contains(&rule.destination) {
                out.push(rule.destination);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, RouteId};

    fn route(source: Option<SourceId>, dst: DestinationId, pattern: Option<&str>) -> Route {
        Route {
            id: RouteId::new(),
            account_id: AccountId(1),
            source_id: source,
            destination_id: dst,
            event_type_pattern: pattern.map(|p| EventTypePattern::parse(p).unwrap()),
            created_at_ms: 0,
        }
    }

    #[test]
    fn source_routes_and_catch_alls_match_by_pattern_once_per_destination() {
        let (s1, s2) = (SourceId(1), SourceId(2));
        let (d1, d2, d3, d4) = (
            DestinationId(1),
            DestinationId(2),
            DestinationId(3),
            DestinationId(4),
        );
        let table = AccountRoutes::new([
            route(Some(s1), d1, Some("invoice.*")),
            route(Some(s1), d2, None),
            route(Some(s2), d3, Some("orders/*")),
            route(None, d4, Some("*.failed")),
            route(None, d1, None),
        ]);
        assert_eq!(table.destinations(s1, Some("invoice.paid")), vec![d1, d2]);
        assert_eq!(
            table.destinations(s1, Some("invoice.payment.failed")),
            vec![d1, d2, d4]
        );
        assert_eq!(table.destinations(s2, Some("orders/create")), vec![d3, d1]);
        assert_eq!(table.destinations(s2, Some("charge.failed")), vec![d4, d1]);
        assert_eq!(table.destinations(SourceId(9), None), vec![d1]);
        assert_eq!(table.destinations(s1, None), vec![d2, d1]);
    }
}
