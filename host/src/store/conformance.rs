//! What every store backend promises, as one suite written against the
//! store traits alone. A backend runs it with
//! `conformance_suite!(name, open: ..., fail_checkpoints: ...)`: `open`
//! gives a fresh empty store timed by the manual clock it is passed, and
//! what keeps it alive (its directory, a database to drop);
//! `fail_checkpoints(&store, on)` makes its checkpoint writes fail (as a
//! full disk would) or succeed again.

use std::sync::LazyLock;
use std::time::Duration;

use crate::capability::{AuditEntry, BudgetLeft, BudgetState};
use crate::clock::Clock;
use crate::contract::{ChangeKind, Checkpoint, ConnectorError, Record};
use crate::ids::{ConnectionId, ConnectorName, FlowId, RunId, TenantId};
use crate::store::{
    ApprovedVersion, ChangeSource, ChangeStore, DeadLetter, Delivered, DeliveryFailure, EgressLog,
    FlowState, FlowStore, Handshake, IdLink, MergeOutcome, PageCommit, PageOutcome, PluginLedger,
    PluginRollback, RunEnd, RunStatus, SourcePage, Sweep, TenantStore,
};
use crate::tenant::Tenant;

/// Everything a backend implements.
pub(crate) trait Backend:
    FlowStore + ChangeStore + TenantStore + PluginLedger + EgressLog
{
}

impl<T: FlowStore + ChangeStore + TenantStore + PluginLedger + EgressLog> Backend for T {}

/// One `#[test]` per case, in a module named after the backend.
macro_rules! conformance_suite {
    ($backend:ident, open: $open:expr, fail_checkpoints: $fail:expr $(,)?) => {
        mod $backend {
            $crate::store::conformance::conformance_suite!(@cases $open;
                a_page_and_its_checkpoint_are_visible_together,
                an_older_version_never_replaces_a_newer_one,
                the_same_version_with_other_content_is_a_counted_conflict,
                a_read_from_scratch_deletes_what_it_did_not_see_and_only_that,
                a_sweep_deletes_the_flows_reshaped_copies_too,
                checkpoints_are_replaced_listed_and_reset,
                records_are_read_in_key_order_deleted_ones_included,
                runs_are_listed_newest_first_with_how_they_ended,
                tenants_are_created_read_updated_deleted_and_listed_by_name,
                dead_letters_are_kept_oldest_first_and_redelivery_settles_them,
                id_links_are_kept_per_flow_and_replaced,
                approved_versions_are_kept_newest_first_and_rollbacks_recorded,
                coverage_counts_changes_only_polls_found_after_the_grace_period,
                endpoints_and_handshakes_are_kept_per_tenant_connection,
                changes_are_forgotten_by_age_and_coverage_with_them,
                audit_entries_and_budgets_are_kept,
            );

            #[test]
            fn a_failed_commit_leaves_neither_records_nor_checkpoint() {
                let (_keep, store) = ($open)($crate::store::conformance::clock());
                $crate::store::conformance::a_failed_commit_leaves_neither_records_nor_checkpoint(
                    &store, $fail,
                );
            }
        }
    };
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let (_keep, store) = ($open)($crate::store::conformance::clock());
                $crate::store::conformance::$case(&store);
            }
        )*
    };
}

pub(crate) use conformance_suite;

conformance_suite!(
    sqlite,
    open: crate::store::sqlite::testing::open,
    fail_checkpoints: crate::store::sqlite::testing::fail_checkpoints,
);

/// A manual clock at a fixed time: the suite moves it, so it never sleeps
/// and every backend sees the same times.
pub(crate) fn clock() -> Clock {
    Clock::manual(1_700_000_000_000)
}

static FLOW: LazyLock<FlowId> = LazyLock::new(|| FlowId::new("f").unwrap());
static CONNECTION: LazyLock<ConnectionId> = LazyLock::new(|| ConnectionId::new("c").unwrap());

fn upsert(key: &str, version: u64, data: &str) -> Record {
    Record {
        key: key.into(),
        version: Some(version),
        kind: ChangeKind::Upsert,
        data: data.into(),
    }
}

fn delete(key: &str, version: u64) -> Record {
    Record {
        kind: ChangeKind::Delete,
        ..upsert(key, version, "{}")
    }
}

