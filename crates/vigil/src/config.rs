//! Settings: each comes from a flag, else a `VIGIL_*` environment variable, else the TOML
//! file given with `--config`, else its default — and defaults run with no setup at all.
//! An invalid value stops the start with a message naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use secrecy::SecretString;
use serde::Deserialize;
use vigil_api::HttpLimits;

pub(crate) const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
pub(crate) const DATA_DIR_DEFAULT: &str = "./vigil-data";
pub(crate) const LOG_DEFAULT: &str = "info";
/// The key that signs access tokens, at least 32 bytes; every node of a deployment needs the
/// same. Read from the environment (or `jwt_secret` in the TOML file), never from a flag.
/// Default: generated once into DATA_DIR/jwt-secret.
pub(crate) const JWT_SECRET_VAR: &str = "VIGIL_JWT_SECRET";

/// Extra ranges outbound calls may reach (comma-separated CIDRs), past the default policy
/// that refuses loopback, link-local, metadata and this machine's addresses. Default: none.
pub(crate) const OUTBOUND_ALLOW_VAR: &str = "VIGIL_OUTBOUND_ALLOW";
/// The bearer token `/metrics` needs on the API's listener; env or file, never a flag.
pub(crate) const METRICS_TOKEN_VAR: &str = "VIGIL_METRICS_TOKEN";
/// Shortest metrics token accepted.
pub(crate) const METRICS_TOKEN_LEN_MIN: usize = 16;

/// Settings shared by every subcommand. No `Debug`: until resolved, secrets are plain strings.
#[derive(Args)]
pub(crate) struct SettingsArgs {
    /// TOML file with any of: listen, data_dir, database_url, log, jwt_secret,
    /// body_bytes_max, request_timeout_seconds, concurrency_max.
    #[arg(long, global = true, env = "VIGIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to serve HTTP on [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "VIGIL_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the SQLite database, the initial admin key and the token-signing key
    /// [default: ./vigil-data].
    #[arg(long, global = true, env = "VIGIL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Store to use: sqlite://PATH or postgres://USER@HOST/DB [default: SQLite at
    /// DATA_DIR/vigil.db].
    #[arg(
        long,
        global = true,
        env = "VIGIL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Log filter, e.g. info, debug, vigil_api=debug [default: info]. Logs are JSON lines on
    /// stderr.
    #[arg(long, global = true, env = "VIGIL_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(
        long,
        global = true,
        env = "VIGIL_BODY_BYTES_MAX",
        value_name = "BYTES"
    )]
    body_bytes_max: Option<usize>,
    /// Seconds a request may take before it is answered 503 [default: 30].
    #[arg(
        long,
        global = true,
        env = "VIGIL_REQUEST_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    request_timeout_seconds: Option<u64>,
    /// Requests handled at once [default: 512].
    #[arg(long, global = true, env = "VIGIL_CONCURRENCY_MAX", value_name = "N")]
    concurrency_max: Option<usize>,
    /// CIDRs outbound calls (connectors) may reach although the default policy refuses them,
    /// e.g. 127.0.0.0/8 for a source on this machine [default: none].
    #[arg(long, global = true, env = OUTBOUND_ALLOW_VAR, value_name = "CIDRS")]
    outbound_allow: Option<String>,
    /// A second address serving only /metrics, without a token [default: none; /metrics on
    /// the API's listener then needs VIGIL_METRICS_TOKEN].
    #[arg(long, global = true, env = "VIGIL_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Seconds the first platform-admin key (DATA_DIR/initial-admin-key) works; its file is
    /// removed once it is revoked or expired [default: 86400].
    #[arg(
        long,
        global = true,
        env = "VIGIL_INITIAL_ADMIN_KEY_TTL_SECONDS",
        value_name = "SECONDS"
    )]
    initial_admin_key_ttl_seconds: Option<u64>,
    /// This node's name in the runs it executes; at start, runs it left running are marked
    /// failed (interrupted). Give each node of a cluster its own [default: the host name].
    #[arg(long, global = true, env = "VIGIL_NODE_ID", value_name = "NAME")]
    node_id: Option<String>,
    /// Task runs executing at once on this node [default: 32].
    #[arg(long, global = true, env = "VIGIL_RUN_WORKERS", value_name = "N")]
    run_workers: Option<usize>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log: Option<String>,
    jwt_secret: Option<String>,
    body_bytes_max: Option<usize>,
    request_timeout_seconds: Option<u64>,
    concurrency_max: Option<usize>,
    outbound_allow: Option<String>,
    metrics_listen: Option<SocketAddr>,
    metrics_token: Option<String>,
    initial_admin_key_ttl_seconds: Option<u64>,
    node_id: Option<String>,
    run_workers: Option<usize>,
    #[serde(default)]
    connectors: Vec<FileConnector>,
}

