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

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("create data directory {}", dir.display()))
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
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("open SQLite store at {}", path.display()))?;
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
    Ok(Wired {
        services: engine_services.clone().with_sync_engine(Arc::new(engine)),
        engine_services,
        sync,
        sync_status,
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
    let request = NewApiKeyRequest {
        name: "initial-admin".into(),
        role: Role::PlatformAdmin,
        expires_at: None,
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
            .put_connector(&principal, request, Some("config file".into()))
            .await
            .with_context(at)?;
        tracing::info!(component = "setup", tenant = %slug.as_str(), connector = %file.name, "applied connector from the config file");
    }
    Ok(())
}
