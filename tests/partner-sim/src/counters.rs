//! What the sim saw, for tests to assert on.
//!
//! One short mutex per request: requests are counted on arrival (so a request
//! that never gets an answer still shows) and their outcome on completion.
//! Admin calls under `/_sim/` are not counted.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::store::ChangeKind;

/// A snapshot of the sim's counters, from [`PartnerSim::counters`](crate::PartnerSim::counters)
/// or `GET /_sim/counters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests received (admin calls excluded).
    pub requests: u64,
    /// Requests per route template, e.g. `"GET /v1/contacts/{id}"`; requests
    /// matching no route count as `"GET (unmatched)"`.
    pub by_route: BTreeMap<String, u64>,
    /// Responses per status code, including 401, 429 and injected faults.
    /// Connections closed or left hanging by a fault have no status.
    pub by_status: BTreeMap<u16, u64>,
    /// Every list call, in arrival order (the first 100,000 after a reset).
    pub list_calls: Vec<ListCall>,
    /// Records served per resource, by list pages and single-record reads.
    pub records_served: BTreeMap<String, u64>,
    /// Successful writes received over HTTP, per resource.
    pub writes: BTreeMap<String, WriteCounts>,
    /// Writes answered from the idempotency store instead of being executed.
    pub idempotent_replays: u64,
    /// Requests that an injected fault answered, delayed, hung or closed.
    pub faults_injected: u64,
    /// Webhook outcomes.
    pub webhooks: WebhookCounters,
}

/// One `GET /v1/{resource}` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCall {
    /// `contacts` or `companies`.
    pub resource: String,
    /// The `cursor` parameter as sent.
    pub cursor: Option<String>,
    /// The `updated_since` parameter as sent.
    pub updated_since: Option<String>,
    /// The `limit` parameter, if it was sent and is a number.
    pub limit: Option<usize>,
    /// How many records the page held.
    pub returned: usize,
    /// The response status; 0 while unanswered, or if a fault closed the connection.
    pub status: u16,
}

/// Successful writes to one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCounts {
    /// `POST` creates.
    pub created: u64,
    /// `PATCH` updates.
    pub updated: u64,
    /// `DELETE`s.
    pub deleted: u64,
}

/// Webhook events and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCounters {
    /// Events posted to the target.
    pub sent: u64,
    /// Events the drop rate discarded; never sent.
    pub dropped: u64,
    /// Sent events answered with a 2xx.
    pub delivered: u64,
    /// Sent events answered with another status, or not at all.
    pub failed: u64,
    /// Receiver responses per status code.
    pub statuses: BTreeMap<u16, u64>,
}

impl Counters {
    /// Requests seen on `route`, e.g. `"GET /v1/contacts"`.
    pub fn route(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }

    /// Responses sent with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Records served from `resource`.
    pub fn served(&self, resource: &str) -> u64 {
        self.records_served.get(resource).copied().unwrap_or(0)
    }
}

/// Most list calls the log keeps between resets, so a long demo stays bounded.
const LIST_CALL_LOG_LIMIT: usize = 100_000;

/// What a handler did, attached to its response for the counting middleware.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) served: Option<(&'static str, usize)>,
    pub(crate) wrote: Option<(&'static str, ChangeKind)>,
    pub(crate) replayed: bool,
}

/// Links a request's arrival to its completion across a possible reset.
#[derive(Debug)]
pub(crate) struct Ticket {
    epoch: u64,
    list_call: Option<usize>,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct CounterBook {
    inner: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    /// Bumped by every reset, so completions of older requests don't touch
    /// the fresh list-call log.
    epoch: u64,
    counters: Counters,
}

impl CounterBook {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request on arrival.
    pub(crate) fn arrive(&self, route: String, list_call: Option<ListCall>) -> Ticket {
        let mut book = self.book();
        let epoch = book.epoch;
        let counters = &mut book.counters;
        counters.requests += 1;
        *counters.by_route.entry(route).or_default() += 1;
        let list_call = list_call.and_then(|call| {
            (counters.list_calls.len() < LIST_CALL_LOG_LIMIT).then(|| {
                counters.list_calls.push(call);
                counters.list_calls.len() - 1
            })
        });
        Ticket { epoch, list_call }
    }

