use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{get, ids, request, send, sim, sync};

fn position(record: &Value) -> (String, String) {
    let updated_at = record["updated_at"].as_str().unwrap().to_owned();
    (updated_at, record["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn pagination_covers_every_record_once_in_updated_at_then_id_order() {
    let sim = sim(2_500, 300).await;
    for (resource, limit) in [("contacts", 1000), ("companies", 7)] {
        let (records, _) = sync(&sim, resource, limit, None).await;
        let positions: Vec<_> = records.iter().map(position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{resource} out of order"
        );
        let expected: BTreeSet<String> = ids(&sim.records(resource)).into_iter().collect();
        assert_eq!(
            records.len(),
            expected.len(),
            "{resource}: each record once"
        );
        assert_eq!(ids(&records).into_iter().collect::<BTreeSet<_>>(), expected);
        // Seeded bulk updates share timestamps, so the order really needed the id.
        let times: BTreeSet<_> = positions.iter().map(|(at, _)| at).collect();
        assert!(
            times.len() < records.len(),
            "{resource} has updated_at ties"
        );
    }
}

#[tokio::test]
async fn cursor_after_the_last_page_returns_exactly_the_changes_since() {
    let sim = sim(3_000, 50).await;
    let (all, cursor) = sync(&sim, "contacts", 1000, None).await;
    assert_eq!(all.len(), 3_000);
    let cursor = cursor.expect("the last page has a cursor");

    let changed = sim.mutate("contacts", 100);
    let (since, next) = sync(&sim, "contacts", 1000, Some(cursor.clone())).await;
    assert_eq!(
        ids(&since),
        changed,
        "exactly the changed records, in change order"
    );
    for record in &since {
        let id = record["id"].as_str().unwrap();
        assert_eq!(Some(record), sim.record("contacts", id).as_ref());
    }

    // Nothing changed since: an empty page that keeps the client's place.
    let next = next.expect("a cursor");
    let (status, page) = get(&sim, &format!("/v1/contacts?cursor={next}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page,
        json!({"data": [], "next_cursor": next, "has_more": false})
    );
}

#[tokio::test]
async fn first_page_without_cursor_and_nothing_to_return_has_a_null_cursor() {
    let sim = sim(10, 2).await;
    let (status, page) = get(&sim, "/v1/contacts?updated_since=2030-01-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page,
        json!({"data": [], "next_cursor": null, "has_more": false})
    );
}

#[tokio::test]
async fn updated_since_keeps_records_updated_at_or_after_it() {
    let sim = sim(500, 10).await;
    let mut records = sim.records("contacts");
    records.sort_by_key(position);
    let since = records[200]["updated_at"].as_str().unwrap().to_owned();
    let expected = records
        .iter()
        .filter(|r| r["updated_at"].as_str().unwrap() >= since.as_str());

    let path = format!("/v1/contacts?limit=1000&updated_since={since}");
    let (status, page) = get(&sim, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(page["data"].as_array().unwrap()),
        ids(&expected.cloned().collect::<Vec<_>>())
    );
}

#[tokio::test]
async fn tombstones_are_listed_only_with_include_deleted() {
    let sim = sim(100, 10).await;
    let (_, cursor) = sync(&sim, "contacts", 1000, None).await;
    let cursor = cursor.unwrap();
    let (status, _) = send(request(&sim, Method::DELETE, "/v1/contacts/c_000007")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, hidden) = get(&sim, &format!("/v1/contacts?cursor={cursor}")).await;
    assert_eq!(hidden["data"], json!([]));
    assert_eq!(hidden["next_cursor"], json!(cursor));

    let (_, shown) = get(
        &sim,
        &format!("/v1/contacts?cursor={cursor}&include_deleted=true"),
    )
    .await;
    let tombstone = &shown["data"][0];
    assert_eq!(shown["data"].as_array().unwrap().len(), 1);
    assert_eq!(tombstone["id"], "c_000007");
    assert_eq!(tombstone["deleted"], true);
    let keys: BTreeSet<_> = tombstone.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["deleted", "id", "updated_at", "version"]
            .map(String::from)
            .into()
    );

    let (status, body) = get(&sim, "/v1/contacts/c_000007").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    assert_eq!(sim.records("contacts").len(), 99);
}

#[tokio::test]
async fn deleted_companies_just_stop_being_listed() {
    let sim = sim(10, 5).await;
    let (status, _) = send(request(&sim, Method::DELETE, "/v1/companies/co_00002")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = get(&sim, "/v1/companies?limit=1000").await;
    let ids: Vec<_> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(!ids.contains(&"co_00002".to_string()));
    let (status, body) = get(&sim, "/v1/companies?include_deleted=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("companies are deleted outright"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_list_parameters_are_refused_with_a_message() {
    let sim = sim(10, 2).await;
    for (query, mentions) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=bm9wZQ", "cursor"),
        ("updated_since=last-tuesday", "updated_since"),
        ("include_deleted=maybe", "include_deleted"),
    ] {
        let (status, body) = get(&sim, &format!("/v1/contacts?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(mentions),
            "{body}"
        );
    }
    // A contacts cursor means nothing to companies.
    let (_, page) = get(&sim, "/v1/contacts?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, _) = get(&sim, &format!("/v1/companies?cursor={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn external_id_lookup_finds_live_records_regardless_of_cursor() {
    let sim = sim(50, 5).await;
    sim.update(
        "contacts",
        "c_000003",
        json!({"external_id": "warehouse-9"}),
    )
    .unwrap();
    sim.update(
        "contacts",
        "c_000040",
        json!({"external_id": "warehouse-9"}),
    )
    .unwrap();
    let (_, cursor) = sync(&sim, "contacts", 1000, None).await;
    let path = format!(
        "/v1/contacts?external_id=warehouse-9&cursor={}",
        cursor.unwrap()
    );
    let (status, page) = get(&sim, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(page["data"].as_array().unwrap()),
        ["c_000003", "c_000040"]
    );

    sim.delete("contacts", "c_000003").unwrap();
    let (_, page) = get(&sim, "/v1/contacts?external_id=warehouse-9").await;
    assert_eq!(ids(page["data"].as_array().unwrap()), ["c_000040"]);
    let (_, page) = get(&sim, "/v1/contacts?external_id=nobody").await;
    assert_eq!(page["data"], json!([]));
}

#[tokio::test]
async fn same_seed_serves_the_same_bytes() {
    let (a, b) = (sim(300, 30).await, sim(300, 30).await);
    for path in ["/v1/contacts?limit=1000", "/v1/companies?limit=1000"] {
        assert_eq!(get(&a, path).await, get(&b, path).await);
    }
    assert_eq!(a.mutate("companies", 5), b.mutate("companies", 5));
}
