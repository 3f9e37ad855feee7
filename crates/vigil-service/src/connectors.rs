//! Connector configuration: what each kind needs, and its credentials sealed on the way in.
//! Credentials never come back out of these use cases; only the sync engine opens them.

use std::collections::BTreeMap;

use vigil_domain::{
    Connector, ConnectorKind, ConnectorName, ConnectorOptions, Permission, Severity, SourceUrl,
    SyncInterval, TenantId, Timestamp,
};

use crate::{Principal, ServiceError, ServiceResult, Services};

/// Most connectors one tenant may configure.
pub const CONNECTORS_PER_TENANT_MAX: usize = 64;
/// Longest credential value, in characters.
pub const CREDENTIAL_LEN_MAX: usize = 4_096;
/// The default `interval_s`.
pub const SYNC_INTERVAL_DEFAULT_SECONDS: u32 = 300;

/// A connector's credentials in clear: name → value. `Debug` shows the names only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials(BTreeMap<String, String>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Credentials {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a map of strings serializes")
    }

    fn from_json(bytes: &[u8]) -> ServiceResult<Self> {
        serde_json::from_slice(bytes)
            .map(Self)
            .map_err(|_| ServiceError::Internal("opened credentials are not a JSON map".into()))
    }
}

/// What each kind needs: (credential names, option names).
fn requirements(kind: ConnectorKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        ConnectorKind::TheHive => (&["api_key"], &["organisation"]),
        ConnectorKind::OpenCti => (&["token"], &[]),
        ConnectorKind::OpenRmf => (&["token_url", "client_id", "username", "password"], &[]),
        ConnectorKind::Taxii => (&["username", "password"], &["api_root", "collection"]),
    }
}

fn check_credentials(kind: ConnectorKind, credentials: &Credentials) -> ServiceResult<()> {
    check_credential_names(kind, credentials)?;
    // A token URL is where the password goes: it obeys the base URL's rules, and the
    // outbound policy checks it like every other call.
    if let Some(token_url) = credentials.get("token_url") {
        SourceUrl::parse(token_url).map_err(|err| {
            ServiceError::invalid("credentials", format!("`token_url` {}", err.reason()))
        })?;
    }
    Ok(())
}

fn check_credential_names(kind: ConnectorKind, credentials: &Credentials) -> ServiceResult<()> {
    let (names, _) = requirements(kind);
    if let Some(unknown) = credentials.0.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(ServiceError::invalid(
            "credentials",
            format!(
                "{kind} takes {}; `{unknown}` is not one of them",
                names.join(", ")
            ),
        ));
    }
    for name in names {
        match credentials.get(name) {
            Some(value) if !value.is_empty() && value.chars().count() <= CREDENTIAL_LEN_MAX => {}
            Some(_) => {
                return Err(ServiceError::invalid(
                    "credentials",
                    format!("`{name}` must be 1 to {CREDENTIAL_LEN_MAX} characters"),
                ));
            }
            None => {
                return Err(ServiceError::invalid(
                    "credentials",
                    format!("{kind} needs `{name}`"),
                ));
            }
        }
    }
    Ok(())
}

fn check_options(kind: ConnectorKind, options: &ConnectorOptions) -> ServiceResult<()> {
    let (_, names) = requirements(kind);
    match names
        .iter()
        .find(|name| options.get(name).is_none_or(str::is_empty))
    {
        Some(name) => Err(ServiceError::invalid(
            "options",
            format!("{kind} needs `{name}`"),
        )),
        None => Ok(()),
    }
}

/// A connector as a caller describes it in `PUT /api/v1/connectors/{name}`.
#[derive(Debug, Clone)]
pub struct ConnectorRequest {
    pub name: ConnectorName,
    pub kind: ConnectorKind,
    pub url: SourceUrl,
    pub enabled: bool,
    pub interval: Option<SyncInterval>,
    pub threshold: Option<Severity>,
    pub options: ConnectorOptions,
    /// `None` keeps the stored credentials of an existing connector.
    pub credentials: Option<Credentials>,
}

