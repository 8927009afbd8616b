//! URLs as Weir stores and prints them: without user info, query or
//! fragment, the parts where credentials and personal data travel. Only
//! `--debug-http` shows a whole URL, with secret values redacted.

use std::borrow::Cow;

use url::Url;

/// `scheme://host[:port]/path` of a URL.
pub fn printed(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// [`printed`] for text that may not parse as a URL: user info, query and
/// fragment are cut all the same.
pub fn printed_text(text: &str) -> String {
    if let Ok(url) = Url::parse(text) {
        return printed(&url);
    }
    let text = &text[..text.find(['?', '#']).unwrap_or(text.len())];
    let (scheme, rest) = match text.find("://") {
        Some(at) => text.split_at(at + 3),
        None => ("", text),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}{}", &rest[at + 1..]),
        None => text.to_string(),
    }
}

/// Free text (an error message a connector wrote) with every `http://` and
/// `https://` URL in it [`printed`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let starts =
        |at: usize| text[at..].starts_with("http://") || text[at..].starts_with("https://");
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut at = 0;
    while at < text.len() {
        if text.is_char_boundary(at) && starts(at) {
            let end = text[at..]
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '<' | '>' | ')')
                })
                .map_or(text.len(), |len| at + len);
            out.push_str(&text[rest..at]);
            // A URL with nothing to cut is left as written: parsing would
            // rewrite it (`http://,` becomes `http://,/`).
            let url = &text[at..end];
            if url.contains(['@', '?', '#']) {
                out.push_str(&printed_text(url));
            } else {
                out.push_str(url);
            }
            rest = end;
            at = end;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[rest..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_urls_lose_user_info_query_and_fragment() {
        let url =
            Url::parse("https://user:pw@api.example.com:8443/v1/x?api_key=s&_limit=1#f").unwrap();
        assert_eq!(printed(&url), "https://api.example.com:8443/v1/x");
        assert_eq!(
            printed_text("http://user:pw@bad host/v1?token=s"),
            "http://bad host/v1"
        );
    }

    #[test]
    fn urls_inside_messages_are_scrubbed() {
        let message = "error sending request for url (http://127.0.0.1:4010/v1/contacts?_sort=id&_limit=1000): refused; see `https://k:s@x.example/a?b=c`";
        assert_eq!(
            scrub(message),
            "error sending request for url (http://127.0.0.1:4010/v1/contacts): refused; see `https://x.example/a`"
        );
        assert!(matches!(scrub("no url here"), Cow::Borrowed(_)));
        assert_eq!(
            scrub("base_url must start with https:// or http://, got `x`"),
            "base_url must start with https:// or http://, got `x`"
        );
    }
}
