use std::process::ExitCode;

use crate::diagnostic::{Diagnostic, ErrorCode};

use super::output;

/// `weir explain [code]`.
pub fn run(code: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let codes: Vec<ErrorCode> = match code {
        None => ErrorCode::ALL.to_vec(),
        Some(text) => vec![ErrorCode::parse(text).ok_or_else(|| {
            output::fail(
                Diagnostic::new(
                    ErrorCode::ConfigInvalid,
                    format!("`{text}` is not a Weir error code"),
                )
                .with_hint("`weir explain` lists every code"),
            )
        })?],
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