    /// Counts a request's outcome; `status` is `None` when the connection was closed.
    pub(crate) fn finish(&self, ticket: Ticket, status: Option<u16>, tally: Option<&Tally>) {
        let mut book = self.book();
        let current = book.epoch == ticket.epoch;
        let counters = &mut book.counters;
        if let Some(status) = status {
            *counters.by_status.entry(status).or_default() += 1;
        }
        let untallied = Tally::default();
        let tally = tally.unwrap_or(&untallied);
        if let Some((resource, count)) = tally.served {
            *counters
                .records_served
                .entry(resource.to_owned())
                .or_default() += count as u64;
        }
        if let (true, Some(i)) = (current, ticket.list_call) {
            let call = &mut counters.list_calls[i];
            call.status = status.unwrap_or(0);
            call.returned = tally.served.map_or(0, |(_, n)| n);
        }
        if let Some((resource, kind)) = tally.wrote {
            let writes = counters.writes.entry(resource.to_owned()).or_default();
            match kind {
                ChangeKind::Created => writes.created += 1,
                ChangeKind::Updated => writes.updated += 1,
                ChangeKind::Deleted => writes.deleted += 1,
            }
        }
        counters.idempotent_replays += u64::from(tally.replayed);
    }

    /// Counts a request that a fault took over.
    pub(crate) fn fault_injected(&self) {
        self.book().counters.faults_injected += 1;
    }

    /// Counts a webhook event the drop rate discarded.
    pub(crate) fn webhook_dropped(&self) {
        self.book().counters.webhooks.dropped += 1;
    }

    /// Counts a webhook delivery attempt and its outcome.
    pub(crate) fn webhook_sent(&self, status: Option<u16>) {
        let mut book = self.book();
        let webhooks = &mut book.counters.webhooks;
        webhooks.sent += 1;
        match status {
            Some(status) => {
                *webhooks.statuses.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    webhooks.delivered += 1;
                } else {
                    webhooks.failed += 1;
                }
            }
            None => webhooks.failed += 1,
        }
    }

    /// A copy of the counters.
    pub(crate) fn snapshot(&self) -> Counters {
        self.book().counters.clone()
    }

    /// Zeroes every counter.
    pub(crate) fn reset(&self) {
        let mut book = self.book();
        book.epoch += 1;
        book.counters = Counters::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_call() -> ListCall {
        ListCall {
            resource: "contacts".into(),
            cursor: None,
            updated_since: None,
            limit: Some(10),
            returned: 0,
            status: 0,
        }
    }

    #[test]
    fn outcomes_land_on_the_right_list_call() {
        let book = CounterBook::default();
        let first = book.arrive("GET /v1/contacts".into(), Some(list_call()));
        let second = book.arrive("GET /v1/contacts".into(), Some(list_call()));
        let tally = Tally {
            served: Some(("contacts", 7)),
            ..Tally::default()
        };
        book.finish(second, Some(200), Some(&tally));
        book.finish(first, Some(429), None);
        let c = book.snapshot();
        assert_eq!(c.route("GET /v1/contacts"), 2);
        assert_eq!((c.list_calls[0].status, c.list_calls[0].returned), (429, 0));
        assert_eq!((c.list_calls[1].status, c.list_calls[1].returned), (200, 7));
        assert_eq!(c.served("contacts"), 7);
        assert_eq!((c.status(200), c.status(429)), (1, 1));
    }

    #[test]
    fn completions_after_a_reset_do_not_touch_the_new_log() {
        let book = CounterBook::default();
        let stale = book.arrive("GET /v1/contacts".into(), Some(list_call()));
        book.reset();
        let fresh = book.arrive("GET /v1/contacts".into(), Some(list_call()));
        book.finish(stale, Some(500), None);
        assert_eq!(book.snapshot().list_calls[0].status, 0);
        book.finish(fresh, Some(200), None);
        assert_eq!(book.snapshot().list_calls[0].status, 200);
    }

    #[test]
    fn status_code_keys_survive_a_json_round_trip() {
        let book = CounterBook::default();
        let t = book.arrive("GET /v1/contacts".into(), None);
        book.finish(t, Some(401), None);
        let json = serde_json::to_string(&book.snapshot()).unwrap();
        let back: Counters = serde_json::from_str(&json).unwrap();
        assert_eq!(back, book.snapshot());
    }
}