/// The bytes sealed credentials are bound to: their tenant, connector and the origin of the
/// URL they were entered for, so that credentials never open for another host.
fn binding(tenant: TenantId, name: &ConnectorName, url: &SourceUrl) -> Vec<u8> {
    format!("connector/{tenant}/{name}/{}", url.origin()).into_bytes()
}

/// The binding of credentials sealed before origins were bound. Such rows still open (the
/// service refuses any origin change without new credentials), and the next PUT with
/// credentials seals them under the origin binding.
fn legacy_binding(tenant: TenantId, name: &ConnectorName) -> Vec<u8> {
    format!("connector/{tenant}/{name}").into_bytes()
}

/// Why stored credentials cannot follow this change: another origin, or another kind.
fn keep_refusal(stored: &Connector, request: &ConnectorRequest) -> Option<String> {
    if stored.kind != request.kind {
        return Some(format!(
            "the kind changes from {} to {}: send its credentials",
            stored.kind, request.kind
        ));
    }
    let (from, to) = (stored.url.origin(), request.url.origin());
    (from != to).then(|| {
        format!(
            "the url's origin changes from {from} to {to}: send the credentials again, \
             they are only ever sent to the origin they were entered for"
        )
    })
}

impl Services {
    pub(crate) fn master_key(&self) -> ServiceResult<&crate::MasterKey> {
        self.master_key.as_deref().ok_or_else(|| {
            ServiceError::Unavailable(
                "no master key is configured for connector credentials".into(),
            )
        })
    }

