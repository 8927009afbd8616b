//! Hot reload and upgrades under `weir run`: connectors are replaced while
//! flows run, without failing a run, losing an incremental position or
//! letting a new version reach further than approved.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_tests::{
    ConfigEdit, RunningWeir, Workspace, acme_connection, connected_tenant, guests, wait_until,
};

use crate::stored::Stored;
use crate::{simulator, workspace};

fn config(base_url: &str, connection_extra: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

{connection}{connection_extra}

[flows.contacts]
source = "acme"
stream = "contacts"
"#,
        connection = acme_connection("acme", base_url)
    )
}

/// Installs a plugin the documented way: copy to a dot-file, then rename.
fn install(ws: &Workspace, guest: &str) {
    let tmp = ws.plugins_dir().join(".acme_crm.wasm.tmp");
    std::fs::copy(guest, &tmp).unwrap();
    std::fs::rename(&tmp, ws.plugins_dir().join("acme_crm.wasm")).unwrap();
}

/// The serving version of acme-crm, per the admin API.
async fn serving(weir: &RunningWeir) -> Option<String> {
    let (_, plugins) = weir.admin("GET", "/plugins", None).await;
    plugins["loaded"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "acme-crm")
        .and_then(|p| p["version"].as_str().map(str::to_string))
}

