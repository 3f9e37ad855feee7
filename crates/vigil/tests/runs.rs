//! A run in flight when its process is killed: after a restart it is failed (interrupted),
//! never left `running`. The real binary, killed with SIGKILL mid-request.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `vigil serve`, killed when dropped (a failing test leaves no server behind).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, log: &Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            command.env_remove(key);
        }
    }
    command
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("VIGIL_OUTBOUND_ALLOW", "127.0.0.0/8")
        .env("VIGIL_NODE_ID", "node-crash")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("create the log file"))
        .spawn()
        .map(Server)
        .expect("start vigil serve")
}

/// The address the server logged it listens on.
async fn listening(log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["message"] == "listening");
        if let Some(line) = found {
            return format!("http://{}", line["address"].as_str().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "the server did not listen: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn call(method: reqwest::Method, url: &str, key: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("call vigil");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// A server that accepts connections and never answers.
async fn hanging() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

/// A tenant key, and the URL of a run that is running (its request hanging) on `base`.
async fn hanging_run(base: &str, admin: &str) -> (String, String) {
    use reqwest::Method;
    let tenant = call(
        Method::POST,
        &format!("{base}/api/v1/tenants"),
        admin,
        Some(json!({"slug": "acme"})),
    )
    .await;
    let id = tenant["id"].as_str().unwrap();
    let key = call(
        Method::POST,
        &format!("{base}/api/v1/tenants/{id}/api-keys"),
        admin,
        Some(json!({"name": "ops", "role": "tenant-admin"})),
    )
    .await;
    let key = key["key"].as_str().unwrap();
    call(
        Method::PUT,
        &format!("{base}/api/v1/apps/slow"),
        key,
        Some(json!({"version": "1.0.0"})),
    )
    .await;
    call(
        Method::PUT,
        &format!("{base}/api/v1/apps/slow/tasks/hang"),
        key,
        Some(json!({"input_schema": {"type": "object"},
            "request": {"method": "GET", "path": "/hang"}, "timeout_ms": 120000})),
    )
    .await;
    let instance = call(
        Method::POST,
        &format!("{base}/api/v1/instances"),
        key,
        Some(json!({"app": "slow", "name": "hang", "base_url": hanging().await})),
    )
    .await;
    let run = call(
        Method::POST,
        &format!("{base}/api/v1/apps/slow/tasks/hang/runs"),
        key,
        Some(json!({"instance": instance["id"]})),
    )
    .await;
    let run_url = format!("{base}/api/v1/runs/{}", run["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(Method::GET, &run_url, key, None).await["status"] != "running" {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    (key.to_owned(), run_url)
}

#[tokio::test]
async fn a_run_killed_mid_request_is_failed_as_interrupted_after_a_restart() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve-1.log");
    let child = start(dir.path(), &log);
    let base = listening(&log).await;
    let admin = std::fs::read_to_string(dir.path().join("initial-admin-key")).unwrap();
    let (key, run_url) = hanging_run(&base, admin.trim()).await;
    let key = key.as_str();
    // SIGKILL: no drain, no chance to write the run's end.
    drop(child);
    let log = dir.path().join("serve-2.log");
    let child = start(dir.path(), &log);
    let base = listening(&log).await;
    let run_url = run_url.replace(run_url.split("/api/").next().unwrap(), &base);
    let deadline = Instant::now() + Duration::from_secs(20);
    let read = loop {
        let read = call(Method::GET, &run_url, key, None).await;
        if read["status"] != "running" {
            break read;
        }
        assert!(
            Instant::now() < deadline,
            "the run is still running: {read}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(read["status"], "failed", "{read}");
    assert_eq!(read["error"], "interrupted: the process running it stopped");
    assert_eq!(read["steps"][0]["status"], "failed");
    assert!(read["finished_at"].is_string());
    drop(child);
}
