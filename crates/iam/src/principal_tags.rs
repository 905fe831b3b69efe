//! `aws:PrincipalTag/KEY`: the tags of the user a request is signed by, or of the role a
//! session belongs to, read when the request is authorized (a tag changed on the user or
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
                ..
            } => self
                .get_role(account, role_name)
                .map(|r| (r.role_id == *role_id).then_some(r.tags)),
        };
        match found {
            Ok(tags) => Ok(tags.unwrap_or_default()),
            Err(IamError::NoSuchEntity(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}
