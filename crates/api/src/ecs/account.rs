//! Account settings: ListAccountSettings, PutAccountSetting(Default), DeleteAccountSetting.

use serde::{Deserialize, Serialize};

use super::{Order, ecs_error, page_of};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsRequest {
    pub name: Option<String>,
    pub value: Option<String>,
    pub principal_arn: Option<String>,
    #[serde(default)]
    pub effective_settings: bool,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsResponse {
    pub settings: Vec<berth_ecs::AccountSetting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutAccountSettingRequest {
    pub name: String,
    pub value: String,
    pub principal_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountSettingRequest {
    pub name: String,
    pub principal_arn: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AccountSettingResponse {
    pub setting: berth_ecs::AccountSetting,
}

pub(super) async fn list_account_settings(
    ctx: &AwsContext,
    req: ListAccountSettingsRequest,
) -> Result<ListAccountSettingsResponse, AwsError> {
    if let Some(name) = &req.name {
        berth_ecs::check_setting_name(name).map_err(ecs_error)?;
    }
    let all: Vec<berth_ecs::AccountSetting> = ctx
        .app
        .ecs
        .account_settings(&ctx.scope)
        .map_err(ecs_error)?
        .into_iter()
        .filter(|s| req.name.as_ref().is_none_or(|n| &s.name == n))
        .filter(|s| req.value.as_ref().is_none_or(|v| &s.value == v))
        // Without effectiveSettings, ECS lists only what was set explicitly.
        .filter(|s| req.effective_settings || req.name.is_some() || s.kind == "user")
        .collect();
    let (settings, next_token) = page_of(
        all,
        |s| format!("{}/{}", s.name, s.principal_arn),
        Order::Ascending,
        req.next_token.as_deref(),
        req.max_results,
        10,
    )?;
    Ok(ListAccountSettingsResponse {
        settings,
        next_token,
    })
}

pub(super) async fn put_account_setting(
    ctx: &AwsContext,
    req: PutAccountSettingRequest,
) -> Result<AccountSettingResponse, AwsError> {
    let setting = ctx
        .app
        .ecs
        .put_account_setting(&ctx.scope, &req.name, &req.value)
        .map_err(ecs_error)?;
    Ok(AccountSettingResponse { setting })
}

pub(super) async fn delete_account_setting(
    ctx: &AwsContext,
    req: DeleteAccountSettingRequest,
) -> Result<AccountSettingResponse, AwsError> {
    let setting = ctx
        .app
        .ecs
        .delete_account_setting(&ctx.scope, &req.name)
        .map_err(ecs_error)?;
    Ok(AccountSettingResponse { setting })
}
