//! The command line: `serve`, `migrate`, the operator tasks and `hunt`. Results are JSON on
//! stdout (`hunt` prints TSV or JSON Lines); logs and errors go to stderr.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use serde::Serialize;
use vigil_api::dto::{ApiKeyOut, CreatedKeyOut, TenantOut, UserOut, VerifyOut};
use vigil_domain::{
    ApiKeyId, Email, PAGE_SIZE_MAX, PageRequest, Role, Slug, TenantName, Timestamp,
};
use vigil_service::{KeyOwner, NewApiKeyRequest, Principal, Services};

use crate::config::{Settings, SettingsArgs};
use crate::hunt::HuntArgs;
use crate::{serve, setup};

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Multi-tenant security-operations core"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) settings: SettingsArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the HTTP API (creates and migrates the store; on first start writes a
    /// platform-admin key to DATA_DIR/initial-admin-key).
    #[command(
        after_help = "Environment only (never a flag, so it stays out of the process list):\n  \
        VIGIL_JWT_SECRET  key that signs access tokens, at least 32 bytes; every node of a\n                    \
        deployment needs the same [default: generated once into DATA_DIR/jwt-secret]"
    )]
    Serve,
    /// Create or migrate the store, then exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Manage users who log in with a password.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Match JSON Lines events against an indicator CSV offline; one line per match. Exit 0
    /// when something matched, 1 when nothing did, 2 on error.
    Hunt(HuntArgs),
    /// Sync connectors with their upstream sources.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Move apps between tenants and Vigils as `vigil.apps/v1` bundles.
    #[command(subcommand)]
    Apps(AppsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AppsCommand {
    /// Write the tenant's apps (every one, or those named with --app) to FILE (`-`: stdout)
    /// as a bundle; print what was written.
    Export {
        file: std::path::PathBuf,
        /// The tenant (slug) whose apps to export.
        #[arg(long)]
        tenant: String,
        /// An app to export (repeat for more); none: all of them.
        #[arg(long = "app")]
        apps: Vec<String>,
    },
    /// Import the bundle in FILE (`-`: stdin) all or nothing; print what it did (or, with
    /// --dry-run, would do), as the API answers. Exit 1 when it was refused.
    Import {
        file: std::path::PathBuf,
        /// The tenant (slug) to import into.
        #[arg(long)]
        tenant: String,
        /// For apps the tenant has and that differ: fail, skip, overwrite or rename.
        #[arg(long, default_value = "fail")]
        mode: String,
        /// Check and diff, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SyncCommand {
    /// Run one full cycle (incremental reading, then deletion reconciliation) of every
    /// enabled connector, or of the one named; print a JSON report per connector. Exit 1
    /// when any failed.
    Run {
        /// Required: the background loop runs in `vigil serve`.
        #[arg(long)]
        once: bool,
        /// Only this tenant (slug).
        #[arg(long)]
        tenant: Option<String>,
        /// Only the connector of this name.
        #[arg(long)]
        source: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant.
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Create a key and print it, once.
    Create {
        /// Tenant slug; omit for a platform-admin key.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// RFC 3339 instant after which the key stops working.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key by id.
    Revoke {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user; the password is read from VIGIL_USER_PASSWORD or stdin.
    Create {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify hash chains: one tenant's, or the platform's and every tenant's. Exit 1 when
    /// any is broken.
    Verify {
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn print(value: &impl Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encode output")?
    );
    Ok(())
}

pub(crate) async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    if let Command::Serve = command {
        serve::run(settings).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let services = setup::services(&settings).await?.services;
    setup::retire_admin_key_file(&services, &settings.data_dir).await?;
    match command {
        Command::Serve => unreachable!("handled above"),
        Command::Hunt(_) => unreachable!("main runs hunt without settings or a store"),
        Command::Migrate => {
            print(&serde_json::json!({"migrated": true, "store": services.backend()}))?
        }
        Command::Tenant(command) => tenant(&services, command).await?,
        Command::Apikey(command) => api_key(&services, command).await?,
        Command::User(command) => user(&services, command).await?,
        Command::Audit(AuditCommand::Verify { tenant }) => {
            return audit_verify(&services, tenant).await;
        }
        Command::Apps(command) => return apps(&services, command).await,
        Command::Sync(SyncCommand::Run {
            once,
            tenant,
            source,
        }) => {
            if !once {
                anyhow::bail!(
                    "`vigil sync run` needs --once (the background loop runs in `vigil serve`)"
                );
            }
            setup::apply_file_connectors(&services, &settings.connectors).await?;
            return sync_once(&services, tenant, source).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One cycle of each enabled connector (or of `--tenant` / `--source`), in order.
async fn sync_once(
    services: &Services,
    tenant: Option<String>,
    source: Option<String>,
) -> anyhow::Result<ExitCode> {
    let source = source
        .map(|name| vigil_domain::ConnectorName::parse(&name))
        .transpose()
        .context("--source")?;
    let tenants = match tenant.as_deref() {
        Some(slug) => {
            let slug = Slug::parse(slug).context("--tenant")?;
            vec![services.find_tenant(&Principal::cli(), &slug).await?]
        }
        None => {
            let mut all = Vec::new();
            let mut page = PageRequest::first(PAGE_SIZE_MAX);
            loop {
                let got = services.list_tenants(&Principal::cli(), page).await?;
                all.extend(got.items);
                let Some(cursor) = got.next_cursor else { break };
                page = PageRequest::new(Some(PAGE_SIZE_MAX), Some(cursor));
            }
            all
        }
    };
    let mut reports = Vec::new();
    for tenant in tenants {
        let connectors = services
            .list_connectors(&Principal::cli_in(tenant.id))
            .await?;
        let principal = Principal::cli_in(tenant.id);
        for connector in connectors {
            // A named connector runs even when disabled (disabled means not scheduled);
            // without --source, only the enabled ones run.
            let wanted = match &source {
                Some(name) => *name == connector.name,
                None => connector.enabled,
            };
            if wanted {
                reports.push(
                    services
                        .run_connector_now(&principal, &connector.name)
                        .await?,
                );
            }
        }
    }
    if let (Some(name), true) = (&source, reports.is_empty()) {
        anyhow::bail!("no connector named {name}");
    }
    let failed = reports.iter().any(vigil_service::CycleReport::failed);
    let reports: Vec<vigil_api::CycleReportOut> = reports.into_iter().map(Into::into).collect();
    print(&reports)?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `vigil apps export|import`.
async fn apps(services: &Services, command: AppsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AppsCommand::Export { file, tenant, apps } => {
            let principal = acting_as(services, Some(&tenant)).await?;
            let names = apps
                .iter()
                .map(|name| vigil_automation::AppName::parse(name).context("--app"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let bundle = services.export_apps(&principal, &names).await?;
            let text = bundle.to_canonical();
            if file.as_os_str() == "-" {
                println!("{text}");
            } else {
                std::fs::write(&file, &text)
                    .with_context(|| format!("write {}", file.display()))?;
                print(&serde_json::json!({"file": file.display().to_string(),
                    "apps": bundle.apps.iter().map(|a| &a.name).collect::<Vec<_>>(),
                    "digest": bundle.digest}))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::Import {
            file,
            tenant,
            mode,
            dry_run,
        } => {
            let principal = acting_as(services, Some(&tenant)).await?;
            let mode = vigil_service::ImportMode::parse(&mode).context("--mode")?;
            let text = if file.as_os_str() == "-" {
                let mut text = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut text)
                    .context("read stdin")?;
                text
            } else {
                std::fs::read(&file).with_context(|| format!("read {}", file.display()))?
            };
            let report = services
                .import_apps(&principal, &text, mode, dry_run)
                .await?;
            print(&vigil_api::import_report_json(&report))?;
            Ok(if report.diagnostics.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// The principal the operator acts as: platform admin, or admin inside `--tenant`.
async fn acting_as(services: &Services, tenant: Option<&str>) -> anyhow::Result<Principal> {
    let Some(slug) = tenant else {
        return Ok(Principal::cli());
    };
    let slug = Slug::parse(slug).context("--tenant")?;
    let tenant = services
        .find_tenant(&Principal::cli(), &slug)
        .await
        .with_context(|| format!("tenant {}", slug.as_str()))?;
    Ok(Principal::cli_in(tenant.id))
}

async fn tenant(services: &Services, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { slug, name } => {
            let slug = Slug::parse(&slug).context("SLUG")?;
            let name =
                TenantName::parse(name.as_deref().unwrap_or(slug.as_str())).context("--name")?;
            print(&TenantOut::from(
                services
                    .create_tenant(&Principal::cli(), slug, name)
                    .await?,
            ))
        }
        TenantCommand::List => {
            let mut all = Vec::new();
            let mut page = PageRequest::first(PAGE_SIZE_MAX);
            loop {
                let got = services.list_tenants(&Principal::cli(), page).await?;
                all.extend(got.items.into_iter().map(TenantOut::from));
                let Some(cursor) = got.next_cursor else { break };
                page = PageRequest::new(Some(PAGE_SIZE_MAX), Some(cursor));
            }
            print(&all)
        }
    }
}

async fn api_key(services: &Services, command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create {
            tenant,
            role,
            name,
            expires_at,
        } => {
            let principal = acting_as(services, tenant.as_deref()).await?;
            let request = NewApiKeyRequest {
                name,
                role: Role::parse(&role).context("--role")?,
                expires_at: expires_at
                    .as_deref()
                    .map(Timestamp::parse)
                    .transpose()
                    .context("--expires-at")?,
            };
            let created = services
                .create_api_key(&principal, KeyOwner::Own, request)
                .await?;
            print(&CreatedKeyOut::from(created))
        }
        ApiKeyCommand::List { tenant } => {
            let principal = acting_as(services, tenant.as_deref()).await?;
            let mut all = Vec::new();
            let mut page = PageRequest::first(PAGE_SIZE_MAX);
            loop {
                let got = services
                    .list_api_keys(&principal, KeyOwner::Own, page)
                    .await?;
                all.extend(got.items.into_iter().map(ApiKeyOut::from));
                let Some(cursor) = got.next_cursor else { break };
                page = PageRequest::new(Some(PAGE_SIZE_MAX), Some(cursor));
            }
            print(&all)
        }
        ApiKeyCommand::Revoke { id, tenant } => {
            let principal = acting_as(services, tenant.as_deref()).await?;
            let id = ApiKeyId::parse(&id).context("ID")?;
            print(&ApiKeyOut::from(
                services
                    .revoke_api_key(&principal, KeyOwner::Own, id)
                    .await?,
            ))
        }
    }
}

async fn user(services: &Services, command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Create {
        tenant,
        email,
        role,
    } = command;
    let principal = acting_as(services, tenant.as_deref()).await?;
    let password = match std::env::var("VIGIL_USER_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("read the password from stdin")?;
            password.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if password.is_empty() {
        bail!("no password: set VIGIL_USER_PASSWORD or pipe it on stdin");
    }
    let email = Email::parse(&email).context("--email")?;
    let role = Role::parse(&role).context("--role")?;
    let user = services
        .create_user(&principal, email, SecretString::from(password), role)
        .await?;
    print(&UserOut::from(user))
}

async fn audit_verify(services: &Services, tenant: Option<String>) -> anyhow::Result<ExitCode> {
    let principals = match tenant {
        Some(slug) => vec![acting_as(services, Some(&slug)).await?],
        None => {
            let mut principals = vec![Principal::cli()];
            let mut page = PageRequest::first(PAGE_SIZE_MAX);
            loop {
                let got = services.list_tenants(&Principal::cli(), page).await?;
                principals.extend(got.items.iter().map(|tenant| Principal::cli_in(tenant.id)));
                let Some(cursor) = got.next_cursor else { break };
                page = PageRequest::new(Some(PAGE_SIZE_MAX), Some(cursor));
            }
            principals
        }
    };
    let mut reports = Vec::new();
    let mut all_ok = true;
    for principal in &principals {
        let verification = services.verify_audit(principal).await?;
        all_ok &= verification.report.ok();
        reports.push(VerifyOut::from(verification));
    }
    print(&serde_json::json!({"ok": all_ok, "chains": reports}))?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
