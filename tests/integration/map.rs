//! Customer-owned field mappings through the CLI: `weir map`, `weir
//! deadletters` and `weir sync --tenant`, against the simulator. Every
//! redelivery is checked to have asked the source partner nothing.

use std::collections::BTreeMap;

use partner_sim::PartnerSim;
use serde_json::{Value, json};
use weir_tests::{
    ConfigEdit, Workspace, acme_connection, connected_tenant, contact_mapping, guests, output_text,
};

use crate::{simulator, workspace};

/// `weir.toml`: connection `acme` on `source`, optionally `mirror` on
/// `destination`; flow `contacts` into the store, flow `mirror` from acme's
/// contacts to mirror's, flow `crm` through the `contact-mapper` transform.
fn config(source: &str, destination: Option<&str>) -> String {
    let mut toml = format!(
        r#"
{connection}
[flows.contacts]
source = "acme"
stream = "contacts"

[flows.crm]
source = "acme"
stream = "contacts"
transforms = [{{ plugin = "contact-mapper", config = {{ timezone = "America/New_York", source = "weir-test", phone_country_code = "1" }} }}]
"#,
        connection = acme_connection("acme", source)
    );
    if let Some(destination) = destination {
        toml += &format!(
            r#"
{connection}
[flows.mirror]
source = "acme"
stream = "contacts"
destination = {{ connection = "mirror", stream = "contacts" }}
"#,
            connection = acme_connection("mirror", destination)
        );
    }
    toml
}

/// A workspace with the connector and the transform installed and tenant
/// `t1` created, with its own key for each connection, through the CLI.
async fn installed(source: &PartnerSim, destination: Option<&PartnerSim>) -> Workspace {
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .install(guests::CONTACT_MAPPER, "contact_mapper.wasm")
        .write_config(&config(
            &source.base_url(),
            destination.map(|d| d.base_url()).as_deref(),
        ));
    let connections: &[&str] = match destination {
        Some(_) => &["acme", "mirror"],
        None => &["acme"],
    };
    let tenant = ws.path().join("t1.json");
    std::fs::write(&tenant, connected_tenant("t1", connections).to_string()).unwrap();
    weir_ok(&ws, &["tenants", "set", "t1", tenant.to_str().unwrap()]).await;
    ws
}

