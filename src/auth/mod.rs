//! Caller authentication: which game servers may call gamegate, and with which
//! apps, whatever protocol they call with. Callers send `authorization: Bearer
//! <token>`, or connect over mTLS with a client certificate whose subject
//! alternative name a caller is configured with (`certificate_san`); tokens
//! are kept only as SHA-256 digests, so neither memory dumps of the registry
//! nor timing of the comparison reveal them.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{config::Caller, errors::GatewayError, net::ConnectionMemo};

pub struct CallerRegistry {
    callers: Vec<Arc<RegisteredCaller>>,
    /// Which registry this is, for as long as the process runs: a caller a
    /// connection remembers from another one (before a reload) is not used.
    generation: u64,
}

/// The generations of registries built so far.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

/// The caller a connection's credentials named last: the `authorization`
/// value (the connection's HTTP/2 header table holds it as long), the
/// registry that said so, and who it was. A request with the same value on
/// the same connection (hence the same client certificate) is that caller,
/// checked by a comparison of the value instead of its SHA-256 digest.
struct RememberedCaller {
    /// Zeroed when the connection ends (or remembers another caller).
    authorization: SecretSlice<u8>,
    generation: u64,
    caller: Arc<RegisteredCaller>,
}

pub struct RegisteredCaller {
    pub name: String,
    /// `None`: the caller authenticates by its certificate only.
    token_digest: Option<[u8; 32]>,
    /// The client certificate name (DNS or URI SAN) that identifies it.
    certificate_san: Option<String>,
    /// `None`: every app.
    apps: Option<HashSet<String>>,
    /// Code2Session answers it with the user's session_key.
    pub receive_session_keys: bool,
}

