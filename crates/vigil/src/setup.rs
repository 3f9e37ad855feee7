//! Wiring shared by `serve` and the operator commands: logging, the data directory, the
//! store, the token-signing key and the first platform-admin key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use vigil_domain::{PageRequest, Role};
use vigil_service::{
    JwtKey, KeyOwner, MASTER_KEY_LEN, MasterKey, NewApiKeyRequest, Principal, Services,
};
use vigil_store::Store;
use vigil_store_postgres::PostgresStore;
use vigil_store_sqlite::SqliteStore;

use crate::config::{Database, Settings};

pub(crate) const INITIAL_ADMIN_KEY_FILE: &str = "initial-admin-key";
const JWT_SECRET_FILE: &str = "jwt-secret";
/// Where the master key (sealing connector credentials) is generated when
/// `VIGIL_MASTER_KEY_FILE` names no file.
const MASTER_KEY_FILE: &str = "master-key";
/// Names a file holding the master key as 64 hex digits; env only, never a flag.
const MASTER_KEY_FILE_VAR: &str = "VIGIL_MASTER_KEY_FILE";

/// JSON lines on stderr (stdout is for command output), filtered by `VIGIL_LOG`.
pub(crate) fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("VIGIL_LOG (log): invalid filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(true)
        .init();
    Ok(())
}

/// How long the first platform-admin key works by default: long enough to create the real
/// keys, short enough that a forgotten file stops being a way in.
pub(crate) const INITIAL_ADMIN_KEY_TTL_DEFAULT_SECONDS: u64 = 24 * 60 * 60;
/// How often `vigil serve` checks whether the initial key's file can go.
pub(crate) const INITIAL_ADMIN_KEY_CHECK_INTERVAL: std::time::Duration =
    std::time::Duration::from_secs(60);

/// The data directory, readable only by its owner whoever created it (an existing one is
/// narrowed to 0700).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("create data directory {}", dir.display()))?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("restrict {} to mode {mode:o}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}

/// The SQLite database and its `-wal` and `-shm` files are the owner's only: the database is
/// created 0600 before SQLite opens it (SQLite gives its WAL and shared-memory files the
/// database's mode), and existing files are narrowed.
fn private_sqlite_files(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        if let Err(err) = options.open(path)
            && err.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(err).with_context(|| format!("create {}", path.display()));
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            set_mode(&file, 0o600)?;
        }
    }
    Ok(())
}

/// Writes `contents` to a new file readable only by its owner; fails if it exists.
fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("sync {}", path.display()))
}

pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    create_private_dir(&settings.data_dir)?;
    Ok(match &settings.database {
        Database::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)?;
            }
            private_sqlite_files(path)?;
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("open SQLite store at {}", path.display()))?;
            private_sqlite_files(path)?;
            Arc::new(store)
        }
        Database::Postgres(url) => {
            let store = PostgresStore::connect(url.expose_secret())
                .await
                .context("connect to the PostgreSQL store")?;
            Arc::new(store)
        }
    })
}

/// The access-token key: from settings, else from the data directory, created on first use.
fn jwt_key(settings: &Settings) -> anyhow::Result<JwtKey> {
    if let Some(secret) = &settings.jwt_secret {
        return JwtKey::from_bytes(secret.expose_secret().as_bytes().to_vec())
            .context("VIGIL_JWT_SECRET");
    }
    let path = settings.data_dir.join(JWT_SECRET_FILE);
    if !path.exists() {
        write_private_file(&path, &vigil_service::random_token())?;
        tracing::info!(component = "setup", path = %path.display(), "generated the token-signing key");
    }
    let secret =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    JwtKey::from_bytes(secret.trim().as_bytes().to_vec())
        .with_context(|| format!("token-signing key in {}", path.display()))
}

