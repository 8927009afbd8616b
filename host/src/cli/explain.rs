use std::process::ExitCode;

use crate::diagnostic::{Diagnostic, ErrorCode};

use super::output;

/// `weir explain [code]`.
pub fn run(code: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let codes: Vec<ErrorCode> = match code {
        None => ErrorCode::ALL.to_vec(),
        Some(text) => vec![ErrorCode::parse(text).ok_or_else(|| output::fail(unknown(text)))?],
    };
    if json {
        let list: Vec<_> = codes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "code": c.as_str(), "title": c.title(),
                    "explanation": c.explanation(), "exit_code": c.exit_code(),
                })
            })
            .collect();
        output::print_json(&list)?;
    } else if code.is_some() {
        let c = codes[0];
        println!(
            "{}: {}\n\n{}\n\nexit code: {}",
            c,
            c.title(),
            c.explanation(),
            c.exit_code()
        );
    } else {
        let mut table = output::table(["code", "meaning", "exit"]);
        for c in codes {
            table.add_row([
                c.as_str().to_string(),
                c.title().to_string(),
                c.exit_code().to_string(),
            ]);
        }
        println!("{table}\n\n`weir explain <code>` tells why it happens and what to do.");
    }
    Ok(ExitCode::SUCCESS)
}

/// A code Weir does not have, with the closest one it does.
fn unknown(text: &str) -> Diagnostic {
    let closest = ErrorCode::ALL
        .iter()
        .map(|c| (strsim::jaro_winkler(text, c.as_str()), c))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        // Below this, the "closest" code has little to do with the text.
        .filter(|(similarity, _)| *similarity >= 0.85);
    let hint = match closest {
        Some((_, code)) => format!("did you mean `{code}`? `weir explain` lists every code"),
        None => "`weir explain` lists every code".to_string(),
    };
    Diagnostic::new(
        ErrorCode::UnknownCode,
        format!("`{text}` is not a Weir error code"),
    )
    .with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_code_suggests_the_closest_one() {
        let d = unknown("egress-denid");
        assert_eq!(d.code, ErrorCode::UnknownCode);
        assert_eq!(
            d.hint.as_deref(),
            Some("did you mean `egress-denied`? `weir explain` lists every code")
        );
        assert_eq!(
            unknown("nope").hint.as_deref(),
            Some("`weir explain` lists every code")
        );
    }
}