async fn weir_ok(ws: &Workspace, args: &[&str]) -> String {
    let out = ws.weir_async(args).await;
    assert!(
        out.status.success(),
        "weir {}: {}",
        args.join(" "),
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `weir map set` from a file.
async fn set_mapping(ws: &Workspace, flow: &str, mapping: &Value) -> std::process::Output {
    let file = ws.path().join(format!("{flow}-mapping.json"));
    std::fs::write(&file, mapping.to_string()).unwrap();
    ws.weir_async(&["map", "set", "t1", flow, file.to_str().unwrap()])
        .await
}

/// `key -> data` of a flow's reshaped records.
fn mapped_rows(ws: &Workspace, flow: &str) -> BTreeMap<String, Value> {
    let store = ws.store();
    let mut stmt = store
        .prepare("SELECT key, data FROM mapped_records WHERE flow = ?1 AND deleted = 0")
        .unwrap();
    stmt.query_map([flow], |row| {
        let data: String = row.get(1)?;
        Ok((row.get(0)?, serde_json::from_str(&data).unwrap()))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// `key -> error` of a flow's dead letters.
fn dead_letters(ws: &Workspace, flow: &str) -> BTreeMap<String, String> {
    let store = ws.store();
    let mut stmt = store
        .prepare("SELECT source_key, error FROM dead_letters WHERE flow = ?1")
        .unwrap();
    stmt.query_map([flow], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn json_out(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_mapping_reapplied_reshapes_every_row_without_asking_the_partner() {
    let sim = simulator(300, 10).await;
    let ws = installed(&sim, None).await;
    let first = json!({ "fields": [
        { "to": "/email", "from": "/email", "required": true },
        { "to": "/name", "concat": ["/first_name", "/last_name"], "separator": " " },
    ]});
    assert!(set_mapping(&ws, "contacts", &first).await.status.success());
    weir_ok(&ws, &["sync", "contacts", "--tenant", "t1"]).await;
    let rows = mapped_rows(&ws, "t1.contacts");
    assert_eq!(rows.len(), 300);
    assert!(rows.values().all(|r| r.get("name").is_some()));

    let out = set_mapping(&ws, "contacts", &contact_mapping()).await;
    assert!(out.status.success(), "{}", output_text(&out));
    sim.reset_counters();
    let stdout = weir_ok(&ws, &["map", "reapply", "t1", "contacts", "--json"]).await;
    let summary = json_out(&stdout);
    assert_eq!(
        (
            &summary["status"],
            &summary["records"],
            &summary["written"],
            &summary["failed"]
        ),
        (&json!("succeeded"), &json!(300), &json!(300), &json!(0))
    );
    assert_eq!(
        sim.counters().requests,
        0,
        "a reapply reads the store, never the partner"
    );

    let rows = mapped_rows(&ws, "t1.contacts");
    assert_eq!(rows.len(), 300);
    for contact in sim.records("contacts") {
        let id = contact["id"].as_str().unwrap();
        let row = &rows[id];
        assert_eq!(row["externalId"], contact["id"]);
        assert_eq!(row["properties"]["email"], contact["email"]);
        assert_eq!(
            row["properties"]["score"],
            json!(contact["score"].to_string())
        );
        assert_eq!(row["source"], "acme");
        assert!(row.get("name").is_none(), "the old shape is gone: {row}");
    }
    let (plugin, status): (String, String) = ws
        .store()
        .query_row(
            "SELECT plugin, status FROM runs WHERE flow = 't1.contacts' ORDER BY id DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((plugin.as_str(), status.as_str()), ("reapply", "succeeded"));

    // The preview shows stored records, still without a request.
    let stdout = weir_ok(
        &ws,
        &["map", "preview", "t1", "contacts", "-n", "2", "--json"],
    )
    .await;
    let preview = json_out(&stdout);
    let samples = preview["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0]["key"], "c_000001");
    assert_eq!(samples[0]["mapped"], rows["c_000001"]);
    assert_eq!(samples[0]["raw"]["id"], "c_000001");
    assert_eq!(sim.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_failing_the_mapping_become_dead_letters_and_a_retry_after_the_fix_delivers_them() {
    let sim = simulator(200, 10).await;
    let contacts = sim.records("contacts");
    let live: Vec<&str> = contacts
        .iter()
        .filter(|c| c["lifecycle_stage"] != "churned")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in &live[..3] {
        sim.update("contacts", id, json!({ "company_id": null }))
            .unwrap();
    }
    for id in &live[3..5] {
        sim.update("contacts", id, json!({ "external_id": "2025-02-30" }))
            .unwrap();
    }
    let churned: Vec<String> = contacts
        .iter()
        .filter(|c| c["lifecycle_stage"] == "churned")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!churned.is_empty(), "the seed has churned contacts");

    let ws = installed(&sim, None).await;
    let strict = json!({ "fields": [
        { "to": "/email", "from": "/email", "required": true },
        { "to": "/company", "from": "/company_id", "required": true },
        { "to": "/stage", "from": "/lifecycle_stage",
          "values": { "lead": "New", "prospect": "Open", "customer": "Won" } },
        { "to": "/since", "from": "/external_id", "type": "date" },
    ]});
    assert!(set_mapping(&ws, "contacts", &strict).await.status.success());
    let stdout = weir_ok(&ws, &["sync", "contacts", "--tenant", "t1", "--json"]).await;
    let failed = 5 + churned.len();
    assert_eq!(json_out(&stdout)[0]["status"], "succeeded");
    assert_eq!(json_out(&stdout)[0]["records_failed"], json!(failed));

    let mut expected = BTreeMap::new();
    for id in &live[..3] {
        expected.insert(
            id.to_string(),
            "/company (from /company_id): is required, but the record's value is empty".to_owned(),
        );
    }
    for id in &live[3..5] {
        expected.insert(
            id.to_string(),
            "/since (from /external_id): `2025-02-30` is not a date (expected RFC 3339)".to_owned(),
        );
    }
    for id in &churned {
        expected.insert(
            id.clone(),
            "/stage (from /lifecycle_stage): `churned` is not one of the mapped values (`customer`, `lead`, `prospect`)".to_owned(),
        );
    }
    assert_eq!(dead_letters(&ws, "t1.contacts"), expected);
    assert_eq!(mapped_rows(&ws, "t1.contacts").len(), 200 - failed);

    // The listing and the preview show the same reasons.
    let listed = json_out(
        &weir_ok(
            &ws,
            &[
                "deadletters",
                "list",
                "t1",
                "contacts",
                "--json",
                "--limit",
                "1000",
            ],
        )
        .await,
    );
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), failed);
    assert!(
        listed.iter().all(|l| l["stage"] == "mapping"
            && expected[l["source_key"].as_str().unwrap()] == l["error"])
    );
    let table = weir_ok(&ws, &["deadletters", "list", "t1", "contacts"]).await;
    assert!(
        table.contains(live[0]) && table.contains("is required, but the record's value is empty"),
        "{table}"
    );
    let preview = json_out(
        &weir_ok(
            &ws,
            &["map", "preview", "t1", "contacts", "-n", "200", "--json"],
        )
        .await,
    );
    let errors: BTreeMap<String, String> = preview["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["error"].is_null())
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["error"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors, expected);

    // Fixed: a company is optional, churned contacts are `Lost`, the date
    // rule is gone. The retry delivers every dead letter and asks nothing.
    let fixed = json!({ "fields": [
        { "to": "/email", "from": "/email", "required": true },
        { "to": "/company", "from": "/company_id", "default": "none" },
        { "to": "/stage", "from": "/lifecycle_stage",
          "values": { "lead": "New", "prospect": "Open", "customer": "Won" }, "otherwise": "Lost" },
    ]});
    assert!(set_mapping(&ws, "contacts", &fixed).await.status.success());
    sim.reset_counters();
    let summary =
        json_out(&weir_ok(&ws, &["deadletters", "retry", "t1", "contacts", "--json"]).await);
    assert_eq!(
        (
            &summary["records"],
            &summary["resolved"],
            &summary["failed"]
        ),
        (&json!(failed), &json!(failed), &json!(0))
    );
    assert_eq!(sim.counters().requests, 0);
    assert!(dead_letters(&ws, "t1.contacts").is_empty());
    let rows = mapped_rows(&ws, "t1.contacts");
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[live[0]]["company"], "none");
    assert_eq!(rows[&churned[0]]["stage"], "Lost");
    let listing = weir_ok(&ws, &["deadletters", "list", "t1", "contacts"]).await;
    assert!(listing.contains("no dead letters"), "{listing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_mapping_is_refused_with_its_exact_path_and_reason_and_nothing_is_saved() {
    let sim = simulator(1, 0).await;
    let ws = installed(&sim, None).await;
    let bad = json!({ "fields": [
        { "to": "/email", "from": "/email" },
        { "to": "/score", "from": "/score", "type": "int" },
    ]});
    let out = set_mapping(&ws, "contacts", &bad).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "error[mapping-invalid]: mapping of flow `contacts` for tenant `t1` refused at `fields[1].type`: `int` is not a type: use `string`, `number`, `integer`, `boolean`, `date` or `datetime`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: did you mean `integer`? (nothing was saved)"),
        "{stderr}"
    );

    let zone = json!({ "fields": [
        { "to": "/created", "from": "/created_at", "type": "date", "timezone": "Mars/Olympus" },
    ]});
    let out = set_mapping(&ws, "contacts", &zone).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refused at `fields[0].timezone`: `Mars/Olympus` is not a known time zone"),
        "{}",
        output_text(&out)
    );

    std::fs::write(ws.path().join("broken.json"), "{ \"fields\": [ ").unwrap();
    let out = ws
        .weir_async(&["map", "set", "t1", "contacts", "broken.json"])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not JSON"));

    let out = set_mapping(&ws, "nope", &json!({})).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[unknown-flow]"));

    let tenant = json_out(&weir_ok(&ws, &["tenants", "show", "t1"]).await);
    assert_eq!(tenant["flows"], json!({}), "nothing was saved");
    assert_eq!(sim.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_lists_required_fields_nobody_writes_and_preview_reads_a_first_page() {
    let source = simulator(50, 5).await;
    let destination = simulator(0, 0).await;
    let ws = installed(&source, Some(&destination)).await;
    let names_only = json!({ "fields": [
        { "to": "/first_name", "from": "/first_name" },
        { "to": "/last_name", "from": "/last_name" },
    ]});
    assert!(
        set_mapping(&ws, "mirror", &names_only)
            .await
            .status
            .success()
    );

    let check = json_out(&weir_ok(&ws, &["map", "check", "t1", "mirror", "--json"]).await);
    assert_eq!(check["destination"]["connection"], "t1.mirror");
    let unwritten = check["report"]["unwritten_required"].as_array().unwrap();
    assert_eq!(
        unwritten.len(),
        1,
        "only `email`: ids and versions are the partner's: {unwritten:?}"
    );
    assert_eq!(unwritten[0]["target"], "/email");
    assert_eq!(
        unwritten[0]["suggestion"],
        json!({ "to": "/email", "from": "/email" })
    );
    let text = weir_ok(&ws, &["map", "check", "t1", "mirror"]).await;
    assert!(
        text.contains("`/email`: the destination requires it, but no rule writes it")
            && text.contains(r#"add to `fields`: {"from":"/email","to":"/email"}"#),
        "{text}"
    );
    // Discovering schemas takes no request to either partner.
    assert_eq!(source.counters().requests, 0);

    // Nothing stored yet: the preview reads the source's first page.
    let preview = json_out(
        &weir_ok(
            &ws,
            &["map", "preview", "t1", "mirror", "-n", "3", "--json"],
        )
        .await,
    );
    let samples = preview["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    for sample in samples {
        assert_eq!(
            sample["mapped"],
            json!({ "first_name": sample["raw"]["first_name"], "last_name": sample["raw"]["last_name"] })
        );
    }
    assert_eq!(source.counters().route("GET /v1/contacts"), 1);
    assert_eq!(
        destination.counters().requests,
        0,
        "a preview writes nothing"
    );

    // For the store there is no destination schema: dropped fields and
    // what each rule writes.
    assert!(
        set_mapping(&ws, "contacts", &contact_mapping())
            .await
            .status
            .success()
    );
    let check = json_out(&weir_ok(&ws, &["map", "check", "t1", "contacts", "--json"]).await);
    assert_eq!(check["destination"], Value::Null);
    let dropped: Vec<&str> = check["report"]["dropped_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|gap| gap["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        dropped,
        ["/deleted", "/external_id", "/updated_at", "/version"]
    );
    assert_eq!(
        check["writes"][7],
        json!({ "rule": 7, "to": "/properties/score", "from": "/score", "writes": "string" })
    );
    assert_eq!(check["writes"][4]["writes"], "string, as the source has it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reapply_to_a_partner_updates_its_objects_in_place_and_reads_nothing() {
    let source = simulator(40, 5).await;
    let destination = simulator(0, 0).await;
    let ws = installed(&source, Some(&destination)).await;
    let copy = json!({ "fields": [
        { "to": "/email", "from": "/email", "required": true },
        { "to": "/first_name", "from": "/first_name" },
        { "to": "/last_name", "from": "/last_name" },
    ]});
    assert!(set_mapping(&ws, "mirror", &copy).await.status.success());
    weir_ok(&ws, &["sync", "mirror", "--tenant", "t1"]).await;
    assert_eq!(destination.records("contacts").len(), 40);

    let titled = json!({ "fields": [
        { "to": "/email", "from": "/email", "required": true },
        { "to": "/first_name", "from": "/first_name" },
        { "to": "/last_name", "from": "/last_name" },
        { "to": "/title", "const": "Customer" },
    ]});
    assert!(set_mapping(&ws, "mirror", &titled).await.status.success());
    source.reset_counters();
    destination.reset_counters();
    let summary = json_out(&weir_ok(&ws, &["map", "reapply", "t1", "mirror", "--json"]).await);
    assert_eq!(
        (&summary["written"], &summary["failed"]),
        (&json!(40), &json!(0))
    );
    assert_eq!(source.counters().requests, 0, "the source is never read");
    let writes = destination.counters().writes["contacts"];
    assert_eq!(
        (writes.created, writes.updated),
        (0, 40),
        "updated in place"
    );
    let mirrored = destination.records("contacts");
    assert_eq!(mirrored.len(), 40);
    assert!(mirrored.iter().all(|c| c["title"] == "Customer"));

    // The same mapping again: the same writes, recognised by their keys.
    destination.reset_counters();
    weir_ok(&ws, &["map", "reapply", "t1", "mirror"]).await;
    assert_eq!(destination.counters().idempotent_replays, 40);
    assert_eq!(destination.records("contacts").len(), 40);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_chaining_a_mapping_and_the_contact_mapper_transform_stores_the_transformed_shape() {
    let sim = simulator(120, 10).await;
    let ws = installed(&sim, None).await;
    // The tenant's mapping runs first: churned contacts are reopened as leads.
    let reopen = json!({
        "fields": [{ "to": "/lifecycle_stage", "from": "/lifecycle_stage",
                     "values": { "churned": "lead" }, "keep_unmatched": true }],
        "unmapped": "keep"
    });
    assert!(set_mapping(&ws, "crm", &reopen).await.status.success());
    weir_ok(&ws, &["sync", "crm", "--tenant", "t1"]).await;

    let rows = mapped_rows(&ws, "t1.crm");
    assert_eq!(rows.len(), 120);
    let stages = |stage: &str| {
        json!(match stage {
            "lead" | "churned" => "New",
            "prospect" => "Open",
            "customer" => "Won",
            other => panic!("stage {other}"),
        })
    };
    for contact in sim.records("contacts") {
        let row = &rows[contact["id"].as_str().unwrap()];
        let properties = &row["properties"];
        assert_eq!(row["source"], "weir-test");
        assert_eq!(properties["email"], contact["email"]);
        assert_eq!(
            properties["stage"],
            stages(contact["lifecycle_stage"].as_str().unwrap())
        );
        // `+1-555-123-4567` -> `+15551234567`: E.164, which no mapping writes.
        let digits: String = contact["phone"]
            .as_str()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        assert_eq!(properties["phone"], json!(format!("+{digits}")));
        let created = properties["created"].as_str().unwrap();
        assert_eq!(created.len(), 10, "a day: {created}");
    }
    assert!(dead_letters(&ws, "t1.crm").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_of_a_flow_run_without_a_tenant_are_listed_and_retried_by_its_name() {
    let sim = simulator(100, 0).await;
    let churned: Vec<String> = sim
        .records("contacts")
        .iter()
        .filter(|c| c["lifecycle_stage"] == "churned")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!churned.is_empty(), "the seed has churned contacts");
    let ws = workspace();
    let strict = r#"mapping = { fields = [{ to = "/email", from = "/email" }, { to = "/stage", from = "/lifecycle_stage", values = { lead = "New", prospect = "Open", customer = "Won" } }] }"#;
    let config = format!(
        "{}\n[flows.contacts]\nsource = \"acme\"\nstream = \"contacts\"\n{strict}\n",
        acme_connection("acme", &sim.base_url())
    );
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);
    weir_ok(&ws, &["sync", "contacts"]).await;
    assert_eq!(dead_letters(&ws, "contacts").len(), churned.len());

    let listed = json_out(&weir_ok(&ws, &["deadletters", "list", "contacts", "--json"]).await);
    let mut keys: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["source_key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    assert_eq!(keys, churned);
    let table = weir_ok(&ws, &["deadletters", "list", "contacts"]).await;
    assert!(
        table.contains(&churned[0]) && table.contains("weir deadletters retry contacts"),
        "{table}"
    );

    // weir.toml's mapping fixed: the retry delivers them, asking nothing.
    ws.write_config(&config.edit(
        "customer = \"Won\" }",
        "customer = \"Won\" }, otherwise = \"Lost\"",
    ));
    sim.reset_counters();
    let summary = json_out(&weir_ok(&ws, &["deadletters", "retry", "contacts", "--json"]).await);
    assert_eq!(summary["resolved"], json!(churned.len()), "{summary}");
    assert_eq!(sim.counters().requests, 0);
    assert!(dead_letters(&ws, "contacts").is_empty());
    assert_eq!(mapped_rows(&ws, "contacts")[&churned[0]]["stage"], "Lost");
    let listing = weir_ok(&ws, &["deadletters", "list", "contacts"]).await;
    assert!(
        listing.contains("flow `contacts`: no dead letters"),
        "{listing}"
    );
}
