use weir_tests::{acme_connection, guests, output_text};

use crate::stored::Stored;
use crate::{simulator, workspace};

fn two_accounts(source: &str, destination: &str, source_stream: &str) -> String {
    format!(
        r#"
{source_connection}
{destination_connection}
[flows.mirror]
source = "acme"
stream = "{source_stream}"
destination = {{ connection = "mirror", stream = "contacts" }}
"#,
        source_connection = acme_connection("acme", source),
        destination_connection = acme_connection("mirror", destination)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_flow_delivers_each_record_once_even_when_redone() {
    let source = simulator(300, 5).await;
    let destination = simulator(0, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&two_accounts(
            &source.base_url(),
            &destination.base_url(),
            "contacts",
        ));

    let out = ws.weir_async(&["sync", "mirror"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(destination.records("contacts").len(), 300);
    let links: i64 = ws.query_one("SELECT count(*) FROM id_links");
    assert_eq!(links, 300);

    // A crash after the partner accepted the writes but before Weir stored
    // the links: the same writes are sent again with the same keys.
    ws.store()
        .execute_batch("DELETE FROM id_links; DELETE FROM checkpoints;")
        .unwrap();
    let out = ws.weir_async(&["sync", "mirror"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        destination.records("contacts").len(),
        300,
        "no duplicates at the partner"
    );
    assert_eq!(destination.counters().idempotent_replays, 300);

    // A changed source record updates its counterpart rather than creating one.
    let changed = source.mutate("contacts", 10);
    destination.reset_counters();
    let out = ws.weir_async(&["sync", "mirror"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(destination.records("contacts").len(), 300);
    assert_eq!(destination.counters().route("PATCH /v1/contacts/{id}"), 10);
    let external: String = ws.query_one(&format!(
        "SELECT external_id FROM id_links WHERE source_key = '{}'",
        changed[0]
    ));
    let updated = destination.record("contacts", &external).unwrap();
    assert_eq!(
        updated["score"],
        source.record("contacts", &changed[0]).unwrap()["score"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_the_partner_refuses_go_to_dead_letters_and_the_run_goes_on() {
    let source = simulator(0, 40).await;
    let destination = simulator(0, 0).await;
    let ws = workspace();
    // Companies have no email: the destination refuses every one as a contact.
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&two_accounts(
            &source.base_url(),
            &destination.base_url(),
            "companies",
        ));

    let out = ws.weir_async(&["sync", "mirror"]).await;
    assert!(
        out.status.success(),
        "partial success is not a failed run: {}",
        output_text(&out)
    );
    let dead: i64 =
        ws.query_one("SELECT count(*) FROM dead_letters WHERE error_kind = 'permanent'");
    assert_eq!(dead, 40);
    let reason: String = ws.query_one("SELECT error FROM dead_letters LIMIT 1");
    assert!(reason.contains("email"), "{reason}");
    assert_eq!(ws.last_run(None).records_failed, 40);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("40"),
        "the summary shows the failures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_refresh_deletes_at_the_partner_what_the_source_deleted_without_telling() {
    let source = simulator(0, 30).await;
    let destination = simulator(0, 0).await;
    let ws = workspace();
    // Companies become contacts at the destination, `<id>@<domain>`.
    let config = two_accounts(&source.base_url(), &destination.base_url(), "companies")
        + r#"mapping = { fields = [{ to = "/email", concat = ["/id", "/domain"], separator = "@" }] }
"#;
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);
    ws.weir_ok(&["sync", "mirror"]).await;
    assert_eq!(destination.records("contacts").len(), 30);

    let gone = ["co_00004", "co_00017", "co_00029"];
    for id in gone {
        source.delete("companies", id).unwrap();
    }
    let external = |key: &str| -> String {
        ws.query_one(&format!(
            "SELECT external_id FROM id_links WHERE source_key = '{key}'"
        ))
    };
    let targets: Vec<String> = gone.iter().map(|key| external(key)).collect();
    // Acme CRM reports no company deletes: an incremental sync keeps them.
    ws.weir_ok(&["sync", "mirror"]).await;
    assert_eq!(destination.records("contacts").len(), 30);

    destination.reset_counters();
    ws.weir_ok(&["sync", "mirror", "--full-refresh"]).await;
    assert_eq!(destination.counters().route("DELETE /v1/contacts/{id}"), 3);
    let left: Vec<String> = destination
        .records("contacts")
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left.len(), 27, "the three are deleted at the destination");
    assert!(targets.iter().all(|t| !left.contains(t)));
    let deleted: i64 = ws.query_one("SELECT count(*) FROM records WHERE deleted = 1");
    assert_eq!(deleted, 3, "and in the local copy");

    // Nothing left to find: another full refresh deletes nothing more.
    destination.reset_counters();
    ws.weir_ok(&["sync", "mirror", "--full-refresh"]).await;
    assert_eq!(destination.counters().route("DELETE /v1/contacts/{id}"), 0);
    assert_eq!(destination.records("contacts").len(), 27);
}