async fn wait_for_version(weir: &RunningWeir, version: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if serving(weir).await.as_deref() == Some(version) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// `(flow, status, plugin)` of every run, oldest first.
fn runs(ws: &Workspace) -> Vec<(String, String, String)> {
    let store = ws.store();
    let mut stmt = store
        .prepare("SELECT flow, status, plugin FROM runs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .flatten()
        .collect()
}

fn finished(ws: &Workspace, count: usize) -> bool {
    rusqlite::Connection::open(ws.store_path())
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM runs WHERE status != 'running'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .is_ok_and(|n| n as usize >= count)
}

async fn trigger(weir: &RunningWeir, tenant: &str) -> Value {
    let (status, body) = weir
        .admin(
            "POST",
            &format!("/tenants/{tenant}/flows/contacts/run"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body
}

async fn add_tenants(weir: &RunningWeir, names: &[&str]) {
    for name in names {
        let (status, body) = weir
            .admin("POST", "/tenants", Some(connected_tenant(name, &["acme"])))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_a_connector_mid_sync_fails_no_run_and_new_runs_use_the_new_version() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    // 30 pages at 20 requests a second per tenant: runs long enough to overlap the swap.
    ws.write_config(&config(
        &sim.base_url(),
        "page_size = 100\nrate_limit = { requests_per_second = 20 }",
    ));
    install(&ws, guests::ACME_CRM);
    let weir = ws.start_daemon().await;
    add_tenants(&weir, &["a", "b", "c"]).await;
    for tenant in ["a", "b", "c"] {
        trigger(&weir, tenant).await;
    }
    assert!(
        wait_until(Duration::from_secs(30), || runs(&ws).len() == 3).await,
        "three runs under way"
    );

    let swapped = Instant::now();
    install(&ws, guests::ACME_CRM_V2);
    assert!(
        wait_for_version(&weir, "2.0.0").await,
        "the new version serves"
    );
    let reload = swapped.elapsed();
    assert!(
        wait_until(Duration::from_secs(60), || finished(&ws, 3)).await,
        "the runs in flight finish"
    );
    for tenant in ["a", "b", "c"] {
        trigger(&weir, tenant).await;
    }
    assert!(wait_until(Duration::from_secs(60), || finished(&ws, 6)).await);
    let all = runs(&ws);
    assert!(
        all.iter().all(|(_, status, _)| status == "succeeded"),
        "no run failed: {all:?}"
    );
    assert!(
        all[..3]
            .iter()
            .all(|(_, _, plugin)| plugin == "acme-crm 0.1.0"),
        "in-flight runs keep v1: {all:?}"
    );
    assert!(
        all[3..]
            .iter()
            .all(|(_, _, plugin)| plugin == "acme-crm 2.0.0"),
        "new runs use v2: {all:?}"
    );
    assert_eq!(ws.records("a.acme", "contacts").len(), 3_000);
    eprintln!("reload latency (rename -> v2 serving, seen by the admin API): {reload:?}");
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_checkpoint_format_is_migrated_and_the_sync_stays_incremental() {
    let sim = simulator(2_000, 0).await;
    let ws = workspace();
    ws.write_config(&config(&sim.base_url(), ""));
    install(&ws, guests::ACME_CRM);
    let weir = ws.start_daemon().await;
    add_tenants(&weir, &["a"]).await;
    trigger(&weir, "a").await;
    assert!(wait_until(Duration::from_secs(30), || finished(&ws, 1)).await);

    install(&ws, guests::ACME_CRM_V2);
    assert!(wait_for_version(&weir, "2.0.0").await);
    sim.reset_counters();
    sim.mutate("contacts", 50);
    trigger(&weir, "a").await;
    assert!(wait_until(Duration::from_secs(30), || finished(&ws, 2)).await);
    assert_eq!(runs(&ws)[1].1, "succeeded");
    assert_eq!(
        sim.counters().served("contacts"),
        50,
        "no full resync after the upgrade"
    );
    let checkpoint = ws.only_checkpoint("a.contacts");
    let (format, state) = (checkpoint.format, checkpoint.state);
    assert_eq!(format, 2);
    assert!(state.contains("upgraded_by"), "{state}");
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_leave_the_serving_version_in_place_until_a_good_one_arrives() {
    let sim = simulator(500, 0).await;
    let ws = workspace();
    ws.write_config(&config(&sim.base_url(), ""));
    install(&ws, guests::ACME_CRM);
    let weir = ws.start_daemon().await;
    add_tenants(&weir, &["a"]).await;
    let target = ws.plugins_dir().join("acme_crm.wasm");

    for (bad, what) in [
        (b"definitely not wasm".to_vec(), "no WebAssembly header"),
        (
            std::fs::read(guests::WRONG_WORLD).unwrap(),
            "does not export Weir's interfaces",
        ),
    ] {
        std::fs::write(&target, &bad).unwrap();
        let reported = wait_until(Duration::from_secs(30), || {
            let handle = tokio::runtime::Handle::current();
            let (_, plugins) = tokio::task::block_in_place(|| {
                handle.block_on(weir.admin("GET", "/plugins", None))
            });
            plugins["failed"].as_array().is_some_and(|f| {
                f.iter()
                    .any(|f| f["error"].as_str().unwrap_or("").contains(what))
            })
        })
        .await;
        assert!(reported, "the bad file is reported: {what}");
        assert_eq!(
            serving(&weir).await.as_deref(),
            Some("0.1.0"),
            "the previous version keeps serving"
        );
    }
    trigger(&weir, "a").await;
    assert!(wait_until(Duration::from_secs(30), || finished(&ws, 1)).await);
    assert_eq!(
        runs(&ws)[0].1,
        "succeeded",
        "runs go on with the serving version"
    );

    // A good file written slowly, in place, in four chunks.
    let good = std::fs::read(guests::ACME_CRM_V2).unwrap();
    let mut file = std::fs::File::create(&target).unwrap();
    for chunk in good.chunks(good.len() / 4 + 1) {
        std::io::Write::write_all(&mut file, chunk).unwrap();
        std::io::Write::flush(&mut file).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    drop(file);
    assert!(
        wait_for_version(&weir, "2.0.0").await,
        "recovered once the whole file is there"
    );
    let (_, plugins) = weir.admin("GET", "/plugins", None).await;
    assert_eq!(plugins["failed"], json!([]), "the failure is cleared");
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_asking_for_a_new_host_waits_for_approval() {
    let sim = simulator(200, 0).await;
    let ws = workspace();
    ws.write_config(&config(&sim.base_url(), ""));
    install(&ws, guests::ACME_CRM);
    let weir = ws.start_daemon().await;
    add_tenants(&weir, &["a"]).await;

    install(&ws, guests::ACME_CRM_NEW_HOST);
    let pending = wait_until(Duration::from_secs(30), || {
        let handle = tokio::runtime::Handle::current();
        let (_, plugins) =
            tokio::task::block_in_place(|| handle.block_on(weir.admin("GET", "/plugins", None)));
        plugins["pending"][0]["new_hosts"] == json!(["https://analytics.acme.example"])
    })
    .await;
    assert!(pending, "the new version waits, naming what it asks for");
    trigger(&weir, "a").await;
    assert!(wait_until(Duration::from_secs(30), || finished(&ws, 1)).await);
    assert_eq!(
        runs(&ws)[0].2,
        "acme-crm 0.1.0",
        "the approved version keeps serving"
    );
    // A restart keeps it waiting: at start the store's decisions hold.
    assert!(weir.terminate().await.success());
    let weir = ws.start_daemon().await;
    let (_, plugins) = weir.admin("GET", "/plugins", None).await;
    assert_eq!(plugins["pending"][0]["version"], "1.1.0", "{plugins}");
    assert_eq!(serving(&weir).await.as_deref(), Some("0.1.0"));

    let (status, body) = weir.admin("POST", "/plugins/acme-crm/approve", None).await;
    assert_eq!((status, &body["serving"]), (200, &json!("1.1.0")));
    trigger(&weir, "a").await;
    assert!(wait_until(Duration::from_secs(30), || finished(&ws, 2)).await);
    assert_eq!(runs(&ws)[1].2, "acme-crm 1.1.0");

    let (status, body) = weir.admin("POST", "/plugins/acme-crm/rollback", None).await;
    assert_eq!(
        (status, &body["serving"]),
        (200, &json!("0.1.0")),
        "the last good version is kept for rollbacks"
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_plugin_pauses_its_flows_and_they_resume_when_it_returns() {
    let sim = simulator(200, 0).await;
    let ws = workspace();
    ws.write_config(&config(&sim.base_url(), "").edit(
        "stream = \"contacts\"\n",
        "stream = \"contacts\"\nschedule = \"every 1s\"\n",
    ));
    install(&ws, guests::ACME_CRM);
    let weir = ws.start_daemon().await;
    add_tenants(&weir, &["a"]).await;
    assert!(wait_until(Duration::from_secs(30), || finished(&ws, 1)).await);

    std::fs::remove_file(ws.plugins_dir().join("acme_crm.wasm")).unwrap();
    let paused = wait_until(Duration::from_secs(30), || {
        ws.store()
            .query_row(
                "SELECT last_error FROM flow_states WHERE flow = 'a.contacts'",
                [],
                |r| r.get::<_, Option<String>>(0),
            )
            .ok()
            .flatten()
            .is_some_and(|e| e.contains("paused: connector `acme-crm` is not loaded"))
    })
    .await;
    assert!(paused, "the flow shows why it does not run");
    assert_eq!(
        ws.flow_state("a.contacts").failures,
        0,
        "a paused flow is not failing"
    );
    let count = runs(&ws).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        runs(&ws).len(),
        count,
        "no run starts without its connector"
    );

    install(&ws, guests::ACME_CRM);
    assert!(
        wait_until(Duration::from_secs(30), || runs(&ws).len() > count).await,
        "it resumes"
    );
    assert!(runs(&ws).iter().all(|(_, status, _)| status != "failed"));
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_approve_and_rollback_from_the_cli_act_on_the_running_daemon_and_say_when_none_runs()
 {
    let sim = simulator(20, 0).await;
    let ws = workspace();
    ws.write_config(&config(&sim.base_url(), ""));
    install(&ws, guests::ACME_CRM);
    let weir = ws.start_daemon().await;
    let cli = |args: &[&str]| {
        let mut command = ws.command(args);
        command
            .args(["--admin", &weir.admin_url])
            .env("WEIR_ADMIN_TOKEN", weir_tests::ADMIN_TOKEN);
        tokio::process::Command::from(command).output()
    };
    install(&ws, guests::ACME_CRM_NEW_HOST);
    let pending = wait_until(Duration::from_secs(30), || {
        let handle = tokio::runtime::Handle::current();
        let (_, plugins) =
            tokio::task::block_in_place(|| handle.block_on(weir.admin("GET", "/plugins", None)));
        plugins["pending"][0]["version"] == "1.1.0"
    })
    .await;
    assert!(pending, "the new version waits for approval");

    let out = cli(&["plugins", "approve", "acme-crm"]).await.unwrap();
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.1.0 now serves"));
    assert_eq!(serving(&weir).await.as_deref(), Some("1.1.0"));
    let out = cli(&["plugins", "approve", "acme-crm"]).await.unwrap();
    assert_refused(
        &out,
        3,
        &[
            "error[connector-not-loaded]",
            "has no version waiting for approval",
            "hint:",
        ],
    );
    let out = cli(&["plugins", "rollback", "acme-crm", "--json"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["serving"], "0.1.0");
    assert_eq!(serving(&weir).await.as_deref(), Some("0.1.0"));

    // The daemon's decisions are in the store: after it stops, its rollback
    // still holds, and an explicit `--admin` where nothing answers says so.
    let url = weir.admin_url.clone();
    assert!(weir.terminate().await.success());
    let listing = plugins_json(&ws);
    assert_eq!(listing["loaded"][0]["version"], "0.1.0");
    assert_eq!(listing["loaded"][0]["rolled_back"], true);
    let out = with_admin_token(&ws, &["plugins", "approve", "acme-crm", "--admin", &url]);
    assert_refused(
        &out,
        1,
        &[
            "error[daemon-not-running]",
            "no `weir run` answers at",
            "hint:",
        ],
    );
    // Without `--admin` and no daemon, the command decides in the store:
    // approving with nothing waiting ends the rollback.
    let out = ws
        .command(&["plugins", "approve", "acme-crm"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.1.0 now serves"));
    assert_eq!(plugins_json(&ws)["loaded"][0]["rolled_back"], false);
}

/// Runs `weir args` with the daemons' admin token.
fn with_admin_token(ws: &Workspace, args: &[&str]) -> std::process::Output {
    ws.command(args)
        .env("WEIR_ADMIN_TOKEN", weir_tests::ADMIN_TOKEN)
        .output()
        .unwrap()
}

/// Asserts that a command failed with `exit` and says each of `parts`.
fn assert_refused(out: &std::process::Output, exit: i32, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit), "{stderr}");
    for part in parts {
        assert!(stderr.contains(part), "`{part}` missing from: {stderr}");
    }
}

/// `weir plugins --json`, no daemon running.
fn plugins_json(ws: &Workspace) -> Value {
    let out = ws.command(&["plugins", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `weir sync contacts` and says which version ran, with its stderr.
async fn sync_with(ws: &Workspace) -> (String, String) {
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    let ran = runs(ws).last().expect("a run").2.clone();
    (ran, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_version_and_a_rollback_hold_in_every_command_and_across_restarts_without_a_daemon()
 {
    let sim = simulator(20, 0).await;
    let ws = workspace();
    ws.write_config(&config(&sim.base_url(), ""));
    install(&ws, guests::ACME_CRM);
    assert_eq!(sync_with(&ws).await.0, "acme-crm 0.1.0");

    // A new version asking for a new host waits, in `weir sync` too.
    install(&ws, guests::ACME_CRM_NEW_HOST);
    let (ran, stderr) = sync_with(&ws).await;
    assert_eq!(ran, "acme-crm 0.1.0", "the approved version serves");
    assert!(
        stderr.contains("warning[plugin-waiting]")
            && stderr.contains("acme-crm 1.1.0")
            && stderr.contains("https://analytics.acme.example")
            && stderr.contains("weir plugins approve acme-crm"),
        "{stderr}"
    );
    let listing = plugins_json(&ws);
    assert_eq!(listing["loaded"][0]["version"], "0.1.0");
    assert_eq!(listing["pending"][0]["version"], "1.1.0");
    assert_eq!(
        listing["pending"][0]["new_hosts"],
        json!(["https://analytics.acme.example"])
    );

    let out = ws
        .command(&["plugins", "approve", "acme-crm"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.1.0 now serves"));
    let (ran, stderr) = sync_with(&ws).await;
    assert_eq!(
        ran, "acme-crm 1.1.0",
        "approved once, for every later command"
    );
    assert!(!stderr.contains("plugin-waiting"), "{stderr}");

    // A rollback needs the older file no more: the store keeps its wasm.
    let out = ws
        .command(&["plugins", "rollback", "acme-crm", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["serving"], "0.1.0");
    assert_eq!(sync_with(&ws).await.0, "acme-crm 0.1.0");
    let out = ws
        .command(&["plugins", "rollback", "acme-crm"])
        .output()
        .unwrap();
    assert_refused(
        &out,
        3,
        &[
            "error[connector-not-loaded]",
            "no approved version older than acme-crm 0.1.0",
        ],
    );

    // A daemon started now honours the rollback; with it running, the
    // command asks it, and says so when its admin API cannot be reached.
    let weir = ws.start_daemon().await;
    assert_eq!(serving(&weir).await.as_deref(), Some("0.1.0"));
    let out = with_admin_token(&ws, &["plugins", "approve", "acme-crm"]);
    assert_refused(
        &out,
        1,
        &[
            "error[daemon-not-running]",
            "a `weir run` holds the store",
            "--admin",
        ],
    );
    assert_eq!(serving(&weir).await.as_deref(), Some("0.1.0"));
    assert!(weir.terminate().await.success());

    // A new plugin file ends the rollback.
    install(&ws, guests::ACME_CRM_V2);
    assert_eq!(sync_with(&ws).await.0, "acme-crm 2.0.0");
    assert_eq!(plugins_json(&ws)["loaded"][0]["rolled_back"], false);

    // A tenant pinned to a version whose file is gone runs that version.
    let file = ws.path().join("t1.json");
    std::fs::write(&file, connected_tenant("t1", &["acme"]).to_string()).unwrap();
    ws.weir_ok(&["tenants", "set", "t1", file.to_str().unwrap()])
        .await;
    ws.weir_ok(&["tenants", "pin", "t1", "acme-crm", "0.1.0"])
        .await;
    ws.weir_ok(&["sync", "contacts", "--tenant", "t1"]).await;
    assert_eq!(runs(&ws).last().unwrap().2, "acme-crm 0.1.0");
}
