//! The TAXII connector against a real TAXII 2.1 server: OASIS `medallion` (PyPI), which
//! `scripts/test` installs into `target/test-venv` and names in `VIGIL_TEST_MEDALLION`.
//! Without it the test says it was skipped, except under `CI=true`, where it fails.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Setup, cursor_of, cycle, dead_letter_ids, indicators};
use serde_json::{Value, json};
use vigil_domain::{ConnectorKind, Severity, Timestamp, Tlp};

const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
const PASSWORD: &str = "taxii-pass-Wm38";
/// medallion's page size in this test's configuration.
const SERVER_PAGE: usize = 100;
const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// A medallion process, killed when dropped.
struct Medallion {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn medallion_bin() -> Option<String> {
    match std::env::var("VIGIL_TEST_MEDALLION") {
        Ok(path) if !path.is_empty() => Some(path),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("VIGIL_TEST_MEDALLION is not set; scripts/test installs medallion")
        }
        _ => {
            eprintln!("skipped: VIGIL_TEST_MEDALLION is not set (scripts/test installs medallion)");
            None
        }
    }
}

fn stamp(micros: i64) -> String {
    Timestamp::from_unix_micros(micros).to_string()
}

const BASE: i64 = 1_706_745_600_000_000; // 2024-02-01

fn ip_indicator(n: usize, modified: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
        "created": "2024-01-01T00:00:00.000Z", "modified": modified,
        "pattern": format!("[ipv4-addr:value = '10.2.{}.{}']", n / 200, n % 200),
        "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
    })
}

