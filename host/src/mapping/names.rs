//! How alike two names are: for "did you mean" on misspelt keys, and for
//! the gap report's guess of which source field fills a destination field.

/// Names partners use for the same thing, written normalized (lowercase
/// letters and digits only).
const SYNONYMS: &[&[&str]] = &[
    &["email", "emailaddress", "mail", "emailaddr"],
    &[
        "phone",
        "phonenumber",
        "telephone",
        "tel",
        "mobile",
        "mobilephone",
    ],
    &["firstname", "givenname", "forename", "fname"],
    &["lastname", "surname", "familyname", "lname"],
    &[
        "company",
        "companyname",
        "organization",
        "organisation",
        "account",
        "accountname",
    ],
    &["title", "jobtitle", "position"],
    &["zip", "zipcode", "postalcode", "postcode"],
    &["country", "countrycode"],
    &[
        "createdat",
        "created",
        "createdate",
        "creationdate",
        "datecreated",
    ],
    &[
        "updatedat",
        "updated",
        "modifiedat",
        "lastmodified",
        "datemodified",
    ],
    &["stage", "lifecyclestage", "status"],
    &["externalid", "remoteid"],
];

/// From 0 (unrelated) to 1 (the same name), ignoring case and separators:
/// `first_name`, `firstName` and `First Name` are the same name.
pub(crate) fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (normalize(a), normalize(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    if SYNONYMS
        .iter()
        .any(|group| group.contains(&a.as_str()) && group.contains(&b.as_str()))
    {
        return 0.9;
    }
    let (shorter, longer) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    // Optimal string alignment: a swap of neighbours is one edit, so
    // `feilds` is one edit from `fields`.
    let edit = 1.0 - strsim::osa_distance(&a, &b) as f64 / longer.chars().count() as f64;
    // `email` inside `work_email`, `int` for `integer`: related, though far
    // apart by edits.
    if (shorter.len() >= 4 && longer.contains(shorter.as_str()))
        || (shorter.len() >= 3 && longer.starts_with(shorter.as_str()))
    {
        edit.max(0.75)
    } else {
        edit
    }
}

/// The candidate most like `word`, if any is close enough to be a typo.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|candidate| (similarity(word, candidate), candidate))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|(a, _), (b, _)| a.total_cmp(b))
        .map(|(_, candidate)| candidate)
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_separators_do_not_matter() {
        assert_eq!(similarity("first_name", "firstName"), 1.0);
        assert_eq!(similarity("First Name", "first-name"), 1.0);
    }

    #[test]
    fn synonyms_and_containment_are_close() {
        assert_eq!(similarity("email", "email_address"), 0.9);
        assert_eq!(similarity("surname", "last_name"), 0.9);
        assert!(similarity("email", "work_email") >= 0.75);
        assert!(similarity("int", "integer") >= 0.75);
        assert!(similarity("int", "print") < 0.7);
        assert!(similarity("id", "external_id") < 0.7);
        assert!(similarity("phone", "title") < 0.5);
        assert_eq!(similarity("", "x"), 0.0);
    }

    #[test]
    fn a_swap_of_neighbours_is_one_edit() {
        // One edit of six letters; as a delete and an insert it would be two.
        assert_eq!(similarity("feilds", "fields"), 1.0 - 1.0 / 6.0);
        assert_eq!(closest("feilds", ["fields", "fallback"]), Some("fields"));
    }

    #[test]
    fn closest_finds_typos_only() {
        let keys = ["separator", "skip_empty", "timezone"];
        assert_eq!(closest("sepparator", keys), Some("separator"));
        assert_eq!(closest("time_zone", keys), Some("timezone"));
        assert_eq!(closest("colour", keys), None);
    }
}