/// The key connector credentials are sealed under: the file `VIGIL_MASTER_KEY_FILE` names,
/// else `DATA_DIR/master-key`, generated (mode 0600) on first use. 64 hex digits.
fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    let path = match std::env::var_os(MASTER_KEY_FILE_VAR) {
        Some(path) => PathBuf::from(path),
        None => {
            let path = settings.data_dir.join(MASTER_KEY_FILE);
            if !path.exists() {
                let key = MasterKey::generate()?;
                let hex: String = key
                    .expose_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                write_private_file(&path, &format!("{hex}\n"))?;
                tracing::info!(component = "setup", path = %path.display(), "generated the master key");
            }
            path
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{MASTER_KEY_FILE_VAR}: read {}", path.display()))?;
    let text = text.trim();
    let bytes: Option<Vec<u8>> = (text.len() == 2 * MASTER_KEY_LEN)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    let bytes: [u8; MASTER_KEY_LEN] =
        bytes
            .and_then(|bytes| bytes.try_into().ok())
            .with_context(|| {
                format!(
                    "master key in {}: expected {} hex digits",
                    path.display(),
                    2 * MASTER_KEY_LEN
                )
            })?;
    Ok(MasterKey::from_bytes(bytes))
}

/// The use cases and the sync engine they reach (for run-now, replay and status).
pub(crate) struct Wired {
    pub(crate) services: Services,
    /// What `run_engine` needs: services without the engine port (so the two do not hold
    /// each other), the cycles' configuration and the status the port reads.
    pub(crate) engine_services: Services,
    pub(crate) sync: vigil_sync::SyncConfig,
    pub(crate) sync_status: Arc<vigil_sync::SyncStatus>,
    /// The task runner, to be run (`Runner::run`) by whoever serves.
    pub(crate) runner: vigil_runner::Runner,
}

pub(crate) async fn services(settings: &Settings) -> anyhow::Result<Wired> {
    let store = open_store(settings).await?;
    let engine_services =
        Services::new(store, jwt_key(settings)?).with_master_key(master_key(settings)?);
    let outbound = vigil_outbound::Outbound::new(
        settings.outbound.clone(),
        vigil_outbound::OutboundLimits::default(),
    );
    let sync = vigil_sync::SyncConfig::new(outbound);
    let sync_status = Arc::new(vigil_sync::SyncStatus::default());
    let engine = vigil_sync::Engine::new(
        engine_services.clone(),
        sync.clone(),
        Arc::clone(&sync_status),
    );
    let mut runner_config =
        vigil_runner::RunnerConfig::new(settings.outbound.clone(), settings.node_id.clone());
    runner_config.workers = settings.run_workers;
    let runner = vigil_runner::Runner::new(engine_services.clone(), runner_config);
    Ok(Wired {
        services: engine_services
            .clone()
            .with_sync_engine(Arc::new(engine))
            .with_task_runner(Arc::new(runner.clone())),
        engine_services,
        sync,
        sync_status,
        runner,
    })
}

/// On a platform that has never had a platform-admin key, creates one and writes it to
/// `DATA_DIR/initial-admin-key` (mode 0600). Returns the file's path when it did. A platform
/// whose keys were all revoked or expired gets no new one by restarting: that is how an
/// operator locks a compromised deployment, and `vigil apikey create --role platform-admin`
/// is the deliberate way back.
pub(crate) async fn ensure_admin_key(
    services: &Services,
    data_dir: &Path,
    ttl_seconds: u64,
) -> anyhow::Result<Option<PathBuf>> {
    if services.has_platform_admin_key().await? {
        return Ok(None);
    }
    let earlier = services
        .list_api_keys(&Principal::system(), KeyOwner::Own, PageRequest::first(1))
        .await?;
    if !earlier.items.is_empty() {
        tracing::warn!(
            component = "setup",
            "every platform-admin key is revoked or expired; create one with `vigil apikey create --role platform-admin`"
        );
        return Ok(None);
    }
    let path = data_dir.join(INITIAL_ADMIN_KEY_FILE);
    let ttl = i64::try_from(ttl_seconds).unwrap_or(i64::MAX);
    let request = NewApiKeyRequest {
        name: "initial-admin".into(),
        role: Role::PlatformAdmin,
        expires_at: Some(vigil_domain::Timestamp::now().plus_seconds(ttl)),
    };
    let created = services
        .create_api_key(&Principal::system(), KeyOwner::Own, request)
        .await?;
    write_private_file(&path, &format!("{}\n", created.secret.expose()))?;
    Ok(Some(path))
}

/// Applies the TOML file's `[[connectors]]` to their tenants. A connector whose stored
/// configuration and credentials already match is left alone (no audit event per restart).
pub(crate) async fn apply_file_connectors(
    services: &Services,
    connectors: &[crate::config::FileConnector],
) -> anyhow::Result<()> {
    use vigil_domain::{
        ConnectorKind, ConnectorName, ConnectorOptions, Severity, Slug, SourceUrl, SyncInterval,
    };
    for file in connectors {
        let at = || {
            format!(
                "config file: connector {:?} of tenant {:?}",
                file.name, file.tenant
            )
        };
        let slug = Slug::parse(&file.tenant).with_context(at)?;
        let tenant = services
            .find_tenant(&Principal::system(), &slug)
            .await
            .with_context(at)?;
        let principal = Principal::system_in(tenant.id);
        let request = vigil_service::ConnectorRequest {
            name: ConnectorName::parse(&file.name).with_context(at)?,
            kind: ConnectorKind::parse(&file.kind).with_context(at)?,
            url: SourceUrl::parse(&file.url).with_context(at)?,
            enabled: file.enabled.unwrap_or(true),
            interval: file
                .interval_s
                .map(SyncInterval::parse)
                .transpose()
                .with_context(at)?,
            threshold: file
                .threshold
                .as_deref()
                .map(|t| Severity::parse(&t.to_ascii_lowercase()))
                .transpose()
                .with_context(at)?,
            options: ConnectorOptions::parse(file.options.clone()).with_context(at)?,
            credentials: Some(vigil_service::Credentials::new(file.credentials.clone())),
        };
        if services.connector_matches(&principal, &request).await? {
            continue;
        }
        services
            .put_connector(
                &principal.clone().because(Some("config file".into())),
                request,
            )
            .await
            .with_context(at)?;
        tracing::info!(component = "setup", tenant = %slug.as_str(), connector = %file.name, "applied connector from the config file");
    }
    Ok(())
}

/// Removes `DATA_DIR/initial-admin-key` once the key it holds no longer works (revoked or
/// expired): a secret in clear is kept only while it is one. Answers whether it removed it.
pub(crate) async fn retire_admin_key_file(
    services: &Services,
    data_dir: &Path,
) -> anyhow::Result<bool> {
    let path = data_dir.join(INITIAL_ADMIN_KEY_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(false);
    };
    match services.authenticate(text.trim()).await {
        Ok(_) => Ok(false),
        Err(vigil_service::ServiceError::Unauthenticated(why)) => {
            std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
            tracing::warn!(component = "setup", path = %path.display(), reason = why, "removed the initial admin key's file: the key no longer works");
            Ok(true)
        }
        Err(err) => Err(err).context("check the initial admin key"),
    }
}