impl RegisteredCaller {
    pub fn may_use(&self, app_id: &str) -> bool {
        self.apps.as_ref().is_none_or(|apps| apps.contains(app_id))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl CallerRegistry {
    pub fn new(callers: &[Caller]) -> Self {
        CallerRegistry {
            callers: callers
                .iter()
                .map(|caller| {
                    Arc::new(RegisteredCaller {
                        name: caller.name.clone(),
                        token_digest: Some(caller.token.expose_secret())
                            .filter(|token| !token.is_empty())
                            .map(digest),
                        certificate_san: caller.certificate_san.clone(),
                        apps: (!caller.all_apps()).then(|| caller.apps.iter().cloned().collect()),
                        receive_session_keys: caller.receive_session_keys,
                    })
                })
                .collect(),
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// [`authenticate`](Self::authenticate), remembering an authenticated
    /// caller in `memo` (its connection's, when the request came on one) for
    /// the requests after: one digest per connection and token instead of one
    /// per request.
    pub fn authenticate_remembering(
        &self,
        authorization: Option<&str>,
        certificate_names: Option<&[String]>,
        memo: Option<&ConnectionMemo>,
    ) -> Result<Option<Arc<RegisteredCaller>>, GatewayError> {
        let (Some(presented), Some(memo)) = (authorization.filter(|_| !self.is_open()), memo)
        else {
            return self.authenticate(authorization, certificate_names);
        };
        let remembered = memo
            .get()
            .and_then(|value| value.downcast::<RememberedCaller>().ok())
            .filter(|remembered| remembered.generation == self.generation);
        if let Some(remembered) = remembered
            && bool::from(
                remembered
                    .authorization
                    .expose_secret()
                    .ct_eq(presented.as_bytes()),
            )
        {
            return Ok(Some(remembered.caller.clone()));
        }
        let found = self.authenticate(authorization, certificate_names)?;
        if let Some(caller) = &found {
            memo.set(Arc::new(RememberedCaller {
                authorization: SecretSlice::from(presented.as_bytes().to_vec()),
                generation: self.generation,
                caller: caller.clone(),
            }));
        }
        Ok(found)
    }

    /// True when no caller is configured: everyone may call, with any app.
    pub fn is_open(&self) -> bool {
        self.callers.is_empty()
    }

    /// The caller of a request, from the value of its `authorization` header
    /// (every protocol carries one) and the names of the verified client
    /// certificate of its connection (mTLS); `Ok(None)` when the registry is
    /// open. A token and a certificate that name two callers are refused:
    /// which one is calling would be a guess.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        certificate_names: Option<&[String]>,
    ) -> Result<Option<Arc<RegisteredCaller>>, GatewayError> {
        if self.is_open() {
            return Ok(None);
        }
        let by_token = match authorization {
            Some(value) => {
                let token = bearer_token(value).ok_or(GatewayError::CallerUnauthenticated)?;
                let presented = digest(token);
                Some(
                    self.callers
                        .iter()
                        .find(|caller| caller.token_digest == Some(presented))
                        .ok_or(GatewayError::CallerUnauthenticated)?,
                )
            }
            None => None,
        };
        let by_certificate = certificate_names.and_then(|names| {
            self.callers.iter().find(|caller| {
                caller
                    .certificate_san
                    .as_ref()
                    .is_some_and(|san| names.iter().any(|name| name == san))
            })
        });
        match (by_token, by_certificate) {
            (Some(token), Some(certificate)) if !Arc::ptr_eq(token, certificate) => {
                Err(GatewayError::CallerIdentityConflict {
                    token_caller: token.name.clone(),
                    certificate_caller: certificate.name.clone(),
                })
            }
            (Some(caller), _) | (None, Some(caller)) => Ok(Some(caller.clone())),
            (None, None) => Err(GatewayError::CallerUnauthenticated),
        }
    }
}

/// The token of an `authorization: Bearer <token>` value; the scheme is
/// case-insensitive (RFC 9110, 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn caller(name: &str, token: &str, san: Option<&str>, apps: &[&str]) -> Caller {
        Caller {
            name: name.into(),
            token: SecretString::from(token),
            token_file: None,
            certificate_san: san.map(str::to_string),
            apps: apps.iter().map(|app| app.to_string()).collect(),
            receive_session_keys: false,
        }
    }

    #[test]
    fn a_caller_is_known_by_its_token_or_its_certificate_and_never_by_two_answers() {
        let registry = CallerRegistry::new(&[
            caller("lobby", "lobby-token-0123456789", None, &["1"]),
            caller("match", "", Some("match.game.internal"), &["*"]),
            caller(
                "both",
                "both-token-0123456789",
                Some("both.game.internal"),
                &["2"],
            ),
        ]);
        let name = |found: Result<Option<Arc<RegisteredCaller>>, GatewayError>| {
            found.map(|caller| caller.expect("callers are configured").name.clone())
        };
        assert_eq!(
            name(registry.authenticate(Some("Bearer lobby-token-0123456789"), None)).unwrap(),
            "lobby"
        );
        let names: Vec<String> = vec!["other.example".into(), "match.game.internal".into()];
        let matcher = name(registry.authenticate(None, Some(&names))).unwrap();
        assert_eq!(matcher, "match");
        // A certificate-only caller has no token that anything could match.
        assert!(registry.authenticate(Some("Bearer "), None).is_err());
        // The same caller both ways; a token and a certificate of two callers.
        let both: Vec<String> = vec!["both.game.internal".into()];
        assert_eq!(
            name(registry.authenticate(Some("Bearer both-token-0123456789"), Some(&both))).unwrap(),
            "both"
        );
        assert!(matches!(
            registry.authenticate(Some("Bearer lobby-token-0123456789"), Some(&names)),
            Err(GatewayError::CallerIdentityConflict { .. })
        ));
        // Nothing known, or a wrong token beside a right certificate.
        let unknown: Vec<String> = vec!["stranger.example".into()];
        assert!(registry.authenticate(None, Some(&unknown)).is_err());
        assert!(registry.authenticate(None, None).is_err());
        assert!(
            registry
                .authenticate(Some("Bearer wrong-token-0123456789"), Some(&names))
                .is_err()
        );
        // Apps: listed, or every one.
        let lobby = registry.authenticate(Some("Bearer lobby-token-0123456789"), None);
        let lobby = lobby.unwrap().unwrap();
        assert!(lobby.may_use("1") && !lobby.may_use("2"));
        let matcher = registry.authenticate(None, Some(&names)).unwrap().unwrap();
        assert!(matcher.may_use("1") && matcher.may_use("2"));
    }

    #[test]
    fn a_connection_remembers_its_caller_for_its_token_and_its_registry_only() {
        let callers = [
            caller("lobby", "lobby-token-0123456789", None, &["1"]),
            caller("match", "match-token-0123456789", None, &["*"]),
        ];
        let registry = CallerRegistry::new(&callers);
        let memo = ConnectionMemo::default();
        let name = |found: Result<Option<Arc<RegisteredCaller>>, GatewayError>| {
            found.map(|caller| caller.expect("callers are configured").name.clone())
        };
        let lobby = Some("Bearer lobby-token-0123456789");
        assert_eq!(
            name(registry.authenticate_remembering(lobby, None, Some(&memo))).unwrap(),
            "lobby"
        );
        assert!(memo.get().is_some(), "remembered");
        assert_eq!(
            name(registry.authenticate_remembering(lobby, None, Some(&memo))).unwrap(),
            "lobby"
        );
        // Another token on the same connection is authenticated as itself,
        // a wrong one is refused, whatever was remembered.
        let matcher = Some("Bearer match-token-0123456789");
        assert_eq!(
            name(registry.authenticate_remembering(matcher, None, Some(&memo))).unwrap(),
            "match"
        );
        let wrong = Some("Bearer lobby-token-0123456780");
        assert!(
            registry
                .authenticate_remembering(wrong, None, Some(&memo))
                .is_err()
        );
        assert_eq!(
            name(registry.authenticate_remembering(matcher, None, Some(&memo))).unwrap(),
            "match"
        );
        // A reload that drops the caller: the remembered one is not used.
        let reloaded = CallerRegistry::new(&callers[..1]);
        assert!(
            reloaded
                .authenticate_remembering(matcher, None, Some(&memo))
                .is_err()
        );
        assert_eq!(
            name(reloaded.authenticate_remembering(lobby, None, Some(&memo))).unwrap(),
            "lobby"
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER  t0k ", " bEaReR t0k"] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value:?}");
        }
        for value in ["Basic t0k", "Bearer", "Bearer   ", "t0k", "Bearert0k"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
