//! Printing: tables or JSON on stdout, errors on stderr, exit codes.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use comfy_table::presets::{NOTHING, UTF8_BORDERS_ONLY};
use comfy_table::{ContentArrangement, Table};
use tracing_subscriber::EnvFilter;

use crate::diagnostic::{self, Diagnose, Diagnostic, ErrorCode};
use crate::store::StoreError;

/// Logs go to stderr; `WEIR_LOG` overrides the level set by `-v`, and
/// `--debug-http` adds every partner request (the `weir::http` target).
pub fn init_logging(verbose: u8, debug_http: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info,weir::guest=info",
        2 => "debug",
        _ => "trace",
    };
    let mut filter =
        EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if debug_http {
        filter = filter.add_directive("weir::http=debug".parse().expect("a valid directive"));
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .try_init();
}

/// Prints an error as `error[code]: ...`, its causes and its hint, and
/// returns the exit code its code maps to.
pub fn report(error: &anyhow::Error) -> ExitCode {
    let diagnostic = diagnostic_of(error);
    print_diagnostic_chain(error, diagnostic.as_ref());
    ExitCode::from(diagnostic.map_or(1, |d| d.code.exit_code()) as u8)
}

/// The diagnostic an error carries: a [`Diagnostic`] in its chain, or the
/// user-facing form of a store error, which reaches here through `?` from
/// anywhere that touches the store (opening a run, ending it, a listing).
fn diagnostic_of(error: &anyhow::Error) -> Option<Diagnostic> {
    diagnostic::find(error).cloned().or_else(|| {
        error
            .chain()
            .find_map(|e| e.downcast_ref::<StoreError>())
            .map(StoreError::diagnostic)
    })
}

fn print_diagnostic_chain(error: &anyhow::Error, diagnostic: Option<&Diagnostic>) {
    let code = diagnostic
        .map(|d| format!("[{}]", d.code))
        .unwrap_or_default();
    let mut chain = error.chain();
    let mut shown = String::new();
    if let Some(first) = chain.next() {
        shown = first.to_string();
        eprintln!("error{code}: {shown}");
    }
    for cause in chain {
        // Many errors repeat their source in their own message.
        let text = cause.to_string();
        if !shown.contains(&text) {
            eprintln!("  caused by: {text}");
        }
        shown = text;
    }
    if let Some(hint) = diagnostic.and_then(|d| d.hint.as_deref()) {
        eprintln!("hint: {hint}");
    }
}

/// Prints a diagnostic that does not end the command (one failed flow of
/// several, a plugin that did not load).
pub fn print_problem(prefix: &str, diagnostic: &Diagnostic) {
    eprintln!("{prefix}[{}]: {}", diagnostic.code, diagnostic.message);
    if let Some(hint) = &diagnostic.hint {
        eprintln!("hint: {hint}");
    }
}

/// An error whose code sets the exit code.
pub fn fail(diagnostic: Diagnostic) -> anyhow::Error {
    anyhow::Error::new(diagnostic)
}

/// The exit code of a diagnostic's code.
pub fn exit_code(code: ErrorCode) -> ExitCode {
    ExitCode::from(code.exit_code() as u8)
}

/// A table with the given header; framed on a terminal, plain columns
/// (no box drawing) when stdout is a pipe or a file.
pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    let preset = if std::io::stdout().is_terminal() {
        UTF8_BORDERS_ONLY
    } else {
        NOTHING
    };
    table
        .load_preset(preset)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    table
}

/// Prints JSON to stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `2026-11-28T10:11:12Z`.
pub fn timestamp(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `1.2 s`, `3 min 4 s`.
pub fn duration(d: Duration) -> String {
    crate::unix_time::humanize_duration(d)
}

/// A count with thousands separators: `100,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_get_separators() {
        assert_eq!(super::count(0), "0");
        assert_eq!(super::count(999), "999");
        assert_eq!(super::count(1000), "1,000");
        assert_eq!(super::count(1234567), "1,234,567");
    }
}
