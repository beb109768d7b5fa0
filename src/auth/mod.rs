//! Caller authentication: which game servers may call gamegate, and with which
//! apps, whatever protocol they call with. Callers send `authorization: Bearer
//! <token>`; tokens are kept only as SHA-256 digests, so neither memory dumps of
//! the registry nor timing of the comparison reveal them.

use std::{collections::HashSet, sync::Arc};

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::{config::Caller, errors::GatewayError};

pub struct CallerRegistry {
    callers: Vec<Arc<RegisteredCaller>>,
}

pub struct RegisteredCaller {
    pub name: String,
    token_digest: [u8; 32],
    /// `None`: every app.
    apps: Option<HashSet<String>>,
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
                        token_digest: digest(caller.token.expose_secret()),
                        apps: (!caller.apps.is_empty())
                            .then(|| caller.apps.iter().cloned().collect()),
                    })
                })
                .collect(),
        }
    }

    /// True when no caller is configured: everyone may call, with any app.
    pub fn is_open(&self) -> bool {
        self.callers.is_empty()
    }

    /// The caller of a request, from the value of its `authorization` header
    /// (every protocol carries one); `Ok(None)` when the registry is open.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Option<Arc<RegisteredCaller>>, GatewayError> {
        if self.is_open() {
            return Ok(None);
        }
        let token = authorization
            .and_then(bearer_token)
            .ok_or(GatewayError::CallerUnauthenticated)?;
        let presented = digest(token);
        self.callers
            .iter()
            .find(|caller| caller.token_digest == presented)
            .map(|caller| Some(caller.clone()))
            .ok_or(GatewayError::CallerUnauthenticated)
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
    use super::bearer_token;

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
