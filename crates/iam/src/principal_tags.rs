//! `aws:PrincipalTag/KEY`: the tags of the user a request is signed by, or of the role a
//! session belongs to with the session's own tags over them, read when the request is
//! authorized (a tag changed on the user or
//! role applies to its next request, as in IAM).

use crate::{Iam, IamError, Principal, Result};

impl Iam {
    /// The caller's principal tags: a user's tags, a role session's role tags; none for the
    /// root account, or for a user or role deleted (or made again: another unique id).
    pub fn principal_tags(&self, principal: &Principal) -> Result<Vec<(String, String)>> {
        let found = match principal {
            Principal::Root { .. } => return Ok(Vec::new()),
            Principal::User {
                account, name, id, ..
            } => self
                .get_user(account, name)
                .map(|u| (u.user_id == *id).then_some(u.tags)),
            Principal::AssumedRole {
                account,
                role_name,
                role_id,
                session_tags,
                ..
            } => {
                // Session tags win over the role's tags of the same key (keys are
                // case-insensitive), as IAM merges them.
                let role_tags = match self.get_role(account, role_name) {
                    Ok(r) if r.role_id == *role_id => r.tags,
                    Ok(_) | Err(IamError::NoSuchEntity(_)) => Vec::new(),
                    Err(e) => return Err(e),
                };
                let mut tags: Vec<(String, String)> = role_tags
                    .into_iter()
                    .filter(|(k, _)| !session_tags.iter().any(|(s, _)| s.eq_ignore_ascii_case(k)))
                    .collect();
                tags.extend(session_tags.iter().cloned());
                return Ok(tags);
            }
        };
        match found {
            Ok(tags) => Ok(tags.unwrap_or_default()),
            Err(IamError::NoSuchEntity(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}