/// A `[[connectors]]` table of the TOML file: applied to its tenant at startup, as
/// `PUT /api/v1/connectors/{name}` would.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConnector {
    pub(crate) tenant: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) url: String,
    pub(crate) enabled: Option<bool>,
    pub(crate) interval_s: Option<i64>,
    pub(crate) threshold: Option<String>,
    #[serde(default)]
    pub(crate) credentials: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) options: std::collections::BTreeMap<String, String>,
}

// Not derived: the credentials are secrets.
impl std::fmt::Debug for FileConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConnector")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Where the system of record lives.
pub(crate) enum Database {
    Sqlite(PathBuf),
    Postgres(SecretString),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            Database::Postgres(_) => f.write_str("Postgres([REDACTED])"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) database: Database,
    pub(crate) log: String,
    pub(crate) jwt_secret: Option<SecretString>,
    pub(crate) http: HttpLimits,
    pub(crate) outbound: vigil_outbound::OutboundPolicy,
    pub(crate) metrics_listen: Option<SocketAddr>,
    pub(crate) metrics_token: Option<SecretString>,
    pub(crate) initial_admin_key_ttl_seconds: u64,
    pub(crate) node_id: String,
    pub(crate) run_workers: usize,
    /// From the TOML file's `[[connectors]]`.
    pub(crate) connectors: Vec<FileConnector>,
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read config file {}", path.display()))?;
    // toml's own Display quotes the offending line, which may hold a secret (jwt_secret,
    // database_url); report only its message and line number.
    toml::from_str(&text).map_err(|err| {
        let line = err
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let at = line
            .map(|line| format!(", line {line}"))
            .unwrap_or_default();
        anyhow::anyhow!(
            "config file {}{at}: {}",
            path.display(),
            err.message().trim()
        )
    })
}

impl SettingsArgs {
    fn http_limits(&self, file: &FileSettings) -> anyhow::Result<HttpLimits> {
        let defaults = HttpLimits::default();
        Ok(HttpLimits {
            body_bytes_max: positive(
                "body_bytes_max",
                self.body_bytes_max
                    .or(file.body_bytes_max)
                    .unwrap_or(defaults.body_bytes_max),
            )?,
            request_timeout: Duration::from_secs(positive_u64(
                "request_timeout_seconds",
                self.request_timeout_seconds
                    .or(file.request_timeout_seconds)
                    .unwrap_or(defaults.request_timeout.as_secs()),
            )?),
            concurrency_max: positive(
                "concurrency_max",
                self.concurrency_max
                    .or(file.concurrency_max)
                    .unwrap_or(defaults.concurrency_max),
            )?,
            ..defaults
        })
    }

