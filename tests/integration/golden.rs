//! Golden tests of the errors users see: each folder of `tests/golden/` is
//! one case (inputs, the command, and the exact stderr and exit code it
//! must give). `tests/golden/README.md` says how to add one; adding a case
//! is adding a folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt as _;
use weir_host::diagnostic::ErrorCode;
use weir_tests::{ADMIN_TOKEN, Workspace, guests};

use crate::{simulator, workspace};

/// Files of a case that drive the harness; every other file of the folder
/// is copied into the case's workspace.
const CONTROL: &[&str] = &[
    "README.md",
    "cmd",
    "setup",
    "guests",
    "partner",
    "env",
    "store.sql",
    "request",
    "daemon",
    "signal",
    "stderr",
    "stdout",
    "status",
    "response",
];

/// Codes no case shows yet, each with why. A code listed here that gains a
/// case fails the completeness test, so the list only shrinks.
const NOT_YET_SHOWN: &[(&str, &str)] = &[];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

/// Every case folder, by name.
fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/golden exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn read(case: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(case.join(file)).ok()
}

/// The words of a command line; `'...'` keeps spaces (and JSON) together.
fn words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Lines that are neither blank nor `#` comments.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A built guest by its crate name (`acme-crm`).
fn guest(name: &str) -> &'static str {
    let wanted = name.replace('-', "_").to_uppercase();
    let mut found = None;
    macro_rules! check {
        ($guest:ident) => {
            if stringify!($guest) == wanted {
                found = Some(guests::$guest);
            }
        };
    }
    weir_tests::foreach_guest!(check);
    found.unwrap_or_else(|| panic!("no guest `{name}`"))
}

/// What varies between runs, replaced so that goldens are stable: the
/// workspace's path, ports on 127.0.0.1 and process ids.
fn normalise(text: &str, ws: &Workspace) -> String {
    let mut text = text.to_string();
    let path = ws.path();
    for form in [
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        path.to_path_buf(),
    ] {
        text = text.replace(&form.display().to_string(), "[WS]");
    }
    let text = numbers_after(&text, "127.0.0.1:", "[PORT]");
    let text = numbers_after(&text, "pid ", "[PID]");
    numbers_after(&text, "kill ", "[PID]")
}

/// `text` with the number after each `marker` replaced by `placeholder`.
fn numbers_after(text: &str, marker: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str(placeholder);
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Copies the case's input files into the workspace, `{partner}` in text
/// files replaced by the simulator's base URL.
fn copy_inputs(from: &Path, to: &Path, top: bool, partner: &str) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if top && CONTROL.contains(&name.as_str()) {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        if source.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_inputs(&source, &target, false, partner);
            continue;
        }
        let bytes = std::fs::read(&source).unwrap();
        let bytes = match String::from_utf8(bytes) {
            Ok(text) => text.replace("{partner}", partner).into_bytes(),
            Err(e) => e.into_bytes(),
        };
        std::fs::write(target, bytes).unwrap();
    }
}

fn partner_fault(line: &str) -> partner_sim::Fault {
    let words = words(line);
    let [method, path, status, options @ ..] = words.as_slice() else {
        panic!("a fault is `METHOD PATH STATUS|hang [times N] [skip N]`, not `{line}`");
    };
    let fault = partner_sim::Fault::new(method, path);
    let mut fault = match status.as_str() {
        "hang" => fault.hang(),
        status => fault.status(status.parse().unwrap()),
    };
    for pair in options.chunks(2) {
        let n: u32 = pair[1].parse().unwrap();
        fault = match pair[0].as_str() {
            "times" => fault.times(n),
            "skip" => fault.skip(n),
            other => panic!("unknown fault option `{other}`"),
        };
    }
    fault
}

