//! Account settings (ListAccountSettings, PutAccountSetting, PutAccountSettingDefault,
//! DeleteAccountSetting): ECS's named switches with their documented defaults. Berth has one principal, the root
//! user, so a setting and its account default are the same value.

use berth_model::Scope;
use serde::{Deserialize, Serialize};

use crate::keys::account_setting_key;
use crate::{Ecs, EcsError, Result, decode, encode};

/// ECS's account settings and their defaults for a new account.
pub const ACCOUNT_SETTINGS: [(&str, &str); 10] = [
    ("serviceLongArnFormat", "enabled"),
    ("taskLongArnFormat", "enabled"),
    ("containerInstanceLongArnFormat", "enabled"),
    ("awsvpcTrunking", "disabled"),
    ("containerInsights", "disabled"),
    ("dualStackIPv6", "disabled"),
    ("fargateFIPSMode", "disabled"),
    ("tagResourceAuthorization", "on"),
    ("fargateTaskRetirementWaitPeriod", "7"),
    ("guardDutyActivate", "off"),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSetting {
    pub name: String,
    pub value: String,
    pub principal_arn: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// ECS's refusal of a setting name it does not know. Its message for a bad value is seen
/// ("Invalid setting 'value'": aws/aws-cli#3785, hashicorp/terraform-provider-aws#32114);
/// the one for the name follows its pattern.
pub fn check_setting_name(name: &str) -> Result<()> {
    if ACCOUNT_SETTINGS.iter().any(|(n, _)| *n == name) {
        Ok(())
    } else {
        Err(EcsError::InvalidParameter("Invalid setting 'name'".into()))
    }
}

fn root(scope: &Scope) -> String {
    format!("arn:aws:iam::{}:root", scope.account)
}

impl Ecs {
    pub fn account_settings(&self, scope: &Scope) -> Result<Vec<AccountSetting>> {
        ACCOUNT_SETTINGS
            .iter()
            .map(|(name, default)| {
                Ok(match self.store.get(&account_setting_key(scope, name))? {
                    Some(kv) => decode(&kv)?,
                    None => AccountSetting {
                        name: name.to_string(),
                        value: default.to_string(),
                        principal_arn: root(scope),
                        kind: "aws_managed".into(),
                    },
                })
            })
            .collect()
    }

    pub fn put_account_setting(
        &self,
        scope: &Scope,
        name: &str,
        value: &str,
    ) -> Result<AccountSetting> {
        check_setting_name(name)?;
        let valid = match name {
            "fargateTaskRetirementWaitPeriod" => matches!(value, "0" | "7" | "14"),
            "tagResourceAuthorization" | "guardDutyActivate" => matches!(value, "on" | "off"),
            "containerInsights" => matches!(value, "enabled" | "disabled" | "enhanced"),
            _ => matches!(value, "enabled" | "disabled"),
        };
        if !valid {
            return Err(EcsError::InvalidParameter("Invalid setting 'value'".into()));
        }
        let setting = AccountSetting {
            name: name.to_string(),
            value: value.to_string(),
            principal_arn: root(scope),
            kind: "user".into(),
        };
        self.store
            .put(&account_setting_key(scope, name), &encode(&setting))?;
        Ok(setting)
    }

    /// DeleteAccountSetting: the setting goes back to its default; the answer is the setting
    /// as it was.
    pub fn delete_account_setting(&self, scope: &Scope, name: &str) -> Result<AccountSetting> {
        check_setting_name(name)?;
        let key = account_setting_key(scope, name);
        let current = self
            .account_settings(scope)?
            .into_iter()
            .find(|s| s.name == name)
            .expect("every known setting is listed");
        self.store.delete(&key)?;
        Ok(current)
    }
}
