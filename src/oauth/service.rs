//! The OAuth2 service: what the grants ([`super::grants`]), client authentication
//! ([`super::client_auth`]), revocation and introspection need — the store, the clock,
//! the settings, the client and lifetime-policy caches, the bearer-token cache they
//! clear, the client-secret throttle, the per-client issuance limit and the group commit —
//! with no HTTP in it. The handlers (`token`, `revoke`, `introspect`) parse the request,
//! call into this, and render the answer; [`crate::state::AppState`] holds one. Shaped
//! like [`crate::admin::Admin`], the CLI's service, so the grant rules can be tested
//! without a server.

use std::sync::Arc;

use super::client_auth::ClientCache;
use super::grants::LifetimePolicy;
use super::rate_limit::IssuanceLimit;
use crate::cache::TokenCache;
use crate::settings::Settings;
use crate::store::{Store, TokenBatcher};
use crate::throttle::Throttle;
use crate::time::Clock;

/// The OAuth2 authorization server's domain state.
pub struct OAuth {
    pub store: Arc<Store>,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    /// Recently validated bearer tokens, shared with the SCIM guard: a revocation here
    /// clears it before it answers.
    pub tokens: Arc<TokenCache>,
    /// Recently read client rows (see [`ClientCache`]).
    pub clients: ClientCache,
    /// The maximum token lifetime, re-read at most every `token_cache_ttl`.
    pub lifetime_policy: LifetimePolicy,
    /// Failed client authentications (slowed, never refused).
    pub client_throttle: Throttle,
    /// Tokens per client and minute at the token endpoint.
    pub issuance_limit: IssuanceLimit,
    /// Group commit of issued tokens (see `store::batch`).
    pub token_batcher: TokenBatcher,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth").finish_non_exhaustive()
    }
}

impl OAuth {
    /// The service over `store`, its caches and throttles empty.
    pub fn new(
        store: Arc<Store>,
        settings: Arc<Settings>,
        clock: Clock,
        tokens: Arc<TokenCache>,
    ) -> OAuth {
        OAuth {
            clients: ClientCache::new(settings.token_cache_ttl),
            lifetime_policy: LifetimePolicy::new(settings.token_cache_ttl),
            client_throttle: Throttle::for_client_secrets(settings.lockout),
            issuance_limit: IssuanceLimit::new(settings.client_issuance_per_minute),
            token_batcher: TokenBatcher::new(store.clone()),
            store,
            settings,
            clock,
            tokens,
        }
    }

    /// Commit the tokens still queued for the group commit (server shutdown).
    pub fn shutdown(&self) {
        self.token_batcher.shutdown();
    }
}

#[cfg(test)]
mod tests {
    //! The grant and client-authentication rules, without a server.

    use super::*;
    use crate::admin::{Admin, RegisterClient};
    use crate::model::{GrantType, Scope};
    use crate::oauth::client_auth::{Presented, Public};
    use crate::oauth::error::OAuthError;
    use crate::oauth::grants;
    use crate::oauth::params::Params;
    use crate::settings::{RawSettings, Settings};
    use crate::time::Duration;

    fn service(clock: &Clock) -> (tempfile::TempDir, OAuth) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(dir.path().join("s.db")).unwrap());
        let settings = Arc::new(Settings::resolve(RawSettings::default()).unwrap());
        let tokens = Arc::new(TokenCache::new(settings.token_cache_ttl));
        let oauth = OAuth::new(store, settings, clock.clone(), tokens);
        (dir, oauth)
    }

    fn register(oauth: &OAuth, req: RegisterClient) -> (Arc<crate::model::Client>, String) {
        let admin = Admin::new(&oauth.store, oauth.clock.clone(), "test");
        let (client, secret) = admin.register_client(req).unwrap();
        (
            Arc::new(client),
            secret.map(|s| s.expose().to_string()).unwrap_or_default(),
        )
    }

    fn form(text: &str) -> Params {
        Params::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn client_credentials_gives_the_clients_scopes_and_lifetime_and_nothing_more() {
        let clock = Clock::manual(1_000_000);
        let (_d, oauth) = service(&clock);
        let (client, _) = register(
            &oauth,
            RegisterClient {
                access_token_ttl: Some(Duration::minutes(20)),
                ..RegisterClient::new(
                    "idp",
                    &[GrantType::ClientCredentials],
                    &[Scope::DirectoryRead],
                )
            },
        );
        let (issued, record) = grants::client_credentials(
            &oauth,
            &client,
            &form("grant_type=client_credentials"),
            clock.now(),
        )
        .unwrap();
        assert_eq!(issued.expires_in, 20 * 60);
        assert_eq!(issued.scopes, vec![Scope::DirectoryRead]);
        assert!(issued.refresh.is_none(), "never a refresh token");
        assert_eq!(record.expires_at, clock.now() + 20 * 60);
        assert_eq!(record.client_epoch, client.token_epoch);
        let err = grants::client_credentials(
            &oauth,
            &client,
            &form("grant_type=client_credentials&scope=user-directory.write.all"),
            clock.now(),
        )
        .unwrap_err();
        assert!(matches!(err, OAuthError::InvalidScope(_)), "{err:?}");
        let (web_app, _) = register(
            &oauth,
            RegisterClient {
                redirect_uris: vec!["https://idp.example/cb".into()],
                ..RegisterClient::new(
                    "web",
                    &[GrantType::AuthorizationCode],
                    &[Scope::DirectoryRead],
                )
            },
        );
        let err = grants::client_credentials(
            &oauth,
            &web_app,
            &form("grant_type=client_credentials"),
            clock.now(),
        )
        .unwrap_err();
        assert!(matches!(err, OAuthError::UnauthorizedClient(_)), "{err:?}");
    }

    #[actix_web::test]
    async fn a_right_secret_passes_a_wrong_one_is_invalid_client_and_an_expired_one_is_a_dead_credential()
     {
        let clock = Clock::manual(1_000_000);
        let (_d, oauth) = service(&clock);
        let (client, secret) = register(
            &oauth,
            RegisterClient {
                client_secret_ttl: Some(Duration::days(1)),
                ..RegisterClient::new(
                    "idp",
                    &[GrantType::ClientCredentials],
                    &[Scope::DirectoryRead],
                )
            },
        );
        let presented = |secret: &str| Presented {
            client_id: client.id.clone(),
            secret: Some(secret.to_string()),
            basic: true,
        };
        let wrong = oauth
            .authenticate(
                &presented("sgcs_wrong"),
                Some([127, 0, 0, 1].into()),
                Public::Allowed,
            )
            .await
            .unwrap_err();
        assert!(matches!(wrong.error, OAuthError::InvalidClient { .. }));
        assert!(wrong.dead_credential.is_none());
        let ok = oauth
            .authenticate(
                &presented(&secret),
                Some([127, 0, 0, 1].into()),
                Public::Allowed,
            )
            .await
            .unwrap();
        assert_eq!(ok.id, client.id);
        clock.set(clock.now() + 2 * 86_400);
        let expired = oauth
            .authenticate(
                &presented(&secret),
                Some([127, 0, 0, 1].into()),
                Public::Allowed,
            )
            .await
            .unwrap_err();
        assert!(matches!(expired.error, OAuthError::InvalidClient { .. }));
        assert!(
            expired.dead_credential.is_some(),
            "the monitor learns the client's secret is dead"
        );
    }
}
