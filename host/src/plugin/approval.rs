//! Which version of a connector serves, given the one in the plugins
//! directory and what operators decided before: a new version that declares
//! hosts the latest approved one does not waits for approval, and a
//! rollback holds until the file changes or an approval ends it. The same
//! rule runs at every load, in the daemon and in every other command, over
//! the decisions the store keeps (`store::PluginLedger`).

/// What is known of one version: its content hash and declared hosts.
pub trait Version {
    /// SHA-256 of its wasm, hex.
    fn content_hash(&self) -> &str;
    /// The hosts its spec declares (none for a transform).
    fn hosts(&self) -> &[String];
}

/// Which version serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serving {
    /// The version in the plugins directory.
    File,
    /// An approved version kept in the store, by content hash.
    Kept(String),
}

/// What the rule decided for the version in the plugins directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The version that serves new runs.
    pub serving: Serving,
    /// The file's version waits for approval, naming the hosts it asks for
    /// that the latest approved version does not.
    pub waiting: Option<Vec<String>>,
    /// The file's version is approved now (first seen, nothing new asked,
    /// or an older approved version installed again).
    pub approve_file: bool,
}

/// Judges `file` against the approved versions (the latest approved first)
/// and the rollback in force, `(file hash when rolled back, serving hash)`.
pub fn judge<V: Version>(
    file: &impl Version,
    approved: &[V],
    rollback: Option<(&str, &str)>,
) -> Judgement {
    let hash = file.content_hash();
    let known = approved.iter().any(|v| v.content_hash() == hash);
    let new_hosts: Vec<String> = match approved.first() {
        Some(latest) if !known => file
            .hosts()
            .iter()
            .filter(|h| !latest.hosts().contains(h))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let file_ok = new_hosts.is_empty();
    let rolled_back_to = rollback
        .filter(|(file_hash, serving)| {
            *file_hash == hash
                && *serving != hash
                && approved.iter().any(|v| v.content_hash() == *serving)
        })
        .map(|(_, serving)| serving.to_string());
    let serving = match (rolled_back_to, approved.first()) {
        (Some(serving), _) => Serving::Kept(serving),
        (None, _) if file_ok => Serving::File,
        (None, Some(latest)) => Serving::Kept(latest.content_hash().to_string()),
        (None, None) => Serving::File,
    };
    Judgement {
        serving,
        approve_file: file_ok && approved.first().is_none_or(|v| v.content_hash() != hash),
        waiting: (!file_ok).then_some(new_hosts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(&'static str, Vec<String>);

    fn v(hash: &'static str, hosts: &[&str]) -> V {
        V(hash, hosts.iter().map(|h| h.to_string()).collect())
    }

    impl Version for V {
        fn content_hash(&self) -> &str {
            self.0
        }
        fn hosts(&self) -> &[String] {
            &self.1
        }
    }

    const A: &[&str] = &["https://api.acme.example"];
    const AB: &[&str] = &["https://api.acme.example", "https://b.acme.example"];

    #[test]
    fn a_first_version_serves_and_is_approved() {
        let j = judge::<V>(&v("1", AB), &[], None);
        assert_eq!(j.serving, Serving::File);
        assert!(j.approve_file && j.waiting.is_none());
    }

    #[test]
    fn a_version_asking_nothing_new_serves_and_the_latest_approved_is_not_approved_again() {
        let approved = [v("1", AB)];
        let j = judge(&v("2", A), &approved, None);
        assert_eq!((j.serving, j.approve_file), (Serving::File, true));
        let j = judge(&v("1", AB), &approved, None);
        assert_eq!((j.serving, j.approve_file), (Serving::File, false));
    }

    #[test]
    fn a_version_asking_new_hosts_waits_and_the_latest_approved_serves() {
        let approved = [v("2", A), v("1", AB)];
        let j = judge(&v("3", AB), &approved, None);
        assert_eq!(j.serving, Serving::Kept("2".into()));
        assert_eq!(j.waiting, Some(vec!["https://b.acme.example".to_string()]));
        assert!(!j.approve_file);
    }

    #[test]
    fn an_older_approved_version_installed_again_serves_without_waiting() {
        let approved = [v("2", A), v("1", AB)];
        let j = judge(&v("1", AB), &approved, None);
        assert_eq!((j.serving, j.approve_file), (Serving::File, true));
        assert!(j.waiting.is_none());
    }

    #[test]
    fn a_rollback_holds_only_while_the_file_is_the_version_rolled_back() {
        let approved = [v("2", A), v("1", A)];
        let j = judge(&v("2", A), &approved, Some(("2", "1")));
        assert_eq!(j.serving, Serving::Kept("1".into()));
        assert!(!j.approve_file);
        let j = judge(&v("3", A), &approved, Some(("2", "1")));
        assert_eq!(j.serving, Serving::File, "a new file ends the rollback");
        let j = judge(&v("2", A), &approved, Some(("2", "forgotten")));
        assert_eq!(
            j.serving,
            Serving::File,
            "a rollback to a version no longer kept is void"
        );
    }

    #[test]
    fn a_rollback_under_a_waiting_version_keeps_it_waiting() {
        let approved = [v("2", A), v("1", A)];
        let j = judge(&v("3", AB), &approved, Some(("3", "1")));
        assert_eq!(j.serving, Serving::Kept("1".into()));
        assert!(j.waiting.is_some());
    }
}
