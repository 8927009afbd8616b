//! "Did you mean": the known name a misspelt one was probably meant to be,
//! for flows, connections, streams, secrets, config keys and error codes.

/// The candidate `input` most likely misspells: the one fewest edits away
/// (case aside; a swap of neighbours is one edit), if it is close enough
/// to be a typo rather than another name. Ties go to the first candidate.
///
/// ```
/// use weir_host::suggest::did_you_mean;
///
/// assert_eq!(did_you_mean("contcts", ["companies", "contacts"]), Some("contacts"));
/// assert_eq!(did_you_mean("invoices", ["companies", "contacts"]), None);
/// ```
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input = input.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let edits = strsim::osa_distance(&input, &candidate.to_lowercase());
        if edits <= tolerance(candidate)
            && edits < candidate.chars().count()
            && best.is_none_or(|(fewest, _)| edits < fewest)
        {
            best = Some((edits, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `did you mean `x`?` followed by `rest`, or `rest` alone when nothing is
/// close: the hint of an unknown name.
pub fn hint<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    rest: impl std::fmt::Display,
) -> String {
    match did_you_mean(input, candidates) {
        Some(meant) => format!("did you mean `{meant}`? {rest}"),
        None => rest.to_string(),
    }
}

/// Names as a message lists them: `a, b, c`.
pub fn listed<T: std::fmt::Display>(names: impl IntoIterator<Item = T>) -> String {
    names
        .into_iter()
        .map(|name| name.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Edits a typo may make: one in a short name, a third of a longer one
/// (and never the whole name).
fn tolerance(candidate: &str) -> usize {
    (candidate.chars().count() / 3).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_name_it_misspells() {
        let flows = ["companies", "contacts", "deals"];
        assert_eq!(did_you_mean("contcts", flows), Some("contacts"));
        assert_eq!(did_you_mean("Contacts", flows), Some("contacts"));
        assert_eq!(did_you_mean("cnotacts", flows), Some("contacts"), "a swap");
        assert_eq!(did_you_mean("deal", flows), Some("deals"));
        assert_eq!(did_you_mean("tokn", ["api_key", "token"]), Some("token"));
    }

    #[test]
    fn another_name_is_not_a_typo() {
        let flows = ["companies", "contacts"];
        assert_eq!(did_you_mean("invoices", flows), None);
        assert_eq!(did_you_mean("x", ["y"]), None);
        assert_eq!(
            did_you_mean("nope", ["config-invalid", "unknown-flow"]),
            None
        );
        assert_eq!(did_you_mean("anything", []), None);
    }

    #[test]
    fn the_closest_of_several_wins() {
        assert_eq!(did_you_mean("acme1", ["acme", "acme12"]), Some("acme"));
        assert_eq!(
            did_you_mean("ab", ["ac", "ad"]),
            Some("ac"),
            "ties: the first"
        );
    }

    #[test]
    fn a_hint_names_the_guess_before_the_rest() {
        assert_eq!(
            hint("contcts", ["contacts"], "defined flows: contacts"),
            "did you mean `contacts`? defined flows: contacts"
        );
        assert_eq!(
            hint("zzz", ["contacts"], "defined flows: contacts"),
            "defined flows: contacts"
        );
    }
}