    /// Creates or replaces a connector (tenant admins). Answers it and whether it is new.
    pub async fn put_connector(
        &self,
        principal: &Principal,
        request: ConnectorRequest,
    ) -> ServiceResult<(Connector, bool)> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        check_options(request.kind, &request.options)?;
        let existing = self.store().list_connectors(tenant).await?;
        let stored = existing.iter().find(|c| c.name == request.name);
        let sealed = match (&request.credentials, stored) {
            (Some(credentials), _) => {
                check_credentials(request.kind, credentials)?;
                let key = self.master_key()?;
                let bound_to = binding(tenant, &request.name, &request.url);
                Some(key.seal(&credentials.to_json(), &bound_to)?)
            }
            (None, Some(stored)) => {
                if let Some(why) = keep_refusal(stored, &request) {
                    return Err(ServiceError::invalid("credentials", why));
                }
                None
            }
            // Nothing stored to keep: the request assumes a state that is not there.
            (None, None) => {
                return Err(ServiceError::Conflict(
                    "a new connector needs credentials; there are none stored to keep".into(),
                ));
            }
        };
        // Synced records are keyed by (tenant, source = kind, external id), and deletions are
        // reconciled per source: two connectors of one kind would close each other's risks.
        if let Some(twin) = existing
            .iter()
            .find(|c| c.kind == request.kind && c.name != request.name)
        {
            return Err(ServiceError::Conflict(format!(
                "this tenant already has a {} connector ({}); one per kind",
                request.kind, twin.name
            )));
        }
        let is_new = existing.iter().all(|c| c.name != request.name);
        if is_new && existing.len() >= CONNECTORS_PER_TENANT_MAX {
            return Err(ServiceError::Conflict(format!(
                "a tenant has at most {CONNECTORS_PER_TENANT_MAX} connectors"
            )));
        }
        let connector = Connector {
            tenant_id: tenant,
            name: request.name,
            kind: request.kind,
            url: request.url,
            enabled: request.enabled,
            interval: request.interval.unwrap_or(
                SyncInterval::parse(i64::from(SYNC_INTERVAL_DEFAULT_SECONDS))
                    .expect("the default is in range"),
            ),
            threshold: request.threshold.unwrap_or(Severity::High),
            options: request.options,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        };
        if let Some(engine) = self.sync_engine.as_deref() {
            let credentials = match (&request.credentials, stored) {
                (Some(credentials), _) => Some(credentials.clone()),
                (None, Some(stored)) => Some(self.connector_credentials(stored).await?),
                (None, None) => None,
            };
            if let Some(credentials) = credentials {
                engine.check_connector(&connector, &credentials).await?;
            }
        }
        let change = principal.change();
        Ok(self
            .store()
            .put_connector(tenant, &change, connector, sealed)
            .await?)
    }

    pub async fn get_connector(
        &self,
        principal: &Principal,
        name: &ConnectorName,
    ) -> ServiceResult<Connector> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        Ok(self.store().get_connector(tenant, name).await?)
    }

    pub async fn list_connectors(&self, principal: &Principal) -> ServiceResult<Vec<Connector>> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        Ok(self.store().list_connectors(tenant).await?)
    }

    /// Removes the connector; what it synced stays.
    pub async fn delete_connector(
        &self,
        principal: &Principal,
        name: &ConnectorName,
    ) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        let change = principal.change();
        Ok(self.store().delete_connector(tenant, &change, name).await?)
    }

    /// Whether the stored connector already has exactly this configuration and these
    /// credentials (so that re-applying it would change nothing).
    pub async fn connector_matches(
        &self,
        principal: &Principal,
        request: &ConnectorRequest,
    ) -> ServiceResult<bool> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        let stored = match self.store().get_connector(tenant, &request.name).await {
            Ok(stored) => stored,
            Err(vigil_store::StoreError::NotFound) => return Ok(false),
            Err(err) => return Err(err.into()),
        };
        let same_config = stored.kind == request.kind
            && stored.url == request.url
            && stored.enabled == request.enabled
            && request.interval.is_none_or(|i| i == stored.interval)
            && request.threshold.unwrap_or(Severity::High) == stored.threshold
            && stored.options == request.options;
        if !same_config {
            return Ok(false);
        }
        match &request.credentials {
            None => Ok(true),
            Some(wanted) => Ok(self.connector_credentials(&stored).await? == *wanted),
        }
    }

    /// Records a cycle could not map or store, newest first.
    pub async fn list_dead_letters(
        &self,
        principal: &Principal,
        page: vigil_domain::PageRequest,
    ) -> ServiceResult<vigil_store::Page<vigil_domain::DeadLetter>> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        Ok(self.store().list_dead_letters(tenant, page).await?)
    }

    /// The connector's credentials in clear, for the sync engine only. They open only for
    /// the origin of the URL they were sealed with.
    pub async fn connector_credentials(&self, connector: &Connector) -> ServiceResult<Credentials> {
        let (tenant, name) = (connector.tenant_id, &connector.name);
        let sealed = self.store().connector_credentials(tenant, name).await?;
        let key = self.master_key()?;
        let opened = match key.open(&sealed, &binding(tenant, name, &connector.url)) {
            Ok(opened) => opened,
            Err(err) => key
                .open(&sealed, &legacy_binding(tenant, name))
                .map_err(|_| err)?,
        };
        Credentials::from_json(&opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn each_kind_needs_its_credentials_and_options() {
        assert!(check_credentials(ConnectorKind::TheHive, &creds(&[("api_key", "k")])).is_ok());
        assert!(check_credentials(ConnectorKind::TheHive, &creds(&[])).is_err());
        assert!(
            check_credentials(
                ConnectorKind::TheHive,
                &creds(&[("api_key", "k"), ("x", "y")])
            )
            .is_err()
        );
        assert!(check_credentials(ConnectorKind::Taxii, &creds(&[("username", "u")])).is_err());
        let none = ConnectorOptions::default();
        assert!(check_options(ConnectorKind::TheHive, &none).is_err());
        assert!(check_options(ConnectorKind::OpenCti, &none).is_ok());
    }

    #[test]
    fn debug_shows_credential_names_only() {
        let shown = format!("{:?}", creds(&[("api_key", "s3cret-value")]));
        assert!(
            shown.contains("api_key") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
