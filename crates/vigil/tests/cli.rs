//! End-to-end tests of the `vigil` binary: each runs it as a process against a fresh data
//! directory, with no `VIGIL_*` setting inherited from the developer's environment.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// `vigil --data-dir DIR`, with every inherited `VIGIL_*` variable removed.
fn command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            command.env_remove(key);
        }
    }
    command.arg("--data-dir").arg(dir).stdin(Stdio::null());
    command
}

fn vigil(dir: &Path, args: &[&str]) -> Output {
    vigil_env(dir, &[], args)
}

fn vigil_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run vigil")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit status `code` and parses stdout as JSON.
fn json(output: &Output, code: i32) -> Value {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn data_dir() -> TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// Creates tenant `slug` and `n_keys` tenant keys in it: `n_keys` events in its audit chain.
fn tenant_with_keys(dir: &Path, slug: &str, n_keys: usize) {
    json(&vigil(dir, &["tenant", "create", slug]), 0);
    for _ in 0..n_keys {
        let args = ["apikey", "create", "--tenant", slug, "--role", "analyst"];
        json(&vigil(dir, &args), 0);
    }
}

/// Runs one SQL statement against the data directory's SQLite file, as an intruder would.
fn tamper(dir: &Path, statement: &str) {
    let connection =
        rusqlite::Connection::open(dir.join("vigil.db")).expect("open the SQLite store");
    let changed = connection.execute(statement, []).expect("tamper");
    assert_eq!(changed, 1, "{statement}");
}

/// The breaks `audit verify --tenant SLUG` reports as (kind, seq), with exit status 1.
fn verify_breaks(dir: &Path, slug: &str) -> Vec<(String, i64)> {
    let report = json(&vigil(dir, &["audit", "verify", "--tenant", slug]), 1);
    assert_eq!(report["ok"], false);
    report["chains"][0]["breaks"]
        .as_array()
        .expect("breaks")
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().expect("kind").to_owned(),
                b["seq"].as_i64().expect("seq"),
            )
        })
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `vigil serve` on an ephemeral port, its stderr going to `log`.
fn start_serve(dir: &Path, log: &Path) -> Child {
    command(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("create the log file"))
        .spawn()
        .expect("start vigil serve")
}

/// Stops the server with SIGTERM and waits for it to exit.
fn stop_serve(mut child: Child) -> ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    child.wait().expect("wait for vigil serve")
}

#[test]
fn tenant_create_prints_the_tenant_as_json() {
    let dir = data_dir();
    let args = ["tenant", "create", "acme", "--name", "Acme Corp"];
    let tenant = json(&vigil(dir.path(), &args), 0);
    assert_eq!(tenant["slug"], "acme");
    assert_eq!(tenant["name"], "Acme Corp");
    assert!(tenant["id"].as_str().is_some_and(|id| !id.is_empty()));

    let listed = json(&vigil(dir.path(), &["tenant", "list"]), 0);
    assert_eq!(listed[0]["id"], tenant["id"]);
}

#[test]
fn apikey_create_prints_the_key_once_and_list_never_shows_it() {
    let dir = data_dir();
    json(&vigil(dir.path(), &["tenant", "create", "acme"]), 0);
    let args = [
        "apikey",
        "create",
        "--tenant",
        "acme",
        "--role",
        "tenant-admin",
    ];
    let created = json(&vigil(dir.path(), &args), 0);
    let key = created["key"].as_str().expect("key");
    assert!(key.starts_with("vgl_"), "{key}");

    let listed = vigil(dir.path(), &["apikey", "list", "--tenant", "acme"]);
    let keys = json(&listed, 0);
    assert_eq!(keys[0]["id"], created["id"], "every key, as one array");
    assert!(!stdout(&listed).contains(key));
    assert!(!stderr(&listed).contains(key));
}

