//! Logins cannot be flooded or guessed: failed logins are limited per account and per client
//! address (429 with Retry-After, audited), and a flood waits its turn instead of turning
//! other logins away.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Backend, TestApp, both, items};

async fn login(app: &TestApp, email: &str, password: &str) -> crate::support::Response {
    let body = json!({"tenant": "acme", "email": email, "password": password});
    app.call(Method::POST, "/api/v1/auth/login", None, Some(body))
        .await
}

both!(
    an_account_is_throttled_after_repeated_failures,
    |app: TestApp| async move {
        let (_, admin) = app.tenant("acme").await;
        let password = "the right password 42";
        for email in ["ana@acme.example", "bo@acme.example"] {
            let user = json!({"email": email, "password": password, "role": "analyst"});
            app.post("/api/v1/users", &admin, user).await;
        }
        for n in 0..=vigil_service::LOGIN_FAILURES_PER_ACCOUNT_BURST {
            let wrong = login(&app, "ana@acme.example", &format!("guess {n:08}")).await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "guess {n}");
        }
        let throttled = login(&app, "ANA@acme.example", password).await;
        assert_eq!(
            throttled.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{:?}",
            throttled.body
        );
        let wait: u64 = throttled.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(throttled.body["type"], "urn:vigil:problem:throttled");
        assert_eq!(
            login(&app, "bo@acme.example", password).await.status,
            StatusCode::OK,
            "another account is not affected"
        );
        let trail = app.get("/api/v1/audit?entity_type=login", &admin).await;
        let events = items(&trail);
        assert_eq!(events.len(), 1, "audited once, when the limit is reached");
        assert_eq!(events[0]["action"], "login.throttle");
        assert_eq!(events[0]["entity_id"], "ana@acme.example");
        assert_eq!(events[0]["after"]["limit"], "account");
    }
);

/// Many logins at once, most of them wrong: every one is answered (401 or 200), none is
/// turned away with 503 because the hashing slots are busy.
#[tokio::test]
async fn a_flood_of_logins_waits_its_turn() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (_, admin) = app.tenant("acme").await;
    let password = "the right password 42";
    let user = json!({"email": "ana@acme.example", "password": password, "role": "analyst"});
    app.post("/api/v1/users", &admin, user).await;
    let app = std::sync::Arc::new(app);
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..48 {
        let app = std::sync::Arc::clone(&app);
        calls.spawn(async move {
            let (email, pass) = if n % 4 == 0 {
                ("ana@acme.example".to_owned(), password.to_owned())
            } else {
                (
                    format!("nobody{n}@acme.example"),
                    "wrong password 000".to_owned(),
                )
            };
            (n % 4 == 0, login(&app, &email, &pass).await.status)
        });
    }
    while let Some(joined) = calls.join_next().await {
        let (right, status) = joined.unwrap();
        let expected = if right {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected);
    }
}

/// The per-address limit needs the peer address, so this one runs on a real socket.
#[tokio::test]
async fn an_address_is_throttled_across_accounts() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::new(Backend::Sqlite).await;
    app.tenant("acme").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(vigil_api::serve(
        listener,
        app.state.clone(),
        std::future::pending(),
    ));
    let attempt = |n: u32| async move {
        let body = json!({"tenant": "acme", "email": format!("user{n}@acme.example"), "password": "wrong password 000"}).to_string();
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: vigil\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    };
    for n in 0..=vigil_service::LOGIN_FAILURES_PER_ADDRESS_BURST {
        let answer = attempt(n).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "attempt {n}: {answer}");
    }
    let answer = attempt(999).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after:"),
        "{answer}"
    );
}
