use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rusqlite::Connection;

use super::*;

/// Some time in 2023: tests with a manual clock start here.
const T0: i64 = 1_700_000_000_000;
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn delivery(key: &str) -> NewDelivery {
    NewDelivery {
        tenant: TenantId::new("acme").unwrap(),
        connection: ConnectionId::new("crm").unwrap(),
        key: DeliveryKey::new(key).unwrap(),
        method: "POST".into(),
        path: "/hooks/acme/crm".into(),
        query: Some("v=2".into()),
        headers: [
            ("content-type", &b"application/json"[..]),
            ("x-webhook-id", key.as_bytes()),
        ]
        .into_iter()
        .map(|(name, value)| (name, Bytes::copy_from_slice(value)))
        .collect(),
        body: Bytes::from(format!(r#"{{"event":"contact.updated","id":"{key}"}}"#)),
    }
}

struct TestInbox {
    _dir: tempfile::TempDir,
    path: PathBuf,
    inbox: Inbox,
}

fn open(options: InboxOptions) -> TestInbox {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = Inbox::open(&path, options).unwrap();
    TestInbox {
        _dir: dir,
        path,
        inbox,
    }
}

/// The daemon's options, but a commit deadline no loaded machine misses:
/// tests that are not about the deadline must not fail on a slow `fsync`.
fn patient() -> InboxOptions {
    InboxOptions {
        commit_deadline: Duration::from_secs(120),
        ..InboxOptions::default()
    }
}

fn manual() -> (Clock, InboxOptions) {
    let clock = Clock::manual(T0);
    let options = InboxOptions {
        clock: clock.clone(),
        ..patient()
    };
    (clock, options)
}

fn rows(path: &Path) -> Vec<(i64, String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, delivery_key, state FROM deliveries ORDER BY id")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Another process's write transaction: the writer cannot begin one until
/// it ends.
fn hold_write_lock(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

/// Waits for a condition, failing after a deadline (no sleeping as
/// synchronisation).
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_are_answered_after_group_commits() {
    let t = open(patient());
    let answers = futures_util::future::join_all(
        (0..200).map(|i| tokio::spawn(t.inbox.submit(delivery(&format!("d{i}"))))),
    )
    .await;
    let ids: HashSet<DeliveryId> = answers
        .into_iter()
        .map(|answer| match answer.unwrap() {
            Ok(Ack::Stored { id }) => id,
            other => panic!("expected stored, got {other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 200);
    let stored = rows(&t.path);
    assert_eq!(stored.len(), 200);
    assert!(stored.iter().all(|(_, _, state)| state == "pending"));
    let metrics = t.inbox.snapshot();
    assert_eq!(metrics.accepted, 200);
    assert_eq!(metrics.depth, 200);
    assert!(
        metrics.batches.commits < 200 && metrics.batches.max > 1,
        "no batching: {:?}",
        metrics.batches
    );
    assert_eq!(metrics.ack_latency.count, 200);
}

#[tokio::test]
async fn a_duplicate_is_acknowledged_with_the_original_id() {
    let t = open(patient());
    let Ok(Ack::Stored { id }) = t.inbox.submit(delivery("evt-1")).await else {
        panic!("not stored")
    };
    let mut retry = delivery("evt-1");
    retry.body = Bytes::from_static(b"a different body, same delivery");
    assert_eq!(
        t.inbox.submit(retry).await,
        Ok(Ack::Duplicate { id }),
        "a retry is the same delivery"
    );
    let mut other_connection = delivery("evt-1");
    other_connection.connection = ConnectionId::new("billing").unwrap();
    let other = t.inbox.submit(other_connection).await.unwrap();
    assert!(!other.is_duplicate() && other.id() != id);
    assert_eq!(rows(&t.path).len(), 2);
    let metrics = t.inbox.snapshot();
    assert_eq!((metrics.accepted, metrics.duplicates), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_submissions_store_one_row() {
    let t = open(patient());
    let answers = futures_util::future::join_all(
        (0..50).map(|_| tokio::spawn(t.inbox.submit(delivery("same")))),
    )
    .await;
    let acks: Vec<Ack> = answers.into_iter().map(|a| a.unwrap().unwrap()).collect();
    let stored = acks.iter().filter(|ack| !ack.is_duplicate()).count();
    assert_eq!(stored, 1, "{acks:?}");
    assert!(acks.iter().all(|ack| ack.id() == acks[0].id()));
    assert_eq!(rows(&t.path).len(), 1);
}

#[tokio::test]
async fn payloads_are_kept_byte_for_byte() {
    let t = open(patient());
    let mut sent = delivery("binary");
    sent.body = Bytes::from_static(b"\xff\xfe\x00not utf-8\x80");
    sent.headers
        .push("x-signature", Bytes::from_static(b"\xc3\x28 raw"));
    sent.headers
        .push("x-signature", Bytes::from_static(b"second"));
    sent.query = None;
    t.inbox.submit(sent.clone()).await.unwrap();
    let claimed = t.inbox.claim(10, Duration::from_secs(30)).await.unwrap();
    let [got] = &claimed[..] else {
        panic!("{claimed:?}")
    };
    assert_eq!(got.body, sent.body);
    assert_eq!(got.headers, sent.headers);
    assert_eq!(got.headers.get("X-Signature"), Some(&b"\xc3\x28 raw"[..]));
    assert_eq!(
        (&got.method, &got.path, &got.query, &got.key),
        (&sent.method, &sent.path, &sent.query, &sent.key)
    );
    assert_eq!(
        (got.tenant.as_str(), got.connection.as_str()),
        ("acme", "crm")
    );
}

#[test]
fn headers_survive_encoding() {
    let mut headers = Headers::new();
    headers.push("a", Bytes::new());
    headers.push("ünïcode-name", Bytes::from_static(b"\x00\xff"));
    headers.push("a", Bytes::from(vec![7; 70_000]));
    assert_eq!(Headers::decode(&headers.encode()), Some(headers));
    assert_eq!(
        Headers::decode(&Headers::new().encode()),
        Some(Headers::new())
    );
    assert_eq!(Headers::decode(b"\x01\x00\x05ab"), None, "truncated");
    assert_eq!(Headers::decode(b""), None);
}

/// Set in the child process of `acked_deliveries_survive_sigkill`.
const CHILD_DB: &str = "WEIR_INBOX_TEST_CHILD_DB";
const CHILD_ROUND: &str = "WEIR_INBOX_TEST_CHILD_ROUND";

/// Not a test by itself: the child process of
/// `acked_deliveries_survive_sigkill`, which re-runs this test binary with
/// `CHILD_DB` set. It submits deliveries from 16 senders and prints each
/// key on stdout as soon as it is acknowledged, until it is killed (or 60 s
/// have passed).
#[test]
fn child_acks_deliveries_until_killed() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let round = std::env::var(CHILD_ROUND).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let inbox = Inbox::open(Path::new(&path), InboxOptions::default()).unwrap();
        let stop = Instant::now() + Duration::from_secs(60);
        let senders = (0..16).map(|sender| {
            let inbox = inbox.clone();
            let round = round.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    if Instant::now() > stop {
                        return;
                    }
                    let key = format!("r{round}-s{sender}-{i}");
                    if inbox.submit(delivery(&key)).await.is_ok() {
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "acked {key}").unwrap();
                        out.flush().unwrap();
                    }
                }
            })
        });
        futures_util::future::join_all(senders).await;
    });
}

#[test]
fn acked_deliveries_survive_sigkill() {
    const ACKS_BEFORE_KILL: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let mut acked = Vec::new();
    // Two rounds: the second reopens the inbox the first was killed on.
    for round in 0..2 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "inbox::tests::child_acks_deliveries_until_killed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &path)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(key) = line.strip_prefix("acked ")
                    && lines.send(key.to_string()).is_err()
                {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut this_round = 0;
        while this_round < ACKS_BEFORE_KILL {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(key) => {
                    acked.push(key);
                    this_round += 1;
                }
                Err(error) => {
                    let _ = child.kill();
                    panic!("round {round}: {this_round} acks, then {error:?}");
                }
            }
        }
        // SIGKILL: no destructor, no flush, no orderly close of SQLite.
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        // Acks printed before the kill, still in the pipe.
        acked.extend(received.try_iter());
    }
    let stored: HashSet<String> = rows(&path).into_iter().map(|(_, key, _)| key).collect();
    let lost: Vec<&String> = acked.iter().filter(|key| !stored.contains(*key)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged deliveries are not stored, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(acked.len() >= 2 * ACKS_BEFORE_KILL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_refuses_with_storage_and_acknowledges_nothing() {
    let t = open(InboxOptions {
        busy_timeout: Duration::from_millis(100),
        ..patient()
    });
    let lock = hold_write_lock(&t.path);
    let refused = t.inbox.submit(delivery("locked")).await;
    match &refused {
        Err(Refusal::Storage(message)) => assert!(message.contains("locked"), "{message}"),
        other => panic!("expected a storage refusal, got {other:?}"),
    }
    assert!(rows(&t.path).is_empty());
    drop(lock);
    // Nothing of the failed batch was kept: the retry is stored, not a
    // duplicate.
    assert!(matches!(
        t.inbox.submit(delivery("locked")).await,
        Ok(Ack::Stored { .. })
    ));
    assert_eq!(t.inbox.snapshot().refused.storage, 1);
}

#[tokio::test]
async fn a_full_disk_refuses_with_storage() {
    let t = open(InboxOptions {
        max_size: Some(256 * 1024),
        ..patient()
    });
    let mut acked = Vec::new();
    let refused = loop {
        let key = format!("big-{}", acked.len());
        let mut big = delivery(&key);
        big.body = Bytes::from(vec![b'x'; 16 * 1024]);
        match t.inbox.submit(big).await {
            Ok(_) => acked.push(key),
            Err(refusal) => break (key, refusal),
        }
        assert!(acked.len() < 100, "the size cap is not enforced");
    };
    match &refused.1 {
        Refusal::Storage(message) => assert!(message.contains("full"), "{message}"),
        other => panic!("expected a storage refusal, got {other:?}"),
    }
    let stored: Vec<String> = rows(&t.path).into_iter().map(|(_, key, _)| key).collect();
    assert_eq!(
        stored, acked,
        "exactly the acknowledged deliveries are stored"
    );
    // Small deliveries that still fit are taken again at once.
    let mut small = delivery("small");
    small.body = Bytes::from_static(b"{}");
    small.headers = Headers::new();
    assert!(t.inbox.submit(small).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once() {
    let t = open(InboxOptions {
        queue_capacity: 2,
        busy_timeout: Duration::from_secs(30),
        commit_deadline: Duration::from_secs(30),
        ..patient()
    });
    let lock = hold_write_lock(&t.path);
    let first = t.inbox.submit(delivery("first"));
    // The writer took it and waits for the lock.
    let queue = Arc::clone(&t.inbox.inner.queue);
    tokio::task::spawn_blocking(move || wait_until("the writer is stuck", || queue.queued() == 0))
        .await
        .unwrap();
    let queued = [
        t.inbox.submit(delivery("second")),
        t.inbox.submit(delivery("third")),
    ];
    // Answered on the first poll: the refusal did not wait for anything.
    assert_eq!(
        t.inbox.submit(delivery("fourth")).now_or_never(),
        Some(Err(Refusal::QueueFull)),
    );
    drop(lock);
    assert!(first.await.is_ok());
    for answer in queued {
        assert!(answer.await.is_ok());
    }
    let keys: Vec<String> = rows(&t.path).into_iter().map(|(_, key, _)| key).collect();
    assert_eq!(keys, ["first", "second", "third"]);
    assert_eq!(t.inbox.snapshot().refused.queue_full, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_commit_in_time_refuses_with_deadline() {
    let t = open(InboxOptions {
        busy_timeout: Duration::from_secs(30),
        commit_deadline: Duration::from_millis(200),
        ..patient()
    });
    let lock = hold_write_lock(&t.path);
    assert_eq!(
        t.inbox.submit(delivery("slow")).await,
        Err(Refusal::Deadline)
    );
    // A deadline refusal, not a storage one: the answer did not wait for
    // the writer, stuck on the lock for its 30 s busy timeout.
    drop(lock);
    // The partner's retry is acknowledged, whether the first attempt was
    // stored late or dropped because nobody waited for it any more.
    assert!(t.inbox.submit(delivery("slow")).await.is_ok());
    assert_eq!(rows(&t.path).len(), 1);
    assert_eq!(t.inbox.snapshot().refused.deadline, 1);
}

#[tokio::test]
async fn a_claimed_delivery_is_not_claimed_again_until_its_lease_expires() {
    let (clock, options) = manual();
    let t = open(options);
    for key in ["a", "b", "c"] {
        t.inbox.submit(delivery(key)).await.unwrap();
    }
    let lease = Duration::from_secs(30);
    let first = t.inbox.claim(2, lease).await.unwrap();
    let keys: Vec<&str> = first.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"], "oldest first, up to the limit");
    assert!(
        first
            .iter()
            .all(|d| d.attempt == 1 && d.lease_until_ms == T0 + 30_000)
    );
    let second = t.inbox.claim(10, lease).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].key.as_str(), "c");
    assert!(t.inbox.claim(10, lease).await.unwrap().is_empty());

    clock.advance(Duration::from_secs(29));
    assert!(t.inbox.renew(second[0].claim(), lease).await.unwrap());
    assert!(t.inbox.claim(10, lease).await.unwrap().is_empty());

    // The worker holding a and b died: their leases run out and they are
    // handed out again; c's renewed lease still holds.
    clock.advance(Duration::from_secs(2));
    let again = t.inbox.claim(10, lease).await.unwrap();
    let keys: Vec<&str> = again.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert!(again.iter().all(|d| d.attempt == 2));
    assert_eq!(t.inbox.depth(), 3);
}

#[tokio::test]
async fn a_completed_delivery_leaves_the_queue() {
    let (clock, options) = manual();
    let t = open(options);
    t.inbox.submit(delivery("a")).await.unwrap();
    let claimed = t.inbox.claim(10, Duration::from_secs(30)).await.unwrap();
    assert!(t.inbox.complete(claimed[0].claim()).await.unwrap());
    assert_eq!(t.inbox.depth(), 0);
    assert!(
        !t.inbox.complete(claimed[0].claim()).await.unwrap(),
        "already done"
    );
    clock.advance(Duration::from_secs(60));
    assert!(
        t.inbox
            .claim(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!t.inbox.renew(claimed[0].claim(), HOUR).await.unwrap());
    assert_eq!(rows(&t.path)[0].2, "done");
    // A retry of a processed delivery is still a duplicate.
    assert!(t.inbox.submit(delivery("a")).await.unwrap().is_duplicate());
}

#[tokio::test]
async fn a_failed_delivery_is_retried_later_then_given_up() {
    let (clock, mut options) = manual();
    options.max_attempts = 2;
    let t = open(options);
    t.inbox.submit(delivery("flaky")).await.unwrap();
    let lease = Duration::from_secs(30);
    let first = t.inbox.claim(1, lease).await.unwrap()[0].claim();
    let retry_after = Duration::from_secs(10);
    assert_eq!(
        t.inbox
            .fail(first, "partner said 500", retry_after)
            .await
            .unwrap(),
        FailOutcome::Retry { at_ms: T0 + 10_000 }
    );
    assert!(
        t.inbox.claim(1, lease).await.unwrap().is_empty(),
        "not yet due"
    );
    clock.advance(retry_after);
    let again = t.inbox.claim(1, lease).await.unwrap();
    assert_eq!((again[0].id, again[0].attempt), (first.id, 2));
    assert_eq!(
        t.inbox
            .fail(again[0].claim(), "partner said 500 again", retry_after)
            .await
            .unwrap(),
        FailOutcome::GaveUp
    );
    assert_eq!(
        t.inbox
            .fail(again[0].claim(), "late", retry_after)
            .await
            .unwrap(),
        FailOutcome::NotClaimed
    );
    clock.advance(DAY);
    assert!(t.inbox.claim(1, lease).await.unwrap().is_empty());
    assert_eq!(t.inbox.depth(), 0);
    let conn = Connection::open(&t.path).unwrap();
    let (state, error): (String, String) = conn
        .query_row("SELECT state, error FROM deliveries", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (state.as_str(), error.as_str()),
        ("failed", "partner said 500 again")
    );
}

#[tokio::test]
async fn leases_taken_back_by_the_inbox_owner_are_claimed_again_at_once() {
    let (_clock, options) = manual();
    let t = open(options);
    for key in ["a", "b"] {
        t.inbox.submit(delivery(key)).await.unwrap();
    }
    let lease = Duration::from_secs(60);
    let first = t.inbox.claim(1, lease).await.unwrap();
    assert_eq!(first[0].key.as_str(), "a");
    assert_eq!(t.inbox.take_back_leases().await.unwrap(), 1);
    // No time passes: the lease no longer holds, the pending one waits.
    let again = t.inbox.claim(1, lease).await.unwrap();
    assert_eq!(
        (again[0].key.as_str(), again[0].attempt),
        ("a", 2),
        "taken back before its lease ran out, counted as an attempt"
    );
    assert_eq!(t.inbox.take_back_leases().await.unwrap(), 1);
    assert!(
        !t.inbox.complete(first[0].claim()).await.unwrap(),
        "the old claim is fenced off"
    );
}

#[tokio::test]
async fn a_worker_whose_lease_ran_out_cannot_settle_the_next_claim() {
    let (clock, options) = manual();
    let t = open(options);
    t.inbox.submit(delivery("slow")).await.unwrap();
    let lease = Duration::from_secs(30);
    let stale = t.inbox.claim(1, lease).await.unwrap()[0].claim();
    clock.advance(Duration::from_secs(31));
    let current = t.inbox.claim(1, lease).await.unwrap()[0].claim();
    assert_eq!((current.id, current.attempt), (stale.id, 2));

    assert!(!t.inbox.renew(stale, lease).await.unwrap());
    assert_eq!(
        t.inbox.fail(stale, "late", lease).await.unwrap(),
        FailOutcome::NotClaimed
    );
    assert!(!t.inbox.complete(stale).await.unwrap());
    assert_eq!(rows(&t.path)[0].2, "processing", "the new claim holds");
    assert_eq!(t.inbox.depth(), 1);

    assert!(t.inbox.complete(current).await.unwrap());
    assert_eq!(rows(&t.path)[0].2, "done");
    assert_eq!(t.inbox.depth(), 0);
}

#[tokio::test]
async fn a_retried_failed_delivery_gets_fresh_attempts_and_new_claim_numbers() {
    let (clock, mut options) = manual();
    options.max_attempts = 2;
    let t = open(options);
    t.inbox.submit(delivery("doomed")).await.unwrap();
    t.inbox.submit(delivery("fine")).await.unwrap();
    let mut other = delivery("elsewhere");
    other.tenant = TenantId::new("globex").unwrap();
    t.inbox.submit(other).await.unwrap();
    let lease = Duration::from_secs(30);
    for _ in 0..2 {
        for claimed in t.inbox.claim(10, lease).await.unwrap() {
            if claimed.key.as_str() == "fine" {
                t.inbox.complete(claimed.claim()).await.unwrap();
            } else {
                t.inbox
                    .fail(claimed.claim(), "the partner is down", Duration::ZERO)
                    .await
                    .unwrap();
            }
        }
    }
    let all = FailedFilter::default();
    let failed_now = failed(&t.path, &all, 10).unwrap();
    assert_eq!(
        failed_now
            .iter()
            .map(|d| (d.key.as_str(), d.attempts, d.error.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("doomed", 2, Some("the partner is down")),
            ("elsewhere", 2, Some("the partner is down"))
        ]
    );
    assert_eq!(t.inbox.depth(), 0);

    let acme = FailedFilter {
        tenant: Some(TenantId::new("acme").unwrap()),
        ids: Vec::new(),
    };
    assert_eq!(retry_failed(&t.path, &acme).unwrap(), 1);
    assert_eq!(retry_failed(&t.path, &acme).unwrap(), 0, "only failed ones");
    assert_eq!(failed(&t.path, &all, 10).unwrap().len(), 1);
    assert_eq!(t.inbox.depth(), 0, "another process changed the file");
    t.inbox.purge().await.unwrap();
    assert_eq!(t.inbox.depth(), 1, "the upkeep recounts");

    let again = t.inbox.claim(10, lease).await.unwrap();
    assert_eq!(
        (again.len(), again[0].key.as_str(), again[0].attempt),
        (1, "doomed", 3),
        "claim numbers keep counting"
    );
    assert_eq!(
        t.inbox
            .fail(again[0].claim(), "still down", Duration::ZERO)
            .await
            .unwrap(),
        FailOutcome::Retry { at_ms: T0 },
        "a fresh set of attempts"
    );
    clock.advance(Duration::from_secs(1));
    let last = t.inbox.claim(10, lease).await.unwrap();
    assert!(t.inbox.complete(last[0].claim()).await.unwrap());
    assert_eq!(t.inbox.depth(), 0);

    let missing = t.path.with_file_name("none.db");
    assert!(failed(&missing, &all, 10).unwrap().is_empty());
    assert_eq!(retry_failed(&missing, &all).unwrap(), 0);
    assert!(!missing.exists(), "looking does not create an inbox");
}

#[tokio::test]
async fn a_lease_that_runs_out_on_the_last_attempt_gives_up() {
    let (clock, mut options) = manual();
    options.max_attempts = 1;
    let t = open(options);
    t.inbox.submit(delivery("poison")).await.unwrap();
    assert_eq!(
        t.inbox
            .claim(1, Duration::from_secs(30))
            .await
            .unwrap()
            .len(),
        1
    );
    clock.advance(Duration::from_secs(31));
    assert!(
        t.inbox
            .claim(1, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(rows(&t.path)[0].2, "failed");
    assert_eq!(t.inbox.depth(), 0);
}

#[tokio::test]
async fn purge_drops_payloads_after_a_day_and_keys_after_seven() {
    let (clock, options) = manual();
    let t = open(options);
    let Ack::Stored { id: first } = t.inbox.submit(delivery("a")).await.unwrap() else {
        panic!()
    };
    let claimed = t.inbox.claim(1, HOUR).await.unwrap();
    t.inbox.complete(claimed[0].claim()).await.unwrap();

    clock.advance(23 * HOUR);
    assert_eq!(t.inbox.purge().await.unwrap(), Purged::default());
    clock.advance(2 * HOUR);
    assert_eq!(
        t.inbox.purge().await.unwrap(),
        Purged {
            payloads: 1,
            keys: 0
        }
    );
    assert!(rows(&t.path).iter().all(|(id, _, _)| *id != first.0));
    // The payload is gone, the key is not: a late retry is a duplicate.
    assert_eq!(
        t.inbox.submit(delivery("a")).await,
        Ok(Ack::Duplicate { id: first })
    );
    // Never processed: its key must outlive seven days.
    t.inbox.submit(delivery("stuck")).await.unwrap();

    clock.advance(6 * DAY);
    assert_eq!(
        t.inbox.purge().await.unwrap(),
        Purged {
            payloads: 0,
            keys: 1
        }
    );
    let Ack::Stored { id: second } = t.inbox.submit(delivery("a")).await.unwrap() else {
        panic!("a key older than seven days is forgotten")
    };
    assert!(second > first, "ids are never reused");

    clock.advance(30 * DAY);
    assert_eq!(t.inbox.purge().await.unwrap(), Purged::default());
    assert!(
        t.inbox
            .submit(delivery("stuck"))
            .await
            .unwrap()
            .is_duplicate()
    );
}

#[tokio::test]
async fn purge_works_through_many_rows_in_chunks() {
    const DELIVERIES: usize = 4_500;
    let (clock, options) = manual();
    // Every delivery is admitted at once, however slowly the writer drains
    // the queue on this machine.
    let t = open(InboxOptions {
        queue_capacity: DELIVERIES,
        ..options
    });
    let submits: Vec<_> = (0..DELIVERIES)
        .map(|i| t.inbox.submit(delivery(&format!("k{i}"))))
        .collect();
    for answer in futures_util::future::join_all(submits).await {
        answer.unwrap();
    }
    loop {
        let claimed = t.inbox.claim(1_000, HOUR).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        for delivery in claimed {
            t.inbox.complete(delivery.claim()).await.unwrap();
        }
    }
    clock.advance(8 * DAY);
    assert_eq!(
        t.inbox.purge().await.unwrap(),
        Purged {
            payloads: DELIVERIES as u64,
            keys: DELIVERIES as u64
        }
    );
    assert!(rows(&t.path).is_empty());
}

#[tokio::test]
async fn depth_and_oldest_pending_age_follow_the_queue() {
    let (clock, options) = manual();
    let t = open(options);
    assert_eq!(t.inbox.depth(), 0);
    assert_eq!(t.inbox.oldest_pending_age().await.unwrap(), None);
    t.inbox.submit(delivery("a")).await.unwrap();
    clock.advance(Duration::from_secs(3));
    t.inbox.submit(delivery("b")).await.unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(t.inbox.depth(), 2);
    assert_eq!(
        t.inbox.oldest_pending_age().await.unwrap(),
        Some(Duration::from_secs(5))
    );
    let claimed = t.inbox.claim(1, HOUR).await.unwrap();
    assert_eq!(
        t.inbox.oldest_pending_age().await.unwrap(),
        Some(Duration::from_secs(5)),
        "processing counts until done"
    );
    t.inbox.complete(claimed[0].claim()).await.unwrap();
    assert_eq!(t.inbox.depth(), 1);
    assert_eq!(
        t.inbox.oldest_pending_age().await.unwrap(),
        Some(Duration::from_secs(2))
    );
    assert_eq!(t.inbox.snapshot().depth, 1);
}

#[tokio::test]
async fn reopening_finds_what_was_stored() {
    let t = open(patient());
    let id = t.inbox.submit(delivery("a")).await.unwrap().id();
    t.inbox.submit(delivery("b")).await.unwrap();
    t.inbox.close().await;
    let reopened = Inbox::open(&t.path, patient()).unwrap();
    assert_eq!(reopened.depth(), 2);
    assert_eq!(
        reopened.submit(delivery("a")).await,
        Ok(Ack::Duplicate { id })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_answers_everything_queued_then_refuses() {
    let t = open(patient());
    let queued: Vec<_> = (0..100)
        .map(|i| t.inbox.submit(delivery(&format!("k{i}"))))
        .collect();
    t.inbox.close().await;
    for answer in queued {
        assert!(answer.await.is_ok());
    }
    assert_eq!(rows(&t.path).len(), 100);
    assert_eq!(t.inbox.submit(delivery("late")).await, Err(Refusal::Closed));
    assert!(matches!(
        t.inbox.claim(1, HOUR).await,
        Err(InboxError::Closed { .. })
    ));
}

#[test]
fn a_newer_schema_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let Err(error) = Inbox::open(&path, patient()) else {
        panic!("opened")
    };
    assert!(matches!(error, InboxError::NewerSchema { found: 99, .. }));
    let diagnostic = error.diagnostic();
    assert_eq!(diagnostic.code, ErrorCode::StoreUnavailable);
    assert!(diagnostic.message.contains("inbox.db") && diagnostic.message.contains("99"));
    assert!(diagnostic.hint.unwrap().contains("move the file aside"));
}

#[test]
fn an_unusable_location_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let Err(error) = Inbox::open(&file.join("inbox.db"), patient()) else {
        panic!("opened")
    };
    let diagnostic = error.diagnostic();
    assert_eq!(diagnostic.code, ErrorCode::StoreUnavailable);
    assert!(
        diagnostic.message.contains("not-a-directory"),
        "{}",
        diagnostic.message
    );
    assert!(diagnostic.hint.unwrap().contains("writable"));
}

#[test]
fn delivery_keys_are_bounded() {
    assert!(DeliveryKey::new("").is_err());
    assert!(DeliveryKey::new("x".repeat(DeliveryKey::MAX_LEN)).is_ok());
    assert!(DeliveryKey::new("x".repeat(DeliveryKey::MAX_LEN + 1)).is_err());
}