#[test]
fn invalid_slug_fails_with_exit_2_and_names_the_problem() {
    let dir = data_dir();
    let output = vigil(dir.path(), &["tenant", "create", "Not Valid"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("slug"), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
}

#[test]
fn audit_verify_passes_on_an_untouched_store() {
    let dir = data_dir();
    tenant_with_keys(dir.path(), "acme", 2);
    let report = json(&vigil(dir.path(), &["audit", "verify"]), 0);
    assert_eq!(report["ok"], true);
    // The platform's chain and acme's.
    assert_eq!(report["chains"].as_array().map(Vec::len), Some(2));
}

#[test]
fn audit_verify_exits_1_and_names_the_event_after_tampering() {
    let dir = data_dir();
    tenant_with_keys(dir.path(), "acme", 2);
    tenant_with_keys(dir.path(), "globex", 3);
    let in_tenant =
        |slug: &str| format!("tenant_id = (SELECT id FROM tenants WHERE slug = '{slug}')");

    tamper(
        dir.path(),
        &format!(
            "UPDATE audit_events SET actor = 'intruder' WHERE seq = 1 AND {}",
            in_tenant("acme")
        ),
    );
    assert_eq!(
        verify_breaks(dir.path(), "acme"),
        [("edited".to_owned(), 1)]
    );

    tamper(
        dir.path(),
        &format!(
            "DELETE FROM audit_events WHERE seq = 2 AND {}",
            in_tenant("globex")
        ),
    );
    assert_eq!(
        verify_breaks(dir.path(), "globex"),
        [("missing".to_owned(), 3)]
    );

    // Verifying everything fails too.
    let report = json(&vigil(dir.path(), &["audit", "verify"]), 1);
    assert_eq!(report["ok"], false);
}

#[test]
fn migrate_creates_the_store_and_is_idempotent() {
    let dir = data_dir();
    for _ in 0..2 {
        let migrated = json(&vigil(dir.path(), &["migrate"]), 0);
        assert_eq!(migrated["migrated"], true);
        assert!(dir.path().join("vigil.db").is_file());
    }
}

#[test]
fn invalid_listen_address_names_the_setting() {
    let dir = data_dir();
    let output = vigil_env(
        dir.path(),
        &[("VIGIL_LISTEN", "not-an-address")],
        &["serve"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("listen"), "{}", stderr(&output));

    let url = ("VIGIL_DATABASE_URL", "mysql://u:secretpw@h/db");
    let output = vigil_env(dir.path(), &[url], &["migrate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("VIGIL_DATABASE_URL"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("secretpw"));
    assert!(!stdout(&output).contains("secretpw"));

    let config = dir.path().join("vigil.toml");
    std::fs::write(&config, "lisen = \"127.0.0.1:9000\"\n").expect("write the config file");
    let output = vigil(
        dir.path(),
        &["--config", config.to_str().expect("UTF-8"), "migrate"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown field `lisen`"),
        "{}",
        stderr(&output)
    );

    // A malformed line holding a secret is located, never quoted.
    std::fs::write(
        &config,
        "log = \"info\"\njwt_secret = \"hunter2-hunter2-hunter2-hunter2-xx\n",
    )
    .expect("write the config file");
    let output = vigil(
        dir.path(),
        &["--config", config.to_str().expect("UTF-8"), "migrate"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("line 2"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
}

#[test]
fn serve_writes_the_initial_admin_key_privately_and_never_logs_it() {
    let dir = data_dir();
    let key_file = dir.path().join("initial-admin-key");
    let log = dir.path().join("serve-1.log");
    let child = start_serve(dir.path(), &log);
    // SIGTERM as soon as the key exists: even before it listens, the server stops cleanly.
    wait_for("the initial admin key", || key_file.exists());
    let status = stop_serve(child);
    assert!(status.success(), "{status}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("stat the key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let key = std::fs::read_to_string(&key_file).expect("read the key file");
    let key = key.trim();
    assert!(key.starts_with("vgl_"), "{key}");
    let logged = std::fs::read_to_string(&log).expect("read the log");
    assert!(logged.contains("initial-admin-key"), "{logged}");
    assert!(!logged.contains(key));
    assert!(logged.contains("\"stopped\""), "{logged}");

    // A second start finds the key and makes no other.
    let log = dir.path().join("serve-2.log");
    let child = start_serve(dir.path(), &log);
    wait_for("the server to listen", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("\"listening\""))
    });
    let status = stop_serve(child);
    assert!(status.success(), "{status}");
    let again = std::fs::read_to_string(&key_file).expect("read the key file");
    assert_eq!(again.trim(), key);
    let logged = std::fs::read_to_string(&log).expect("read the log");
    assert!(!logged.contains("initial-admin-key"), "{logged}");
}

#[test]
fn user_create_reads_the_password_from_the_environment() {
    let dir = data_dir();
    json(&vigil(dir.path(), &["tenant", "create", "acme"]), 0);
    let password = "correct horse battery staple";
    let args = [
        "user",
        "create",
        "--tenant",
        "acme",
        "--email",
        "ana@acme.example",
        "--role",
        "analyst",
    ];
    let output = vigil_env(dir.path(), &[("VIGIL_USER_PASSWORD", password)], &args);
    let user = json(&output, 0);
    assert_eq!(user["email"], "ana@acme.example");
    assert!(!stdout(&output).contains(password));
    assert!(!stderr(&output).contains(password));

    let args = [
        "user",
        "create",
        "--tenant",
        "acme",
        "--email",
        "bo@acme.example",
        "--role",
        "analyst",
    ];
    let output = vigil_env(dir.path(), &[("VIGIL_USER_PASSWORD", "short")], &args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("password"), "{}", stderr(&output));
}

#[test]
fn sync_runs_once_and_says_what_it_needs() {
    let dir = data_dir();
    let without_once = vigil(dir.path(), &["sync", "run"]);
    assert_eq!(
        without_once.status.code(),
        Some(2),
        "{}",
        stderr(&without_once)
    );
    assert!(
        stderr(&without_once).contains("--once"),
        "{}",
        stderr(&without_once)
    );
    let nothing = json(&vigil(dir.path(), &["sync", "run", "--once"]), 0);
    assert_eq!(nothing, serde_json::json!([]), "no connector, no report");
    let unknown = vigil(dir.path(), &["sync", "run", "--once", "--source", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no connector named nope"),
        "{}",
        stderr(&unknown)
    );
    let key = dir.path().join("master-key");
    let text = std::fs::read_to_string(&key).expect("the master key was generated");
    assert_eq!(text.trim().len(), 64, "32 bytes as hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let bad = vigil_env(
        dir.path(),
        &[("VIGIL_MASTER_KEY_FILE", "/nonexistent/key")],
        &["sync", "run", "--once"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("VIGIL_MASTER_KEY_FILE"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn connectors_in_the_config_file_are_applied_once_and_sealed() {
    let dir = data_dir();
    json(&vigil(dir.path(), &["tenant", "create", "acme"]), 0);
    let config = dir.path().join("vigil.toml");
    let secret = "toml-hive-key-Pz4";
    std::fs::write(
        &config,
        format!(
            "[[connectors]]\ntenant = \"acme\"\nname = \"hive\"\nkind = \"thehive\"\n\
             url = \"https://hive.example\"\nenabled = false\n\
             credentials = {{ api_key = \"{secret}\" }}\noptions = {{ organisation = \"SOC\" }}\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let events = |dir: &Path| {
        let report = json(&vigil(dir, &["audit", "verify", "--tenant", "acme"]), 0);
        report.to_string()
    };
    let before = events(dir.path());
    let run = vigil(dir.path(), &["--config", config, "sync", "run", "--once"]);
    assert_eq!(
        json(&run, 0),
        serde_json::json!([]),
        "disabled: applied, not run"
    );
    assert!(!stdout(&run).contains(secret) && !stderr(&run).contains(secret));
    let after_first = events(dir.path());
    assert_ne!(
        before, after_first,
        "the connector was created (an audit event)"
    );
    json(
        &vigil(dir.path(), &["--config", config, "sync", "run", "--once"]),
        0,
    );
    assert_eq!(
        events(dir.path()),
        after_first,
        "re-applying the same file changes nothing"
    );
    let db = std::fs::read(dir.path().join("vigil.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "sealed at rest"
    );
    named_disabled_connector_runs_under_the_default_policy(dir.path());

    std::fs::write(dir.path().join("bad.toml"), "[[connectors]]\ntenant = \"nope\"\nname = \"hive\"\nkind = \"thehive\"\nurl = \"https://h.example\"\n").unwrap();
    let bad = vigil(
        dir.path(),
        &[
            "--config",
            dir.path().join("bad.toml").to_str().unwrap(),
            "sync",
            "run",
            "--once",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("connector \"hive\" of tenant \"nope\""),
        "{}",
        stderr(&bad)
    );
}

/// `--source NAME` runs a disabled connector too (disabled means not scheduled), and the
/// binary's default outbound policy refuses a source on loopback before any connection.
fn named_disabled_connector_runs_under_the_default_policy(dir: &Path) {
    let config = dir.join("loopback.toml");
    std::fs::write(
        &config,
        "[[connectors]]\ntenant = \"acme\"\nname = \"hive\"\nkind = \"thehive\"\n\
         url = \"http://127.0.0.1:9\"\nenabled = false\n\
         credentials = { api_key = \"k\" }\noptions = { organisation = \"SOC\" }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let args = [
        "--config", config, "sync", "run", "--once", "--source", "hive",
    ];
    let run = vigil(dir, &args);
    let reports = json(&run, 1);
    assert_eq!(reports.as_array().map(Vec::len), Some(1), "{reports}");
    assert!(
        reports[0]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("refused by the outbound policy: a loopback address")),
        "{reports}"
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory is 0700 and the database with its `-wal` and `-shm` 0600, even when
/// someone else made the directory first with a looser mode.
#[cfg(unix)]
#[test]
fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = data_dir();
    let data = dir.path().join("made-by-someone-else");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("serve.log");
    let child = start_serve(&data, &log);
    wait_for("the server to listen", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("\"listening\""))
    });
    assert_eq!(mode(&data), 0o700);
    for file in ["vigil.db", "vigil.db-wal", "vigil.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert!(stop_serve(child).success());
}

/// The first platform-admin key expires (`VIGIL_INITIAL_ADMIN_KEY_TTL_SECONDS`), and its file
/// is removed once it no longer works.
#[test]
fn the_initial_admin_key_expires_and_its_file_goes() {
    let dir = data_dir();
    let key_file = dir.path().join("initial-admin-key");
    let log = dir.path().join("serve.log");
    let mut serve = command(dir.path());
    serve
        .env("VIGIL_INITIAL_ADMIN_KEY_TTL_SECONDS", "4")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap());
    let child = serve.spawn().unwrap();
    wait_for("the initial admin key", || key_file.exists());
    assert!(stop_serve(child).success());
    json(&vigil(dir.path(), &["tenant", "list"]), 0);
    assert!(key_file.exists(), "kept while the key works");
    std::thread::sleep(Duration::from_millis(4_200));
    json(&vigil(dir.path(), &["tenant", "list"]), 0);
    assert!(!key_file.exists(), "an expired key's file is removed");
}

#[test]
fn a_password_in_database_url_on_the_command_line_is_refused() {
    let dir = data_dir();
    let url = "postgres://vigil:s3cret-pw@127.0.0.1:5432/test";
    let output = vigil(dir.path(), &["--database-url", url, "migrate"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("VIGIL_DATABASE_URL"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("s3cret-pw"),
        "{}",
        stderr(&output)
    );
}

/// A bundle of one app with two tasks, the second depending on the first.
fn bundle_text() -> String {
    use vigil_automation::{Bundle, BundleApp, BundleTask};
    let task = |depends_on: Value| {
        serde_json::from_value(serde_json::json!({"description": null,
            "input_schema": {"type": "object"}, "request": {"method": "GET", "path": "/x"},
            "outputs": [{"name": "v", "path": "$.v", "kind": "scalar", "type": "any"}],
            "depends_on": depends_on, "timeout_ms": 1000}))
        .unwrap()
    };
    let app = BundleApp {
        name: "lookup".into(),
        definition: serde_json::from_value(serde_json::json!({"version": "1.0.0",
            "description": null, "category": null, "base_url_required": true,
            "config_schema": {"type": "object", "properties": {"key": {"type": "string", "writeOnly": true}}}}))
        .unwrap(),
        secret_fields: vec!["key".into()],
        logo: None,
        tasks: vec![
            BundleTask { name: "a".into(), definition: task(serde_json::json!([])) },
            BundleTask { name: "b".into(), definition: task(serde_json::json!(["lookup/a"])) },
        ],
    };
    Bundle::new("2026-12-04T00:00:00Z".into(), vec![app]).to_canonical()
}

#[test]
fn apps_move_between_tenants_through_bundle_files() {
    let dir = data_dir();
    json(&vigil(dir.path(), &["tenant", "create", "acme"]), 0);
    json(&vigil(dir.path(), &["tenant", "create", "globex"]), 0);
    let file = dir.path().join("in.json");
    std::fs::write(&file, bundle_text()).unwrap();
    let file = file.to_str().unwrap();
    let done = json(
        &vigil(dir.path(), &["apps", "import", file, "--tenant", "acme"]),
        0,
    );
    assert_eq!(done["applied"], true, "{done}");
    assert_eq!(done["apps"][0]["change"], "create");

    let out = dir.path().join("out.json");
    let out = out.to_str().unwrap();
    let written = json(
        &vigil(dir.path(), &["apps", "export", out, "--tenant", "acme"]),
        0,
    );
    assert_eq!(written["apps"], serde_json::json!(["lookup"]));
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let original: Value = serde_json::from_str(&bundle_text()).unwrap();
    assert_eq!(
        exported["apps"], original["apps"],
        "import → export gives the same apps"
    );
    assert_eq!(exported["digest"], original["digest"]);

    let dry = json(
        &vigil(
            dir.path(),
            &["apps", "import", out, "--tenant", "globex", "--dry-run"],
        ),
        0,
    );
    assert_eq!(dry["applied"], false);
    assert_eq!(dry["dry_run"], true);
    let none = json(
        &vigil(dir.path(), &["apps", "export", "-", "--tenant", "globex"]),
        0,
    );
    assert_eq!(
        none["apps"],
        serde_json::json!([]),
        "the dry run wrote nothing"
    );

    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, bundle_text().replace("1.0.0", "6.6.6")).unwrap();
    let tampered = tampered.to_str().unwrap();
    let refused = json(
        &vigil(
            dir.path(),
            &["apps", "import", tampered, "--tenant", "globex"],
        ),
        1,
    );
    assert_eq!(refused["diagnostics"][0]["type"], "parse");
    let bad_mode = vigil(
        dir.path(),
        &[
            "apps", "import", out, "--tenant", "globex", "--mode", "merge",
        ],
    );
    assert_eq!(bad_mode.status.code(), Some(2));
    assert!(stderr(&bad_mode).contains("expected fail, skip, overwrite or rename"));
}