/// What a case produced, in the form of its expected files.
struct Outcome {
    files: Vec<(&'static str, String)>,
}

async fn run_case(case: &Path) -> Outcome {
    let ws = workspace();
    let sim = match read(case, "partner") {
        Some(faults) => {
            let sim = simulator(10, 5).await;
            for line in lines(&faults) {
                sim.inject(partner_fault(line));
            }
            Some(sim)
        }
        None => None,
    };
    let partner = sim
        .as_ref()
        .map_or("http://127.0.0.1:9".to_string(), |s| s.base_url());
    copy_inputs(case, ws.path(), true, &partner);
    let install = |line: &str| {
        let (name, file) = match line.split_once(" as ") {
            Some((name, file)) => (name.trim(), file.trim().to_string()),
            None => (line, format!("{}.wasm", line.replace('-', "_"))),
        };
        ws.install(guest(name), &file);
    };
    for line in lines(&read(case, "guests").unwrap_or_default()) {
        install(line);
    }
    let env_text = read(case, "env").unwrap_or_default();
    let env: Vec<(&str, &str)> = lines(&env_text)
        .map(|l| l.split_once('=').expect("env lines are NAME=value"))
        .collect();
    let command = |args: &[String]| {
        let mut cmd = ws.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.envs(env.iter().copied())
            .env("WEIR_PROGRESS_EVERY", "0s");
        tokio::process::Command::from(cmd)
    };
    for line in lines(&read(case, "setup").unwrap_or_default()) {
        if let Some(guest) = line.strip_prefix("install ") {
            install(guest.trim());
            continue;
        }
        let out = command(&words(line)).output().await.unwrap();
        assert!(
            out.status.success(),
            "{}: setup `{line}` failed: {}",
            case.display(),
            weir_tests::output_text(&out)
        );
    }
    if let Some(sql) = read(case, "store.sql") {
        ws.store()
            .execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{}: store.sql: {e}", case.display()));
    }
    if let Some(request) = read(case, "request") {
        let daemon = ws.start_daemon_with(&env).await;
        let response = admin_request(&daemon.admin_url, &request).await;
        daemon.kill().await;
        return Outcome {
            files: vec![("response", normalise(&response, &ws))],
        };
    }
    let cmd = read(case, "cmd").expect("a case has `cmd` or `request`");
    // `daemon`: the command meets a `weir run` serving the same store.
    let daemon = match read(case, "daemon") {
        Some(_) => Some(ws.start_daemon_with(&env).await),
        None => None,
    };
    let mut child = command(&words(cmd.trim()));
    child
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = child.spawn().unwrap();
    if let Some(signal) = read(case, "signal") {
        interrupt_once_asked(case, &signal, &child, sim.as_ref()).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the command ends within 120 s")
        .unwrap();
    if let Some(daemon) = daemon {
        daemon.kill().await;
    }
    let mut files = vec![
        (
            "stderr",
            normalise(&String::from_utf8_lossy(&out.stderr), &ws),
        ),
        (
            "status",
            format!(
                "{}\n",
                out.status
                    .code()
                    .map_or("signal".to_string(), |c| c.to_string())
            ),
        ),
    ];
    if case.join("stdout").exists() {
        files.push((
            "stdout",
            normalise(&String::from_utf8_lossy(&out.stdout), &ws),
        ));
    }
    Outcome { files }
}

/// A `signal` file, `INT after METHOD PATH`: sends the command SIGINT once
/// the partner has seen that request (a `hang` fault keeps it in flight).
async fn interrupt_once_asked(
    case: &Path,
    signal: &str,
    child: &tokio::process::Child,
    sim: Option<&partner_sim::PartnerSim>,
) {
    let words = words(signal.trim());
    let [name, after, method, path] = words.as_slice() else {
        panic!("{}: `signal` is `INT after METHOD PATH`", case.display());
    };
    assert_eq!(
        after,
        "after",
        "{}: `signal` is `INT after METHOD PATH`",
        case.display()
    );
    let sim = sim.unwrap_or_else(|| panic!("{}: `signal` needs a `partner`", case.display()));
    let route = format!("{method} {path}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sim.counters().route(&route) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: the partner never saw `{route}`",
            case.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("the command runs").to_string();
    let sent = std::process::Command::new("kill")
        .args([format!("-{name}"), pid])
        .status()
        .unwrap();
    assert!(sent.success(), "{}: kill -{name} failed", case.display());
}

/// Sends a `request` file (`METHOD /path`, header lines, a blank line, the
/// body) to the admin API; the admin token is sent unless the file gives
/// its own `Authorization`. Returns `HTTP <status>` and the body.
async fn admin_request(admin_url: &str, request: &str) -> String {
    let (head, body) = request.split_once("\n\n").unwrap_or((request, ""));
    let mut head = head.lines();
    let first = head.next().expect("a request line");
    let (method, path) = first.split_once(' ').expect("`METHOD /path`");
    let mut builder = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{admin_url}{}", path.trim()),
    );
    let mut authorized = false;
    for header in head {
        let (name, value) = header.split_once(':').expect("`Name: value` headers");
        authorized |= name.eq_ignore_ascii_case("authorization");
        builder = builder.header(name.trim(), value.trim());
    }
    if !authorized {
        builder = builder.bearer_auth(ADMIN_TOKEN);
    }
    if !body.trim().is_empty() {
        builder = builder.body(body.to_string());
    }
    let response = builder.send().await.expect("the admin API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap(),
        Err(_) => text,
    };
    format!("HTTP {status}\n{body}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_golden_case_gives_its_exact_stderr_and_exit_code() {
    let bless = std::env::var_os("WEIR_GOLDEN").is_some_and(|v| v == "bless");
    let cases = cases();
    // A few at once: each case is a process or two and a compile.
    let outcomes: Vec<(PathBuf, Outcome)> = futures_util::stream::iter(cases)
        .map(|case| async move {
            let outcome = run_case(&case).await;
            (case, outcome)
        })
        .buffer_unordered(3)
        .collect()
        .await;
    let mut failures = Vec::new();
    for (case, outcome) in outcomes {
        for (file, actual) in outcome.files {
            let expected = read(&case, file);
            if expected.as_deref() == Some(actual.as_str()) {
                continue;
            }
            if bless {
                std::fs::write(case.join(file), &actual).unwrap();
            } else {
                failures.push(format!(
                    "{}/{file}:\n--- expected\n{}--- actual\n{actual}",
                    case.file_name().unwrap().to_string_lossy(),
                    expected.unwrap_or_else(|| "(missing)\n".into()),
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden files differ (WEIR_GOLDEN=bless rewrites them):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether `output` shows `code` as a diagnostic followed by its hint:
/// `...[code]: ...` then `hint: ...` before the next diagnostic, or an
/// admin API answer whose error has that code and a hint.
fn shows_with_hint(output: &str, code: ErrorCode) -> bool {
    if let Some(body) = output.strip_prefix("HTTP ") {
        let json = body.split_once('\n').map_or("", |(_, json)| json);
        return serde_json::from_str::<serde_json::Value>(json).is_ok_and(|v| {
            v["error"]["code"] == code.as_str()
                && v["error"]["hint"].as_str().is_some_and(|h| !h.is_empty())
        });
    }
    let marker = format!("[{code}]: ");
    let lines: Vec<&str> = output.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        line.contains(&marker)
            && lines[i + 1..]
                .iter()
                .take_while(|next| !next.contains("]: ") || next.starts_with("hint: "))
                .any(|next| next.starts_with("hint: "))
    })
}

#[test]
fn every_error_code_has_a_readme_entry_and_a_golden_case_showing_its_hint() {
    let readme = include_str!("../../README.md");
    let outputs: Vec<String> = cases()
        .iter()
        .flat_map(|case| {
            ["stderr", "response"]
                .into_iter()
                .filter_map(|file| read(case, file))
        })
        .collect();
    let mut missing = Vec::new();
    for code in ErrorCode::ALL {
        if !readme.contains(&format!("### `{code}` — {}", code.title())) {
            missing.push(format!("`{code}` has no entry in README's Gotchas"));
        }
        let shown = outputs.iter().any(|o| shows_with_hint(o, *code));
        let excused = NOT_YET_SHOWN.iter().any(|(c, _)| *c == code.as_str());
        match (shown, excused) {
            (false, false) => missing.push(format!(
                "no case of tests/golden shows `{code}` with a hint"
            )),
            (true, true) => missing.push(format!(
                "`{code}` has a case now: remove it from NOT_YET_SHOWN"
            )),
            _ => {}
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn a_command_line_of_a_case_keeps_quoted_json_together() {
    assert_eq!(
        words(r#"tenants connect t1 acme --secrets '{"api_key": {"env": "X"}}'"#),
        [
            "tenants",
            "connect",
            "t1",
            "acme",
            "--secrets",
            r#"{"api_key": {"env": "X"}}"#
        ]
    );
    assert_eq!(words("explain ''"), ["explain", ""]);
}
