//! GetRandomPassword (no secret involved, no store: it runs inline).

use berth_secrets::password::{PasswordOptions, random_password};
use serde::{Deserialize, Serialize};

use super::secrets_error;
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordRequest {
    pub password_length: Option<i64>,
    pub exclude_characters: Option<String>,
    pub exclude_numbers: Option<bool>,
    pub exclude_punctuation: Option<bool>,
    pub exclude_uppercase: Option<bool>,
    pub exclude_lowercase: Option<bool>,
    pub include_space: Option<bool>,
    pub require_each_included_type: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordResponse {
    pub random_password: String,
}

pub(super) async fn get_random_password(
    _ctx: &AwsContext,
    req: GetRandomPasswordRequest,
) -> Result<GetRandomPasswordResponse, AwsError> {
    let random_password = random_password(&PasswordOptions {
        length: req.password_length,
        exclude_characters: req.exclude_characters,
        exclude_numbers: req.exclude_numbers.unwrap_or(false),
        exclude_punctuation: req.exclude_punctuation.unwrap_or(false),
        exclude_uppercase: req.exclude_uppercase.unwrap_or(false),
        exclude_lowercase: req.exclude_lowercase.unwrap_or(false),
        include_space: req.include_space.unwrap_or(false),
        require_each_included_type: req.require_each_included_type,
    })
    .map_err(secrets_error)?;
    Ok(GetRandomPasswordResponse { random_password })
}