fn checkpoint(state: &str) -> Checkpoint {
    Checkpoint {
        format: 1,
        state: state.into(),
    }
}

/// A page of flow `f` over stream `s` of connection `c`, delivered raw.
fn page<'a>(run: RunId, checkpoint: &'a Checkpoint, records: &'a [Record]) -> PageCommit<'a> {
    PageCommit {
        flow: &FLOW,
        stream: "s",
        run,
        checkpoint,
        source: SourcePage {
            connection: &CONNECTION,
            stream: "s",
            records,
        },
        delivered: Delivered::Raw,
        dead_letters: &[],
        log_changes: false,
        sweep: Sweep::Off,
    }
}

/// How a page of [`commit`] is delivered and noted.
#[derive(Clone, Copy, Default)]
struct Shape {
    /// Reshaped copies kept as they are.
    mapped: bool,
    /// Noted as seen by a poll.
    log_changes: bool,
    sweep: Sweep,
}

/// Commits `records` as one page of flow `f`, in a run of its own.
fn commit(store: &impl Backend, records: &[Record], shape: Shape) -> PageOutcome {
    // Distinct milliseconds: sweeps and coverage compare store times.
    store.clock().advance(Duration::from_millis(2));
    let run = store
        .start_run(&FLOW, "x 1.0.0", shape.sweep != Sweep::Off)
        .unwrap();
    let checkpoint = checkpoint("{}");
    store
        .commit_page(&PageCommit {
            delivered: if shape.mapped {
                Delivered::Mapped(records)
            } else {
                Delivered::Raw
            },
            log_changes: shape.log_changes,
            sweep: shape.sweep,
            ..page(run, &checkpoint, records)
        })
        .unwrap()
}

/// A poll's page: its records noted as seen by a poll.
fn poll(store: &impl Backend, records: &[Record]) -> PageOutcome {
    let shape = Shape {
        log_changes: true,
        ..Shape::default()
    };
    commit(store, records, shape)
}

fn webhook(store: &impl Backend, records: &[Record]) -> MergeOutcome {
    store
        .merge(&CONNECTION, "s", records, ChangeSource::Webhook)
        .unwrap()
}

/// The stored copy of `key` in stream `s` of connection `c`.
fn stored(store: &impl Backend, key: &str) -> Option<Record> {
    let mut found = store.records_by_key(&CONNECTION, "s", &[key]).unwrap();
    assert!(found.len() <= 1, "one copy per key: {found:?}");
    found.pop()
}

fn keys(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.key.as_str()).collect()
}

/// The keys of stream `s` that are not deleted.
fn live_keys(store: &impl Backend) -> Vec<String> {
    let records = store.scan(&CONNECTION, "s", None, 100).unwrap();
    records
        .into_iter()
        .filter(|r| r.kind == ChangeKind::Upsert)
        .map(|r| r.key)
        .collect()
}