/// 250 IPv4 indicators added in groups of 7 per second (so one group straddles each page
/// boundary), then a TLP:GREEN identity, a YARA indicator and one with a pattern Vigil
/// cannot match.
fn collection_objects() -> Vec<(Value, String)> {
    let mut objects: Vec<(Value, String)> = (0..250)
        .map(|n| {
            let added = stamp(BASE + (n as i64 / 7) * 1_000_000);
            (ip_indicator(n, "2024-01-01T00:00:00.000Z"), added)
        })
        .collect();
    let late = stamp(BASE + 3_600_000_000);
    objects.push((json!({"type": "identity", "spec_version": "2.1", "id": "identity--00000000-0000-4000-8000-000000000001",
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "Feed"}), late.clone()));
    let mut green = ip_indicator(900, "2024-01-01T00:00:00.000Z");
    green["object_marking_refs"] =
        json!(["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]);
    objects.push((green, late.clone()));
    let mut yara = ip_indicator(901, "2024-01-01T00:00:00.000Z");
    yara["pattern_type"] = json!("yara");
    yara["pattern"] = json!("rule x { condition: true }");
    objects.push((yara, late.clone()));
    let mut and = ip_indicator(902, "2024-01-01T00:00:00.000Z");
    and["pattern"] = json!("[file:name = 'a.exe' AND file:size = 3]");
    objects.push((and, late));
    objects
}

fn start() -> Option<Medallion> {
    let bin = medallion_bin()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let objects = collection_objects();
    let manifest: Vec<Value> = objects
        .iter()
        .map(|(object, added)| {
            json!({"id": object["id"], "date_added": added,
            "version": object["modified"], "media_type": "application/stix+json;version=2.1"})
        })
        .collect();
    let data = json!({
        "/discovery": {"title": "Vigil test", "description": "local", "contact": "none",
            "default": format!("{url}/api1/"), "api_roots": [format!("{url}/api1/")]},
        "api1": {
            "information": {"title": "API 1", "description": "test root",
                "versions": [MEDIA_TYPE], "max_content_length": 9_765_625},
            "status": [],
            "collections": [{"id": COLLECTION, "title": "IOCs", "description": "test",
                "can_read": true, "can_write": true,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objects.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>(),
                "manifest": manifest}]
        }
    });
    let data_path = dir.path().join("data.json");
    std::fs::write(&data_path, data.to_string()).unwrap();
    let config = json!({
        "backend": {"module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend", "filename": data_path},
        "users": {"vigil": PASSWORD},
        "taxii": {"max_page_size": SERVER_PAGE}
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let child = Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {bin}: {err}"));
    Some(Medallion {
        child,
        url,
        _dir: dir,
    })
}

/// Waits until medallion answers its discovery document.
async fn ready(server: &Medallion) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        let answer = http
            .get(format!("{}/taxii2/", server.url))
            .basic_auth("vigil", Some(PASSWORD))
            .header("accept", MEDIA_TYPE)
            .send()
            .await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("medallion did not come up at {}", server.url);
}

/// Adds objects through the TAXII API, as a feed producer would.
async fn publish(server: &Medallion, objects: Vec<Value>) {
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/api1/collections/{COLLECTION}/objects/",
            server.url
        ))
        .basic_auth("vigil", Some(PASSWORD))
        .header("accept", MEDIA_TYPE)
        .header("content-type", MEDIA_TYPE)
        .body(json!({"objects": objects}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202, "{:?}", answer.text().await);
}

/// A new, revoked version of indicator 3 and two new indicators.
async fn publish_changes(server: &Medallion) {
    let mut revoked = ip_indicator(3, "2025-06-01T00:00:00.000Z");
    revoked["revoked"] = json!(true);
    publish(
        server,
        vec![
            revoked,
            ip_indicator(700, "2025-06-01T00:00:00.000Z"),
            ip_indicator(701, "2025-06-01T00:00:00.000Z"),
        ],
    )
    .await;
}

/// A connector configured as TAXII clients are: the discovery URL, the API root as discovery
/// lists it, the collection's id.
async fn setup(server: &Medallion, password: &str) -> Setup {
    let root = format!("{}/api1/", server.url);
    setup_with(server, password, &root, COLLECTION).await
}

async fn setup_with(server: &Medallion, password: &str, root: &str, collection: &str) -> Setup {
    common::setup(
        ConnectorKind::Taxii,
        &format!("{}/taxii2/", server.url),
        Severity::High,
        &[("api_root", root), ("collection", collection)],
        &[("username", "vigil"), ("password", password)],
    )
    .await
}

#[tokio::test]
async fn a_medallion_collection_syncs_page_by_page_then_only_what_was_added() {
    let Some(server) = start() else { return };
    ready(&server).await;
    let setup = setup(&server, PASSWORD).await;
    let first = cycle(&setup).await;
    assert!(!first.failed(), "{first:?}");
    assert_eq!(first.created, 251, "250 plus the TLP:GREEN one: {first:?}");
    assert_eq!(
        (first.skipped, first.dead_lettered),
        (2, 1),
        "identity and YARA; the AND pattern: {first:?}"
    );
    let catalogue = indicators(&setup).await;
    assert_eq!(
        catalogue.len(),
        251,
        "nothing duplicated across the page boundaries"
    );
    let green = catalogue
        .iter()
        .find(|i| i.value.as_str() == "10.2.4.100")
        .unwrap();
    assert_eq!(green.tlp, Tlp::Green);
    assert_eq!(green.source.as_ref().unwrap().as_str(), "taxii");
    assert_eq!(
        dead_letter_ids(&setup).await,
        ["indicator--00000000-0000-4000-8000-000000000902"]
    );
    let cursor = cursor_of(&setup).await.unwrap();
    assert!(
        cursor.starts_with("added_after:2024-02-01T00:59:59.999999Z"),
        "{cursor}"
    );

    let again = cycle(&setup).await;
    assert_eq!(
        (again.created, again.updated, again.dead_lettered),
        (0, 0, 1),
        "{again:?}"
    );
    assert!(
        again.unchanged <= 2,
        "only the objects added at the checkpoint are read again: {again:?}"
    );

    publish_changes(&server).await;
    let third = cycle(&setup).await;
    assert!(!third.failed(), "{third:?}");
    assert_eq!((third.created, third.updated), (2, 1), "{third:?}");
    let catalogue = indicators(&setup).await;
    assert_eq!(catalogue.len(), 253);
    assert!(
        !catalogue
            .iter()
            .find(|i| i.value.as_str() == "10.2.0.3")
            .unwrap()
            .active,
        "a new revoked version switches the entry off"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_never_echoed() {
    let Some(server) = start() else { return };
    ready(&server).await;
    let wrong = setup(&server, "not-it-Rt55").await;
    let report = cycle(&wrong).await;
    assert!(report.failed());
    assert!(report.errors[0].contains("401"), "{:?}", report.errors);
    assert!(!report.errors[0].contains("not-it-Rt55"));
    assert!(indicators(&wrong).await.is_empty(), "no data");
}

#[tokio::test]
async fn the_api_root_and_collection_may_be_named_by_title() {
    let Some(server) = start() else { return };
    ready(&server).await;
    let setup = setup_with(&server, PASSWORD, "API 1", "IOCs").await;
    let report = cycle(&setup).await;
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.created, 251);
    let unknown = setup_with(&server, PASSWORD, "API 9", "IOCs").await;
    let report = cycle(&unknown).await;
    assert!(
        report.errors[0].contains("`api_root`") && report.errors[0].contains("/api1/"),
        "names what the server lists: {:?}",
        report.errors
    );
}

/// `PUT /api/v1/connectors/{name}` checks a TAXII configuration against the server: what the
/// server does not offer is a 422 that lists what it does.
#[tokio::test]
async fn a_taxii_connector_is_checked_against_its_server_when_saved() {
    use axum::http::{Method, StatusCode};
    let Some(server) = start() else { return };
    ready(&server).await;
    let edge = common::edge::Edge::new().await;
    let (_, admin) = edge.tenant("acme").await;
    let body = |root: &str, collection: &str, password: &str| {
        json!({"kind": "taxii", "url": format!("{}/taxii2/", server.url),
            "credentials": {"username": "vigil", "password": password},
            "options": {"api_root": root, "collection": collection}})
    };
    let root = format!("{}/api1/", server.url);
    let put = |body: Value| edge.call(Method::PUT, "/api/v1/connectors/feed", &admin, Some(body));
    let (status, answer) = put(body(&root, "no-such", PASSWORD)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let reason = answer["errors"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(COLLECTION) && reason.contains("IOCs"),
        "lists what it offers: {reason}"
    );
    let (status, answer) = put(body(
        "https://elsewhere.example/api1/",
        COLLECTION,
        PASSWORD,
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&root),
        "{answer}"
    );
    let (status, answer) = put(body(&root, COLLECTION, "wrong-pass-1")).await;
    assert_eq!(
        (status, answer["errors"][0]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("credentials")),
        "{answer}"
    );
    assert!(!answer.to_string().contains("wrong-pass-1"));
    let (status, answer) = put(body(&root, "IOCs", PASSWORD)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}
