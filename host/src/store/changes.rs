//! Changes that arrive by two paths, polls and webhooks, merged by one
//! rule ([`decide`]) on the partner's record version: a newer version wins
//! whatever path brought it, an older one never does, a delete is a
//! versioned tombstone (a late update cannot bring the record back), and
//! the same version with other content is a conflict, counted and kept for
//! operators, where the copy that arrived last is stored.

use serde::Serialize;

use super::StoreError;
use crate::contract::{ChangeKind, Record};
use crate::ids::{ConnectionId, TenantId};

/// Which path brought a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// A scheduled read.
    Poll,
    /// A webhook delivery (with the record, or followed by a fetch).
    Webhook,
}

impl ChangeSource {
    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Webhook => "webhook",
        }
    }
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Records now stored: newer ones, and conflicting copies that replaced
    /// the stored one.
    pub applied: Vec<Record>,
    /// Records at or below the stored version, ignored.
    pub stale: u64,
    /// Records at the stored version with other content.
    pub conflicts: u64,
}

/// What the store holds of a record, as a merge compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCopy<'a> {
    /// The partner's version, if it had one (a sweep's tombstone has none).
    pub version: Option<u64>,
    /// Whether it is a tombstone.
    pub deleted: bool,
    /// The raw JSON.
    pub data: &'a str,
}

/// What a merge does with one incoming copy of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeDecision {
    /// Store it: the record is new, newer, or either copy is unversioned.
    Apply,
    /// Ignore it: an older version, or the stored copy again.
    Stale,
    /// The stored version with other content: the partner edited the record
    /// without bumping its version. Counted and kept either way; `replace`
    /// says whether the incoming copy is stored.
    Conflict {
        /// Whether the incoming copy replaces the stored one.
        replace: bool,
    },
}

/// The merge rule, the same for polls and webhooks.
///
/// On a conflict the copy that arrived last wins: the version cannot say
/// which copy is newer, and the latest read (a poll, or the fetch after a
/// thin webhook) is the partner's state as it is now, which is what a user
/// expects to see. A tombstone stays, though: a copy that still lists the
/// record at the version it was deleted at is a late one.
pub fn decide(stored: Option<StoredCopy<'_>>, incoming: &Record) -> MergeDecision {
    let Some(stored) = stored else {
        return MergeDecision::Apply;
    };
    let (Some(stored_version), Some(incoming_version)) = (stored.version, incoming.version) else {
        return MergeDecision::Apply;
    };
    if incoming_version != stored_version {
        return if incoming_version > stored_version {
            MergeDecision::Apply
        } else {
            MergeDecision::Stale
        };
    }
    let incoming_deleted = incoming.kind == ChangeKind::Delete;
    let same = match (stored.deleted, incoming_deleted) {
        (true, true) => true,
        (false, false) => same_json(stored.data, &incoming.data),
        _ => false,
    };
    if same {
        MergeDecision::Stale
    } else {
        MergeDecision::Conflict {
            replace: !stored.deleted,
        }
    }
}

/// Equal as JSON (key order and spacing aside).
fn same_json(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// The warning for `conflicts` records of `stream` that came with the
/// version already stored and other content: said once per run (or, for
/// webhooks, once per stream and process), since a partner that does not
/// bump its versions does so on every edit.
pub fn conflict_warning(connector: &str, stream: &str, conflicts: u64) -> String {
    format!(
        "{conflicts} record(s) of stream `{stream}` came with the version already stored but other \
         content; the copy read last is stored, both are kept in the store's `merge_conflicts`\n\
         hint: the partner's `version` does not change on every edit: have connector `{connector}` \
         take the version from `updated_at`, or declare no version"
    )
}

/// Webhook coverage of one connection's stream over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Distinct record versions seen by either path.
    pub changes: u64,
    /// Of those, seen by a poll with no webhook for that version or a newer
    /// one within the grace period.
    pub poll_only: u64,
    /// Seen by webhooks.
    pub by_webhook: u64,
    /// `1 - poll_only / changes`; none without changes.
    pub coverage: Option<f64>,
    /// When the latest webhook change was seen, ms since the Unix epoch.
    pub last_webhook_at_ms: Option<i64>,
    /// When a poll last found a change, ms since the Unix epoch.
    pub last_poll_change_at_ms: Option<i64>,
    /// Conflicts recorded in the window.
    pub conflicts: u64,
}

impl Coverage {
    /// Whether webhooks went silent: a poll found a change after the last
    /// webhook was heard (at `heard_at_ms`, or never), and none was heard
    /// for `silence_ms` (counted from `since_ms`, the window's start, when
    /// none was).
    pub fn silent(
        &self,
        heard_at_ms: Option<i64>,
        since_ms: i64,
        now_ms: i64,
        silence_ms: i64,
    ) -> bool {
        self.last_poll_change_at_ms.is_some_and(|polled| {
            polled > heard_at_ms.unwrap_or(0)
                && now_ms - heard_at_ms.unwrap_or(since_ms) > silence_ms
        })
    }