pub(crate) fn a_page_and_its_checkpoint_are_visible_together(store: &impl Backend) {
    let run = store.start_run(&FLOW, "x 1.0.0", false).unwrap();
    let checkpoint = checkpoint("\"p1\"");
    let records = [upsert("a", 2, r#"{"v":2}"#), upsert("b", 1, "{}")];
    assert_eq!(store.checkpoint(&FLOW, "s").unwrap(), None);
    assert_eq!(
        store
            .commit_page(&page(run, &checkpoint, &records))
            .unwrap(),
        PageOutcome {
            changed: 2,
            unchanged: 0,
            swept: 0,
            conflicts: 0,
        }
    );
    assert_eq!(store.checkpoint(&FLOW, "s").unwrap(), Some(checkpoint));
    assert_eq!(store.scan(&CONNECTION, "s", None, 10).unwrap(), records);
    let listed = store.checkpoints(&FLOW).unwrap();
    assert_eq!((listed[0].stream.as_str(), listed[0].run), ("s", Some(run)));
    let runs = store.runs(Some(&FLOW), 10).unwrap();
    assert_eq!(
        (runs[0].pages, runs[0].records_read, runs[0].records_written),
        (1, 2, 2)
    );
}

pub(crate) fn a_failed_commit_leaves_neither_records_nor_checkpoint<S: Backend>(
    store: &S,
    fail_checkpoints: impl Fn(&S, bool),
) {
    let run = store.start_run(&FLOW, "x 1.0.0", false).unwrap();
    let first = checkpoint("\"p1\"");
    let records = [upsert("a", 1, "{}")];
    // The page's stream is new: nothing of it may outlive the failure.
    fail_checkpoints(store, true);
    assert!(store.commit_page(&page(run, &first, &records)).is_err());
    assert_eq!(stored(store, "a"), None);
    assert_eq!(store.checkpoint(&FLOW, "s").unwrap(), None);
    assert_eq!(store.runs(Some(&FLOW), 1).unwrap()[0].pages, 0);

    fail_checkpoints(store, false);
    store.commit_page(&page(run, &first, &records)).unwrap();
    assert_eq!(stored(store, "a"), Some(records[0].clone()));
    fail_checkpoints(store, true);
    let second = checkpoint("\"p2\"");
    let more = [upsert("a", 2, r#"{"v":2}"#), upsert("b", 1, "{}")];
    assert!(store.commit_page(&page(run, &second, &more)).is_err());
    assert_eq!(store.checkpoint(&FLOW, "s").unwrap(), Some(first));
    assert_eq!(store.scan(&CONNECTION, "s", None, 10).unwrap(), records);
    assert_eq!(store.runs(Some(&FLOW), 1).unwrap()[0].pages, 1);
}

pub(crate) fn an_older_version_never_replaces_a_newer_one(store: &impl Backend) {
    // A webhook's v3, then a poll's v2.
    assert_eq!(webhook(store, &[upsert("k1", 3, "3")]).applied.len(), 1);
    let late = poll(store, &[upsert("k1", 2, "2")]);
    assert_eq!((late.changed, late.unchanged), (0, 1));
    assert_eq!(stored(store, "k1"), Some(upsert("k1", 3, "3")));

    // A poll's v2, then a webhook's late v1.
    poll(store, &[upsert("k2", 2, "2")]);
    let outcome = webhook(store, &[upsert("k2", 1, "1")]);
    assert_eq!((outcome.applied.len(), outcome.stale), (0, 1));
    assert_eq!(stored(store, "k2"), Some(upsert("k2", 2, "2")));

    // A delete at v5, then updates at v4 by either path.
    webhook(store, &[delete("k3", 5)]);
    webhook(store, &[upsert("k3", 4, "4")]);
    poll(store, &[upsert("k3", 4, "4")]);
    assert_eq!(
        stored(store, "k3"),
        Some(delete("k3", 5)),
        "a late update cannot resurrect it"
    );
    assert_eq!(store.count(&CONNECTION, "s").unwrap(), 2);
}

pub(crate) fn the_same_version_with_other_content_is_a_counted_conflict(store: &impl Backend) {
    webhook(store, &[upsert("k", 7, r#"{"a":1,"b":2}"#)]);
    let same = webhook(store, &[upsert("k", 7, r#"{"b":2, "a":1}"#)]);
    assert_eq!(
        (same.conflicts, same.stale),
        (0, 1),
        "equal JSON is no conflict"
    );
    let other = webhook(store, &[upsert("k", 7, r#"{"a":9}"#)]);
    assert_eq!((other.conflicts, other.applied.len()), (1, 1));
    assert_eq!(
        stored(store, "k").unwrap().data,
        r#"{"a":9}"#,
        "the copy read last"
    );

    let again = poll(store, &[upsert("k", 7, r#"{"a":9}"#)]);
    assert_eq!(
        (again.changed, again.conflicts),
        (0, 0),
        "a page read again"
    );
    let edited = poll(store, &[upsert("k", 7, r#"{"a":10}"#)]);
    assert_eq!((edited.changed, edited.conflicts), (1, 1));
    assert_eq!(stored(store, "k").unwrap().data, r#"{"a":10}"#);
    let run = &store.runs(Some(&FLOW), 1).unwrap()[0];
    assert_eq!((run.records_written, run.conflicts), (1, 1));
    let coverage = store
        .coverage(&CONNECTION, "s", 0, 0, store.clock().now_ms())
        .unwrap();
    assert_eq!(coverage.conflicts, 2, "both are kept for operators");
}

pub(crate) fn a_read_from_scratch_deletes_what_it_did_not_see_and_only_that(store: &impl Backend) {
    let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|k| upsert(k, 1, "{}"));
    let track = |begins: bool, last_page| Shape {
        sweep: Sweep::Track {
            // After what was stored before the read, by the clock.
            began_at_ms: begins.then(|| {
                store.clock().advance(Duration::from_millis(2));
                store.clock().now_ms()
            }),
            last_page,
        },
        ..Shape::default()
    };
    commit(
        store,
        &[a.clone(), b.clone(), c.clone(), d],
        Shape::default(),
    );

    // Two pages; the second in another run, as after a restart.
    let first = commit(store, std::slice::from_ref(&a), track(true, false));
    assert_eq!(first.swept, 0, "not before the last page");
    // A webhook stores `e` while the read runs: newer than the read.
    webhook(store, &[e]);
    let unseen = |began| -> Vec<String> {
        store
            .unseen(&FLOW, &CONNECTION, "s", began)
            .unwrap()
            .into_iter()
            .inspect(|r| assert_eq!((r.kind, r.version), (ChangeKind::Delete, None)))
            .map(|r| r.key)
            .collect()
    };
    assert_eq!(unseen(None), ["b", "c", "d"], "what a partner must hear of");
    let last = commit(store, std::slice::from_ref(&c), track(false, true));
    assert_eq!(last.swept, 2);
    assert_eq!(last.changed, 2, "the run's written count includes deletes");
    assert_eq!(live_keys(store), ["a", "c", "e"]);
    let swept: Vec<_> = store
        .records_by_key(&CONNECTION, "s", &["b", "d"])
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.version))
        .collect();
    assert_eq!(
        swept,
        [(ChangeKind::Delete, None); 2],
        "whatever comes next wins"
    );

    assert!(unseen(None).is_empty(), "no read from scratch under way");
    assert_eq!(
        unseen(Some(store.clock().now_ms() + 1)),
        ["a", "c", "e"],
        "one starting now"
    );
    // The sweep is over: an incremental read deletes nothing.
    assert_eq!(commit(store, &[], track(false, true)).swept, 0);
    // A swept record the partner lists again is live again.
    commit(store, &[b], Shape::default());
    assert_eq!(live_keys(store), ["a", "b", "c", "e"]);
}

pub(crate) fn a_sweep_deletes_the_flows_reshaped_copies_too(store: &impl Backend) {
    let [a, b] = ["a", "b"].map(|k| upsert(k, 1, "{}"));
    let mapped = Shape {
        mapped: true,
        ..Shape::default()
    };
    commit(store, &[a.clone(), b], mapped);
    store.clock().advance(Duration::from_millis(2));
    let sweep = Shape {
        sweep: Sweep::Track {
            began_at_ms: Some(store.clock().now_ms()),
            last_page: true,
        },
        ..mapped
    };
    assert_eq!(commit(store, std::slice::from_ref(&a), sweep).swept, 1);
    assert_eq!(live_keys(store), ["a"]);
    let reshaped = store.mapped(&FLOW, None, 10).unwrap();
    assert_eq!(reshaped[0], a);
    assert_eq!(
        (reshaped[1].kind, reshaped[1].version),
        (ChangeKind::Delete, None)
    );
}

pub(crate) fn checkpoints_are_replaced_listed_and_reset(store: &impl Backend) {
    let other = FlowId::new("g").unwrap();
    for (flow, stream, state) in [
        (&*FLOW, "t", "1"),
        (&FLOW, "s", "2"),
        (&FLOW, "s", "3"),
        (&other, "s", "4"),
    ] {
        store
            .replace_checkpoint(flow, stream, &checkpoint(state))
            .unwrap();
    }
    let mut listed: Vec<_> = store
        .checkpoints(&FLOW)
        .unwrap()
        .into_iter()
        .map(|c| (c.flow, c.stream, c.checkpoint.state, c.run))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("f".into(), "s".into(), "3".into(), None),
            ("f".into(), "t".into(), "1".into(), None)
        ]
    );
    assert_eq!(store.reset(&FLOW).unwrap(), 2);
    assert_eq!(store.checkpoint(&FLOW, "s").unwrap(), None);
    assert!(store.checkpoints(&FLOW).unwrap().is_empty());
    assert_eq!(
        store.checkpoint(&other, "s").unwrap(),
        Some(checkpoint("4"))
    );
}

pub(crate) fn records_are_read_in_key_order_deleted_ones_included(store: &impl Backend) {
    let records = [
        upsert("c", 1, "{}"),
        upsert("a", 1, "{}"),
        delete("b", 2),
        upsert("d", 1, "{}"),
    ];
    commit(store, &records, Shape::default());
    let first = store.scan(&CONNECTION, "s", None, 2).unwrap();
    assert_eq!(first, [records[1].clone(), records[2].clone()]);
    let rest = store.scan(&CONNECTION, "s", Some("b"), 10).unwrap();
    assert_eq!(keys(&rest), ["c", "d"]);
    assert_eq!(
        store.count(&CONNECTION, "s").unwrap(),
        3,
        "deletes left out"
    );
    assert!(
        store
            .scan(&CONNECTION, "other", None, 10)
            .unwrap()
            .is_empty()
    );

    let mut found = store
        .records_by_key(&CONNECTION, "s", &["d", "b", "nope"])
        .unwrap();
    found.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(found, [records[2].clone(), records[3].clone()]);
}

pub(crate) fn runs_are_listed_newest_first_with_how_they_ended(store: &impl Backend) {
    let flow = |name: &str| FlowId::new(name).unwrap();
    let (a, b, other) = (flow("t1.a"), flow("t1.b"), flow("t2.a"));
    let first = store.start_run(&a, "x 1.0.0", true).unwrap();
    let failed = store.start_run(&b, "x 1.0.0", false).unwrap();
    let paused = store.start_run(&other, "x 1.0.0", false).unwrap();
    let interrupted = store.start_run(&other, "x 1.0.0", false).unwrap();
    let running = store.start_run(&a, "x 1.1.0", false).unwrap();
    let end = |run, status, error: Option<(&str, &str)>| {
        let error = error.map(|(code, message)| (code.to_string(), message.to_string()));
        store.finish_run(run, &RunEnd { status, error }).unwrap();
    };
    end(first, RunStatus::Succeeded, None);
    end(
        failed,
        RunStatus::Failed,
        Some(("connector-auth", "bad key")),
    );
    end(paused, RunStatus::Paused, None);
    end(interrupted, RunStatus::Interrupted, None);

    let ids =
        |runs: Vec<crate::store::RunRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.runs(None, 10).unwrap()),
        [running, interrupted, paused, failed, first]
    );
    assert_eq!(ids(store.runs(None, 2).unwrap()), [running, interrupted]);
    assert_eq!(ids(store.runs(Some(&a), 10).unwrap()), [running, first]);
    let tenant = TenantId::new("t1").unwrap();
    assert_eq!(
        ids(store.tenant_runs(&tenant, 10).unwrap()),
        [running, failed, first]
    );
    let last: Vec<_> = store
        .last_runs()
        .unwrap()
        .into_iter()
        .map(|r| (r.flow, r.id))
        .collect();
    assert_eq!(
        last,
        [
            ("t1.a".into(), running),
            ("t1.b".into(), failed),
            ("t2.a".into(), interrupted)
        ]
    );

    let runs = store.runs(None, 10).unwrap();
    let run = |id| runs.iter().find(|r| r.id == id).unwrap();
    let statuses: Vec<_> = [running, interrupted, paused, failed, first]
        .map(|id| run(id).status)
        .into();
    assert_eq!(
        statuses,
        [
            RunStatus::Running,
            RunStatus::Interrupted,
            RunStatus::Paused,
            RunStatus::Failed,
            RunStatus::Succeeded
        ]
    );
    assert_eq!(run(running).finished_at_ms, None);
    assert!(run(first).finished_at_ms >= Some(run(first).started_at_ms));
    assert!(run(first).full_refresh && !run(running).full_refresh);
    assert_eq!(run(running).plugin, "x 1.1.0");
    assert_eq!(
        (
            run(failed).error_code.as_deref(),
            run(failed).error.as_deref()
        ),
        (Some("connector-auth"), Some("bad key"))
    );
    assert_eq!(
        (run(first).error_code.as_deref(), run(first).pages),
        (None, 0)
    );
}

pub(crate) fn tenants_are_created_read_updated_deleted_and_listed_by_name(store: &impl Backend) {
    let id = |name: &str| TenantId::new(name).unwrap();
    assert!(store.tenants().unwrap().is_empty());
    let mut generation = store.tenants_generation().unwrap();
    let mut changed = || {
        let now = store.tenants_generation().unwrap();
        let moved = now != generation;
        generation = now;
        moved
    };
    store.save_tenant(&Tenant::new(id("beta"))).unwrap();
    store.save_tenant(&Tenant::new(id("acme"))).unwrap();
    assert!(changed());
    let names: Vec<_> = store
        .tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(names, ["acme", "beta"]);

    let mut acme = Tenant::new(id("acme"));
    acme.name = "Acme Corp".into();
    acme.pins
        .insert(ConnectorName::new("acme-crm").unwrap(), "1.0.0".into());
    store.save_tenant(&acme).unwrap();
    assert!(changed());
    assert_eq!(store.tenant(&id("acme")).unwrap(), Some(acme));
    assert_eq!(store.tenant(&id("nobody")).unwrap(), None);

    let state = |flow: &str, tenant: &str| FlowState {
        flow: flow.into(),
        tenant: tenant.into(),
        template: "contacts".into(),
        enabled: true,
        schedule: Some("every 15m".into()),
        next_run_at_ms: Some(1_000),
        failures: 2,
        healthy: false,
        last_error: Some("bad key".into()),
    };
    let states = [
        state("beta.contacts", "beta"),
        state("acme.contacts", "acme"),
    ];
    store.save_flow_states(&states).unwrap();
    assert_eq!(
        store.flow_states().unwrap(),
        [states[1].clone(), states[0].clone()]
    );

    assert!(store.delete_tenant(&id("acme")).unwrap());
    assert!(changed());
    assert!(!store.delete_tenant(&id("acme")).unwrap());
    assert_eq!(store.tenant(&id("acme")).unwrap(), None);
    assert_eq!(store.tenants().unwrap().len(), 1);
    assert_eq!(
        store.flow_states().unwrap(),
        [states[0].clone()],
        "its flows go with it"
    );
    store.save_flow_states(&[]).unwrap();
    assert!(
        store.flow_states().unwrap().is_empty(),
        "replaced, not merged"
    );
}

pub(crate) fn dead_letters_are_kept_oldest_first_and_redelivery_settles_them(store: &impl Backend) {
    let dead = |key: &str, failure| DeadLetter {
        source_key: key.into(),
        version: Some(3),
        data: format!(r#"{{"id":"{key}"}}"#),
        failure,
    };
    let failed = [
        dead("a", DeliveryFailure::Mapping("no `email`".into())),
        dead(
            "b",
            DeliveryFailure::Destination(ConnectorError::Permanent("refused".into())),
        ),
    ];
    let run = store.start_run(&FLOW, "x 1.0.0", false).unwrap();
    let checkpoint = checkpoint("{}");
    let records = [upsert("a", 3, "{}"), upsert("b", 3, "{}")];
    store
        .commit_page(&PageCommit {
            dead_letters: &failed,
            ..page(run, &checkpoint, &records)
        })
        .unwrap();
    let stored = store.dead_letters(&FLOW, 10).unwrap();
    let seen: Vec<_> = stored
        .iter()
        .map(|d| (d.source_key.as_str(), d.stage.as_str(), d.error.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", "mapping", "no `email`"),
            ("b", "destination", failed[1].failure.reason().as_str())
        ]
    );
    assert_eq!((stored[0].run, stored[0].version), (run, Some(3)));
    assert_eq!(
        (stored[0].flow.as_str(), stored[0].data.as_str()),
        ("f", r#"{"id":"a"}"#)
    );
    assert_eq!(store.dead_letters(&FLOW, 1).unwrap().len(), 1);
    let other = FlowId::new("g").unwrap();
    assert!(store.dead_letters(&other, 10).unwrap().is_empty());

    // `a` goes through now; `b` fails again, for another reason.
    let retry = store.start_run(&FLOW, "x 1.0.0", false).unwrap();
    let again = [dead("b", DeliveryFailure::Mapping("no `name`".into()))];
    let mapped = [upsert("a", 3, r#"{"email":"a@x"}"#)];
    let resolved = [stored[0].id, stored[1].id];
    store
        .redeliver(&FLOW, retry, &mapped, &[], &again, &resolved)
        .unwrap();
    let left = store.dead_letters(&FLOW, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].source_key.as_str(), left[0].error.as_str()),
        ("b", "no `name`")
    );
    assert_eq!(left[0].run, retry);
    assert_eq!(store.mapped(&FLOW, None, 10).unwrap(), mapped);
    let run = &store.runs(Some(&FLOW), 1).unwrap()[0];
    assert_eq!((run.records_written, run.records_failed), (1, 1));
}

pub(crate) fn id_links_are_kept_per_flow_and_replaced(store: &impl Backend) {
    let link = |key: &str, external: &str, version| IdLink {
        source_key: key.into(),
        external_id: external.into(),
        version,
        idempotency_key: format!("{key}-{external}"),
    };
    let run = store.start_run(&FLOW, "x 1.0.0", false).unwrap();
    let checkpoint = checkpoint("{}");
    let records = [upsert("a", 1, "{}"), upsert("b", 1, "{}")];
    let links = [link("a", "ext-1", Some(1)), link("b", "ext-2", None)];
    store
        .commit_page(&PageCommit {
            delivered: Delivered::Written(&links),
            ..page(run, &checkpoint, &records)
        })
        .unwrap();
    let mut found = store.links(&FLOW, &["b", "a", "nope"]).unwrap();
    found.sort_by(|x, y| x.source_key.cmp(&y.source_key));
    assert_eq!(found, links);
    let other = FlowId::new("g").unwrap();
    assert!(store.links(&other, &["a"]).unwrap().is_empty());

    let moved = [link("a", "ext-9", Some(2))];
    store.redeliver(&FLOW, run, &[], &moved, &[], &[]).unwrap();
    assert_eq!(store.links(&FLOW, &["a"]).unwrap(), moved);
}

pub(crate) fn approved_versions_are_kept_newest_first_and_rollbacks_recorded(store: &impl Backend) {
    let version = |hash: &str, at: i64| ApprovedVersion {
        name: "acme-crm".into(),
        version: format!("1.0.{hash}"),
        content_hash: hash.into(),
        hosts: vec!["https://api.acme.example".into()],
        approved_at_ms: at,
    };
    for (i, hash) in ["a", "b", "c"].iter().enumerate() {
        store
            .approve_version(&version(hash, i as i64), hash.as_bytes(), 2)
            .unwrap();
    }
    let hashes = || -> Vec<String> {
        store
            .approved_versions("acme-crm")
            .unwrap()
            .into_iter()
            .map(|v| v.content_hash)
            .collect()
    };
    assert_eq!(hashes(), ["c", "b"], "the oldest is forgotten");
    assert_eq!(store.approved_wasm("a").unwrap(), None);
    // Approving a kept version again moves it first; its wasm stays.
    store.approve_version(&version("b", 9), b"", 2).unwrap();
    assert_eq!(hashes(), ["b", "c"]);
    assert_eq!(
        store.approved_wasm("b").unwrap().as_deref(),
        Some(&b"b"[..])
    );
    assert_eq!(
        store.approved_versions("acme-crm").unwrap()[0],
        version("b", 9)
    );
    assert!(store.approved_versions("other").unwrap().is_empty());

    let rollback = PluginRollback {
        file_hash: "b".into(),
        serving: "c".into(),
    };
    assert_eq!(store.rollback("acme-crm").unwrap(), None);
    store.set_rollback("acme-crm", Some(&rollback)).unwrap();
    assert_eq!(store.rollback("acme-crm").unwrap(), Some(rollback));
    store.set_rollback("acme-crm", None).unwrap();
    assert_eq!(store.rollback("acme-crm").unwrap(), None);
}

pub(crate) fn coverage_counts_changes_only_polls_found_after_the_grace_period(
    store: &impl Backend,
) {
    webhook(store, &[upsert("a", 2, "{}")]);
    poll(store, &[upsert("a", 2, "{}"), upsert("b", 2, "{}")]);
    let now = store.clock().now_ms() + 10_000;
    let coverage = store.coverage(&CONNECTION, "s", 0, 1_000, now).unwrap();
    assert_eq!(
        (coverage.changes, coverage.poll_only, coverage.by_webhook),
        (2, 1, 1)
    );
    assert_eq!(coverage.coverage, Some(0.5));
    assert!(coverage.last_webhook_at_ms.is_some() && coverage.last_poll_change_at_ms.is_some());
    // A webhook arriving within the grace period after the poll is no miss.
    webhook(store, &[upsert("b", 2, "{}")]);
    let coverage = store.coverage(&CONNECTION, "s", 0, 5_000, now).unwrap();
    assert_eq!((coverage.changes, coverage.poll_only), (2, 0));
    let other = store.coverage(&CONNECTION, "t", 0, 0, now).unwrap();
    assert_eq!((other.changes, other.coverage), (0, None));
}

pub(crate) fn changes_are_forgotten_by_age_and_coverage_with_them(store: &impl Backend) {
    webhook(store, &[upsert("a", 1, "{}")]);
    poll(store, &[upsert("a", 1, "{}"), upsert("b", 1, "{}")]);
    let cut = store.clock().now_ms() + 1;
    store.clock().advance(Duration::from_secs(60));
    webhook(store, &[upsert("c", 1, "{}")]);
    let later = store.clock().now_ms() + 10_000;
    let before = store.coverage(&CONNECTION, "s", 0, 0, later).unwrap();
    assert_eq!((before.changes, before.poll_only), (3, 1));

    assert_eq!(
        store.forget_changes(cut).unwrap(),
        3,
        "a webhook and two polls"
    );
    let after = store.coverage(&CONNECTION, "s", 0, 0, later).unwrap();
    assert_eq!(
        (after.changes, after.poll_only, after.by_webhook),
        (1, 0, 1)
    );
    assert_eq!(
        store.forget_changes(cut).unwrap(),
        0,
        "nothing older is left"
    );
    assert_eq!(live_keys(store), ["a", "b", "c"], "records stay");
}

pub(crate) fn endpoints_and_handshakes_are_kept_per_tenant_connection(store: &impl Backend) {
    let acme = TenantId::new("acme").unwrap();
    let token = store.endpoint_token(&acme, "crm").unwrap();
    assert_eq!(
        store.endpoint_token(&acme, "crm").unwrap(),
        token,
        "created once"
    );
    let other = store.endpoint_token(&acme, "billing").unwrap();
    assert_ne!(other, token);
    let mut endpoints = store.endpoints().unwrap();
    endpoints.sort();
    let mut expected = [
        (token, "acme".to_string(), "crm".to_string()),
        (other, "acme".into(), "billing".into()),
    ];
    expected.sort();
    assert_eq!(endpoints, expected);

    let handshake = |at_ms| Handshake {
        tenant: acme.clone(),
        connection: "crm".into(),
        method: "GET".into(),
        path: "/".into(),
        at_ms,
    };
    store.record_handshake(&handshake(1_000)).unwrap();
    store.record_handshake(&handshake(2_000)).unwrap();
    assert_eq!(store.handshakes(&acme, "crm", 0).unwrap(), (2, Some(2_000)));
    assert_eq!(
        store.handshakes(&acme, "crm", 1_500).unwrap(),
        (1, Some(2_000))
    );
    assert_eq!(store.handshakes(&acme, "billing", 0).unwrap(), (0, None));
}

pub(crate) fn audit_entries_and_budgets_are_kept(store: &impl Backend) {
    let entry = |at_ms, connection: &str| AuditEntry {
        at_ms,
        connection: connection.into(),
        method: "GET".into(),
        origin: "https://api.acme.example".into(),
        path: "/v1/contacts".into(),
        status: Some(200),
        outcome: "ok".into(),
        bytes_sent: 0,
        bytes_received: 512,
        duration_ms: 40,
        attempt: 1,
        budget: BudgetLeft {
            tokens: Some(4.0),
            today: None,
        },
    };
    let entries = [entry(1, "c"), entry(2, "d"), entry(3, "c")];
    store.append_audit(&entries).unwrap();
    let c = |n| store.audit(Some(&CONNECTION), n).unwrap();
    assert_eq!(c(10), [entries[2].clone(), entries[0].clone()]);
    assert_eq!(c(1), [entries[2].clone()]);
    assert_eq!(store.audit(None, 10).unwrap().len(), 3);

    let state = |tokens| BudgetState {
        tokens,
        at_ms: 1_000,
        day: 20_000,
        used_today: 7,
        blocked_until_ms: 0,
        rate_factor: 1.0,
    };
    assert_eq!(store.load_budget(&CONNECTION).unwrap(), None);
    store
        .save_budgets(&[(CONNECTION.clone(), state(3.0))])
        .unwrap();
    store
        .save_budgets(&[(CONNECTION.clone(), state(2.5))])
        .unwrap();
    assert_eq!(store.load_budget(&CONNECTION).unwrap(), Some(state(2.5)));
}