    pub(crate) fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let http = self.http_limits(&file)?;
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
        refuse_password_on_command_line(self.database_url.as_deref())?;
        let database = match self.database_url.or(file.database_url) {
            None => Database::Sqlite(data_dir.join("vigil.db")),
            Some(url) => parse_database_url(url)?,
        };
        // Env or file only: a flag would leave the secret in the process list.
        let jwt_secret = secret_setting(
            JWT_SECRET_VAR,
            "jwt_secret",
            file.jwt_secret,
            vigil_service::JWT_KEY_LEN_MIN,
        )?;
        let metrics_token = secret_setting(
            METRICS_TOKEN_VAR,
            "metrics_token",
            file.metrics_token,
            METRICS_TOKEN_LEN_MIN,
        )?;
        let outbound = vigil_outbound::OutboundPolicy::new(
            self.outbound_allow
                .or(file.outbound_allow)
                .as_deref()
                .unwrap_or_default(),
        )?;
        let initial_admin_key_ttl_seconds = positive_u64(
            "initial_admin_key_ttl_seconds",
            self.initial_admin_key_ttl_seconds
                .or(file.initial_admin_key_ttl_seconds)
                .unwrap_or(crate::setup::INITIAL_ADMIN_KEY_TTL_DEFAULT_SECONDS),
        )?;
        let node_id = node_id(self.node_id.or(file.node_id))?;
        let run_workers = self
            .run_workers
            .or(file.run_workers)
            .unwrap_or(vigil_runner::RUN_WORKERS_DEFAULT);
        if run_workers == 0 {
            bail!("VIGIL_RUN_WORKERS (run_workers) must be at least 1");
        }
        Ok(Settings {
            node_id,
            run_workers,
            initial_admin_key_ttl_seconds,
            outbound,
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            metrics_token,
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| LISTEN_DEFAULT.parse().expect("valid default")),
            data_dir,
            database,
            log: self
                .log
                .or(file.log)
                .unwrap_or_else(|| LOG_DEFAULT.to_owned()),
            jwt_secret,
            http,
            connectors: file.connectors,
        })
    }
}

/// Longest `VIGIL_NODE_ID`.
pub(crate) const NODE_ID_LEN_MAX: usize = 128;

/// The node's name as set, else the host name.
fn node_id(set: Option<String>) -> anyhow::Result<String> {
    match set {
        Some(name) if name.trim().is_empty() || name.len() > NODE_ID_LEN_MAX => {
            bail!("VIGIL_NODE_ID (node_id) must be 1 to {NODE_ID_LEN_MAX} bytes")
        }
        Some(name) => Ok(name),
        None => Ok(host_name()),
    }
}

/// The machine's host name (Linux), else `vigil`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && name.len() <= NODE_ID_LEN_MAX)
        .unwrap_or_else(|| "vigil".to_owned())
}

/// A secret from the environment variable `var`, else the file's `key`, at least `len_min`
/// bytes long.
fn secret_setting(
    var: &str,
    key: &str,
    from_file: Option<String>,
    len_min: usize,
) -> anyhow::Result<Option<SecretString>> {
    let secret = std::env::var(var).ok().or(from_file);
    if secret.as_ref().is_some_and(|secret| secret.len() < len_min) {
        bail!("{var} ({key}) must be at least {len_min} bytes");
    }
    Ok(secret.map(SecretString::from))
}

/// `--database-url` with a password is refused: every local user can read a command line
/// (`ps`). The same URL from `VIGIL_DATABASE_URL` or the config file is fine.
fn refuse_password_on_command_line(database_url: Option<&str>) -> anyhow::Result<()> {
    let Some(url) = database_url else {
        return Ok(());
    };
    if std::env::var("VIGIL_DATABASE_URL").is_ok_and(|from_env| from_env == url) {
        return Ok(());
    }
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    let has_password = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        || url.contains("password=");
    if has_password {
        bail!(
            "--database-url must not carry a password: a command line is visible to every local user; \
             set VIGIL_DATABASE_URL or database_url in the config file (or use a .pgpass file)"
        );
    }
    Ok(())
}

fn positive(name: &str, value: usize) -> anyhow::Result<usize> {
    if value == 0 {
        bail!("{name} must be greater than 0");
    }
    Ok(value)
}

fn positive_u64(name: &str, value: u64) -> anyhow::Result<u64> {
    if value == 0 {
        bail!("{name} must be greater than 0");
    }
    Ok(value)
}

fn parse_database_url(url: String) -> anyhow::Result<Database> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            bail!("VIGIL_DATABASE_URL (database_url): sqlite URL names no file");
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(SecretString::from(url)));
    }
    // The URL may carry a password, so the message shows only what it starts with.
    let scheme = url.split(':').next().unwrap_or_default();
    bail!(
        "VIGIL_DATABASE_URL (database_url): unsupported scheme {scheme:?}; expected sqlite:// or postgres://"
    )
}
