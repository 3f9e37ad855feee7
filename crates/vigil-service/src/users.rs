//! Users of a tenant (or of the platform) and their lifecycle: create, list, disable,
//! enable, reset a password, delete. Disabling, a reset and a delete revoke the user's
//! sessions at once (an access token stops with its session); every change is audited.

use secrecy::SecretString;
use vigil_domain::{Email, PageRequest, Role, UserId};
use vigil_store::{NewUser, Page, User, UserEdit};

use crate::principal::Credential;
use crate::services::access_scope;
use crate::{Principal, ServiceError, ServiceResult, Services, hash_password};

impl Services {
    pub async fn create_user(
        &self,
        principal: &Principal,
        email: Email,
        password: SecretString,
        role: Role,
    ) -> ServiceResult<User> {
        let scope = access_scope(principal)?;
        if role.is_tenant_role() != scope.tenant().is_some() {
            return Err(ServiceError::Forbidden(
                "platform users are platform-admin; tenant users have a tenant role".into(),
            ));
        }
        if let Some(tenant) = scope.tenant() {
            self.check_count(tenant, vigil_domain::Counted::Users)
                .await?;
        }
        let password_hash = self
            .with_password_slot(move || hash_password(&password))
            .await??;
        let user = NewUser {
            email,
            role,
            password_hash,
        };
        Ok(self
            .store()
            .create_user(scope, &principal.change(), user)
            .await?)
    }

    pub async fn list_users(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        let scope = access_scope(principal)?;
        Ok(self.store().list_users(scope, page).await?)
    }

    pub async fn get_user(&self, principal: &Principal, id: UserId) -> ServiceResult<User> {
        let scope = access_scope(principal)?;
        Ok(self.store().get_user(scope, id).await?)
    }

    /// Disables the user: no login, and every session ends now.
    pub async fn disable_user(&self, principal: &Principal, id: UserId) -> ServiceResult<User> {
        self.edit_user(principal, id, UserEdit::Disable).await
    }

    pub async fn enable_user(&self, principal: &Principal, id: UserId) -> ServiceResult<User> {
        self.edit_user(principal, id, UserEdit::Enable).await
    }

    /// Sets a new password (an admin's reset); every session of the user ends now.
    pub async fn reset_password(
        &self,
        principal: &Principal,
        id: UserId,
        password: SecretString,
    ) -> ServiceResult<User> {
        let hash = self
            .with_password_slot(move || hash_password(&password))
            .await??;
        self.edit_user(principal, id, UserEdit::SetPassword(hash))
            .await
    }

    /// Deletes the user and its sessions; the audit trail keeps its history.
    pub async fn delete_user(&self, principal: &Principal, id: UserId) -> ServiceResult<()> {
        self.edit_user(principal, id, UserEdit::Delete)
            .await
            .map(|_| ())
    }

    async fn edit_user(
        &self,
        principal: &Principal,
        id: UserId,
        edit: UserEdit,
    ) -> ServiceResult<User> {
        let scope = access_scope(principal)?;
        let is_self =
            matches!(principal.credential(), Credential::Session { user, .. } if user == id);
        if is_self && matches!(edit, UserEdit::Disable | UserEdit::Delete) {
            return Err(ServiceError::invalid(
                "id",
                "you cannot disable or delete your own account; another admin can",
            ));
        }
        let change = principal.change();
        Ok(self.store().edit_user(scope, &change, id, edit).await?)
    }
}
