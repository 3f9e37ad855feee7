//! End-to-end tests of `vigil hunt`: each runs the binary on temporary indicator and event
//! files, with no `VIGIL_*` setting inherited from the developer's environment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

const IOCS: &str = "type,value,match_subdomains\n\
    ipv4,203.0.113.7,\n\
    cidr,198.51.100.0/24,false\n\
    domain,evil.example,true\n\
    sha256,\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\",\n";

struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            command.env_remove(key);
        }
    }
    command.arg("hunt").args(args).stdin(Stdio::null());
    command
}

fn run(indicators: &Path, events: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--indicators".to_owned(),
        indicators.display().to_string(),
        "--events".to_owned(),
        events.display().to_string(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    command(&args).output().expect("run vigil hunt")
}

/// `vigil hunt` on `iocs` and `events` written to files.
fn hunt(iocs: &str, events: &str, extra: &[&str]) -> Output {
    let files = Files::new();
    run(
        &files.write("iocs.csv", iocs),
        &files.write("events.jsonl", events),
        extra,
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit status `code` and answers stdout.
fn expect(output: &Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

#[test]
fn nested_and_flat_addresses_match_with_event_ids_or_line_numbers() {
    let events = "{\"event\":{\"id\":\"e-1\"},\"destination\":{\"ip\":\"203.0.113.7\"}}\n\
        {\"dst_ip\":\"203.0.113.7\"}\n\
        {\"event.id\":\"e-3\",\"src_ip\":\"192.0.2.1\"}\n\
        {\"id\":\"e-4\",\"source\":{\"ip\":\"203.0.113.7\"}}\n";
    let out = expect(&hunt(IOCS, events, &[]), 0);
    assert_eq!(
        out,
        "e-1\tdestination.ip\t203.0.113.7\tipv4\n\
         2\tdst_ip\t203.0.113.7\tipv4\n\
         e-4\tsource.ip\t203.0.113.7\tipv4\n"
    );
}

#[test]
fn cidr_indicator_matches_an_address_inside_it() {
    let events = "{\"event.id\":\"c\",\"destination\":{\"ip\":\"198.51.100.200\"}}\n\
        {\"destination\":{\"ip\":\"198.51.101.1\"}}\n";
    let out = expect(&hunt(IOCS, events, &[]), 0);
    assert_eq!(out, "c\tdestination.ip\t198.51.100.200\tcidr\n");
}

#[test]
fn domain_with_match_subdomains_matches_a_subdomain_normalized() {
    let events = "{\"dns\":{\"question\":{\"name\":\"CDN.a.Evil.Example.\"}}}\n\
        {\"dns\":{\"question\":{\"name\":\"notevil.example\"}}}\n";
    let out = expect(&hunt(IOCS, events, &[]), 0);
    assert_eq!(out, "1\tdns.question.name\tcdn.a.evil.example\tdomain\n");
}

#[test]
fn value_only_in_message_does_not_match() {
    let events = "{\"message\":\"connection to 203.0.113.7 from evil.example\"}\n";
    let output = hunt(IOCS, events, &[]);
    assert_eq!(expect(&output, 1), "");
}

#[test]
fn nothing_matching_exits_1() {
    let events = "{\"destination\":{\"ip\":\"192.0.2.1\"}}\n";
    assert_eq!(expect(&hunt(IOCS, events, &[]), 1), "");
}

#[test]
fn missing_files_exit_2() {
    let files = Files::new();
    let iocs = files.write("iocs.csv", IOCS);
    let events = files.write("events.jsonl", "{}\n");
    let missing = files.dir.path().join("missing");
    let output = run(&missing, &events, &[]);
    expect(&output, 2);
    assert!(stderr(&output).contains("missing"), "{}", stderr(&output));
    expect(&run(&iocs, &missing, &[]), 2);
}

#[test]
fn minimal_stix_bundle_is_read_like_a_csv() {
    let bundle = "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[\
        {\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--1\",\
         \"pattern\":\"[ipv4-addr:value = '203.0.113.7']\",\"pattern_type\":\"stix\",\
         \"valid_from\":\"2024-01-01T00:00:00Z\"}]}";
    let output = hunt(bundle, "{\"dst_ip\":\"203.0.113.7\"}\n", &[]);
    assert_eq!(expect(&output, 0), "1\tdst_ip\t203.0.113.7\tipv4\n");
}

/// A bundle like the OASIS `stix2` library writes: identity and marking definition alongside,
/// OR-split patterns, an AND pattern, a sigma rule and a revoked indicator.
const STIX_BUNDLE: &str = r#"{
  "type": "bundle",
  "id": "bundle--65496c4c-95a1-40bc-abb9-daf6e0c7cb43",
  "objects": [
    {"type": "identity", "spec_version": "2.1",
     "id": "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "Example CERT", "identity_class": "organization"},
    {"type": "marking-definition", "spec_version": "2.1",
     "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
     "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp",
     "name": "TLP:GREEN", "definition": {"tlp": "green"}},
    {"type": "indicator", "spec_version": "2.1",
     "id": "indicator--2b05794a-39c6-4b52-8474-52597e531d23",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "pattern": "[ipv4-addr:value = '198.51.100.0/24'] OR [domain-name:value = 'evil.example' OR file:name = 'it\\'s.exe']",
     "pattern_type": "stix", "pattern_version": "2.1", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1",
     "id": "indicator--0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "pattern": "[ipv4-addr:value = '203.0.113.7' AND file:name = 'a.exe']",
     "pattern_type": "stix", "pattern_version": "2.1", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1",
     "id": "indicator--7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5e",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "pattern": "title: x", "pattern_type": "sigma", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1",
     "id": "indicator--5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "pattern": "[ipv4-addr:value = '192.0.2.1']", "revoked": true,
     "pattern_type": "stix", "pattern_version": "2.1", "valid_from": "2024-01-01T00:00:00Z"}
  ]
}"#;

#[test]
fn stix_bundle_matches_and_reports_what_it_skipped() {
    let events = "{\"event.id\":\"a\",\"destination\":{\"ip\":\"198.51.100.9\"}}\n\
        {\"event.id\":\"b\",\"dns\":{\"question\":{\"name\":\"Evil.Example\"}}}\n\
        {\"event.id\":\"c\",\"file\":{\"name\":\"it's.exe\"}}\n\
        {\"event.id\":\"d\",\"destination\":{\"ip\":\"203.0.113.7\"}}\n\
        {\"event.id\":\"e\",\"destination\":{\"ip\":\"192.0.2.1\"}}\n";
    let files = Files::new();
    let output = run(
        &files.write("bundle.json", STIX_BUNDLE),
        &files.write("events.jsonl", events),
        &[],
    );
    assert_eq!(
        expect(&output, 0),
        "a\tdestination.ip\t198.51.100.9\tcidr\n\
         b\tdns.question.name\tevil.example\tdomain\n\
         c\tfile.name\tit's.exe\tfile_name\n"
    );
    let err = stderr(&output);
    for warning in [
        "bundle.json: indicator--0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b: skipped: pattern: AND",
        "bundle.json: indicator--7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5e: skipped: pattern_type \"sigma\"",
        "bundle.json: indicator--5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716: skipped: revoked",
    ] {
        assert!(err.contains(warning), "{warning}\n{err}");
    }
    assert_eq!(err.lines().count(), 3, "{err}");
}

#[test]
fn document_that_is_not_a_bundle_exits_2() {
    let output = hunt("{\"type\":\"indicator\"}", "{}\n", &[]);
    expect(&output, 2);
    assert!(
        stderr(&output).contains("not a STIX bundle"),
        "{}",
        stderr(&output)
    );
    let output = hunt("{\"type\":\"bundle\",\"objects\":[]}", "{}\n", &[]);
    expect(&output, 2);
    assert!(
        stderr(&output).contains("no valid indicator"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn malformed_json_line_is_skipped_and_later_lines_match() {
    let events = "{\"dst_ip\":\"203.0.113.7\"}\n\
        {\"dst_ip\": oops\n\
        [1,2]\n\
        {\"dst_ip\":\"203.0.113.7\"}\n";
    let output = hunt(IOCS, events, &[]);
    let out = expect(&output, 0);
    assert_eq!(
        out,
        "1\tdst_ip\t203.0.113.7\tipv4\n4\tdst_ip\t203.0.113.7\tipv4\n"
    );
    let err = stderr(&output);
    assert!(err.contains("events.jsonl:2: skipped: not JSON"), "{err}");
    assert!(
        err.contains("events.jsonl:3: skipped: not a JSON object"),
        "{err}"
    );
}

#[test]
fn dash_reads_events_from_stdin() {
    let files = Files::new();
    let iocs = files.write("iocs.csv", IOCS);
    let iocs = iocs.display().to_string();
    let mut child = command(&["--indicators", &iocs, "--events", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vigil hunt");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"{\"file\":{\"hash\":{\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}}}\n")
        .expect("write events");
    let output = child.wait_with_output().expect("wait for vigil hunt");
    let out = expect(&output, 0);
    assert_eq!(
        out,
        "1\tfile.hash.sha256\te3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\tsha256\n"
    );
}

#[test]
fn jsonl_output_parses() {
    let events = "{\"event\":{\"id\":\"e-1\"},\"destination\":{\"ip\":\"203.0.113.7\"}}\n\
        {\"dst_ip\":\"198.51.100.1\"}\n";
    let out = expect(&hunt(IOCS, events, &["--format", "jsonl"]), 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"event_id": "e-1", "line": 1, "field": "destination.ip",
                "value": "203.0.113.7", "indicator_type": "ipv4"}),
            serde_json::json!({"event_id": "2", "line": 2, "field": "dst_ip",
                "value": "198.51.100.1", "indicator_type": "cidr"}),
        ]
    );
}

#[test]
fn one_thread_and_four_threads_print_the_same_lines() {
    // More lines than one chunk (4096), so that several workers share the input.
    let mut events = String::new();
    for i in 0..10_000_u32 {
        let line = match i % 5 {
            0 => format!(
                "{{\"event.id\":\"n{i}\",\"dst_ip\":\"198.51.100.{}\"}}\n",
                i % 256
            ),
            1 => format!("{{\"dst_ip\":\"192.0.2.{}\"}}\n", i % 256),
            2 => format!("{{\"dns\":{{\"question\":{{\"name\":\"h{i}.evil.example\"}}}}}}\n"),
            3 => "not json\n".to_owned(),
            _ => format!("{{\"message\":\"203.0.113.7 #{i}\"}}\n"),
        };
        events.push_str(&line);
    }
    let files = Files::new();
    let iocs = files.write("iocs.csv", IOCS);
    let events = files.write("events.jsonl", &events);
    let one = run(&iocs, &events, &["--threads", "1"]);
    let four = run(&iocs, &events, &["--threads", "4"]);
    let one_out = expect(&one, 0);
    assert_eq!(one_out.lines().count(), 4000);
    assert_eq!(one_out, expect(&four, 0));
    assert_eq!(stderr(&one), stderr(&four));
}

#[test]
fn invalid_indicator_rows_warn_and_the_rest_still_match() {
    let iocs = "type,value\n\
        ipv4,999.1.1.1\n\
        sha256,abc\n\
        planet,mars\n\
        domain,\n\
        ipv4,203.0.113.7\n";
    let output = hunt(iocs, "{\"dst_ip\":\"203.0.113.7\"}\n", &[]);
    assert_eq!(expect(&output, 0), "1\tdst_ip\t203.0.113.7\tipv4\n");
    let err = stderr(&output);
    for line in 2..=5 {
        assert!(err.contains(&format!("iocs.csv:{line}: skipped")), "{err}");
    }
}

#[test]
fn indicator_file_without_a_valid_indicator_exits_2() {
    let output = hunt("type,value\nipv4,999.1.1.1\n", "{}\n", &[]);
    expect(&output, 2);
    assert!(
        stderr(&output).contains("no valid indicator"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn zero_threads_is_a_bad_argument() {
    expect(&hunt(IOCS, "{}\n", &["--threads", "0"]), 2);
}

/// Off a terminal stderr holds the warnings alone; on one (a pseudo-terminal from util-linux
/// `script`) a progress line is drawn, steps aside for each warning and is cleared at the end.
#[test]
fn progress_is_drawn_on_a_terminal_only_and_cleared() {
    let mut events = String::from("not json\n");
    for n in 0..20_000 {
        events.push_str(&format!(
            "{{\"id\":\"e{n}\",\"destination\":{{\"ip\":\"203.0.113.7\"}}}}\n"
        ));
    }
    let files = Files::new();
    let iocs = files.write("iocs.csv", IOCS);
    let events = files.write("events.jsonl", &events);

    let piped = run(&iocs, &events, &[]);
    expect(&piped, 0);
    let warning = format!("vigil hunt: {}:1: skipped: not JSON", events.display());
    let stderr_text = stderr(&piped);
    assert!(stderr_text.starts_with(&warning), "{stderr_text:?}");
    assert_eq!(stderr_text.lines().count(), 1, "{stderr_text:?}");
    assert!(!stderr_text.contains('\r') && !stderr_text.contains("matches"));

    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "util-linux `script` is needed in CI"
        );
        eprintln!("skipped the terminal half: no util-linux `script`");
        return;
    }
    let out = files.dir.path().join("out.tsv");
    let inner = format!(
        "{} hunt --indicators '{}' --events '{}' > '{}'",
        env!("CARGO_BIN_EXE_vigil"),
        iocs.display(),
        events.display(),
        out.display()
    );
    let tty = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    assert_eq!(tty.status.code(), Some(0), "{tty:?}");
    let transcript = String::from_utf8_lossy(&tty.stdout).into_owned();
    assert!(transcript.contains(&warning), "{transcript:?}");
    assert!(
        transcript.contains("20001 lines, 20000 matches"),
        "{transcript:?}"
    );
    assert!(
        transcript
            .trim_end_matches(['\r', '\n'])
            .ends_with("\x1b[2K"),
        "the progress line is cleared at the end: {transcript:?}"
    );
    let matches = std::fs::read_to_string(&out).expect("read the matches");
    assert_eq!(matches.lines().count(), 20_000);
}