    /// Whether webhooks miss so many changes that polls must make up.
    pub fn poor(&self) -> bool {
        self.coverage.is_some_and(|c| c < POOR_COVERAGE)
    }
}

/// Coverage below which webhooks count as poor.
const POOR_COVERAGE: f64 = 0.8;

/// How far back coverage looks.
pub const COVERAGE_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How long the change log keeps what it saw: twice the coverage window,
/// so a change is decided long before it is forgotten.
pub const CHANGES_KEPT: std::time::Duration = COVERAGE_WINDOW.saturating_mul(2);

/// Changes from both paths, and the webhook endpoints they arrive at.
pub trait ChangeStore: Send + Sync {
    /// Merges records by version and notes them as seen via `source`.
    fn merge(
        &self,
        connection: &ConnectionId,
        stream: &str,
        records: &[Record],
        source: ChangeSource,
    ) -> Result<MergeOutcome, StoreError>;
    /// Coverage of `connection`'s `stream` for changes seen since `since_ms`,
    /// deciding only those seen before `now_ms - grace_ms`.
    fn coverage(
        &self,
        connection: &ConnectionId,
        stream: &str,
        since_ms: i64,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<Coverage, StoreError>;
    /// Forgets the changes seen before `before_ms`, in small commits so
    /// that merges wait little; returns how many went.
    fn forget_changes(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// The endpoint token of a tenant's connection, created on first use.
    fn endpoint_token(&self, tenant: &TenantId, connection: &str) -> Result<String, StoreError>;
    /// Every endpoint: token, tenant, connection.
    fn endpoints(&self) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Notes a handshake answered on a tenant's connection.
    fn record_handshake(&self, handshake: &Handshake) -> Result<(), StoreError>;
    /// How many handshakes a tenant's connection answered since `since_ms`,
    /// and when the latest was.
    fn handshakes(
        &self,
        tenant: &TenantId,
        connection: &str,
        since_ms: i64,
    ) -> Result<(u64, Option<i64>), StoreError>;
}

/// A webhook handshake answered (a subscription check or challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The tenant.
    pub tenant: TenantId,
    /// The connection of weir.toml.
    pub connection: String,
    /// The request's method.
    pub method: String,
    /// The request's path below the endpoint.
    pub path: String,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(version: Option<u64>, deleted: bool, data: &str) -> StoredCopy<'_> {
        StoredCopy {
            version,
            deleted,
            data,
        }
    }

    fn incoming(version: Option<u64>, kind: ChangeKind, data: &str) -> Record {
        Record {
            key: "k".into(),
            version,
            kind,
            data: data.into(),
        }
    }

    #[test]
    fn the_same_version_with_other_content_is_a_conflict_the_copy_read_last_wins() {
        let stored = copy(Some(3), false, r#"{"a":1}"#);
        assert_eq!(
            decide(
                Some(stored),
                &incoming(Some(3), ChangeKind::Upsert, r#"{"a":2}"#)
            ),
            MergeDecision::Conflict { replace: true }
        );
        assert_eq!(
            decide(Some(stored), &incoming(Some(3), ChangeKind::Delete, "{}")),
            MergeDecision::Conflict { replace: true },
            "a delete that kept the version is one too"
        );
    }

    #[test]
    fn the_same_copy_again_is_no_conflict() {
        let stored = copy(Some(3), false, r#"{"a":1,"b":2}"#);
        let again = incoming(Some(3), ChangeKind::Upsert, r#"{ "b": 2, "a": 1 }"#);
        assert_eq!(decide(Some(stored), &again), MergeDecision::Stale);
        let tombstone = copy(Some(3), true, "{}");
        let delete = incoming(Some(3), ChangeKind::Delete, r#"{"id":"k"}"#);
        assert_eq!(decide(Some(tombstone), &delete), MergeDecision::Stale);
    }

    #[test]
    fn a_tombstone_outlives_a_copy_of_its_own_version() {
        let tombstone = copy(Some(5), true, "{}");
        assert_eq!(
            decide(
                Some(tombstone),
                &incoming(Some(5), ChangeKind::Upsert, r#"{"a":1}"#)
            ),
            MergeDecision::Conflict { replace: false }
        );
    }

    #[test]
    fn newer_versions_win_older_never_and_unversioned_copies_always() {
        let stored = copy(Some(3), false, "{}");
        let at = |v| incoming(v, ChangeKind::Upsert, r#"{"a":1}"#);
        assert_eq!(decide(None, &at(Some(1))), MergeDecision::Apply);
        assert_eq!(decide(Some(stored), &at(Some(4))), MergeDecision::Apply);
        assert_eq!(decide(Some(stored), &at(Some(2))), MergeDecision::Stale);
        assert_eq!(decide(Some(stored), &at(None)), MergeDecision::Apply);
        let swept = copy(None, true, "{}");
        assert_eq!(decide(Some(swept), &at(Some(1))), MergeDecision::Apply);
    }
}
