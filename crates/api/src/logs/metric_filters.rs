//! Metric filters: PutMetricFilter, DescribeMetricFilters, DeleteMetricFilter,
//! TestMetricFilter (shapes as the API reference and botocore's model name them).

use std::collections::BTreeMap;

use berth_logs::metric_filters::test_metric_filter as run_test;
use berth_logs::{DescribeMetricFilters, MetricFilter, MetricTransformation};
use serde::{Deserialize, Serialize};

use super::{Empty, limit, log_scope, logs_error};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformationWire {
    pub metric_name: String,
    pub metric_namespace: String,
    pub metric_value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutMetricFilterRequest {
    pub log_group_name: String,
    pub filter_name: String,
    pub filter_pattern: String,
    pub metric_transformations: Vec<MetricTransformationWire>,
    #[serde(default)]
    pub apply_on_transformed_logs: bool,
}

pub(super) async fn put_metric_filter(
    ctx: &AwsContext,
    req: PutMetricFilterRequest,
) -> Result<Empty, AwsError> {
    let transformations = req
        .metric_transformations
        .into_iter()
        .map(|t| MetricTransformation {
            metric_name: t.metric_name,
            metric_namespace: t.metric_namespace,
            metric_value: t.metric_value,
            default_value: t.default_value,
            dimensions: t.dimensions.unwrap_or_default(),
            unit: t.unit,
        })
        .collect();
    ctx.app
        .logs
        .put_metric_filter(
            &log_scope(ctx),
            &req.log_group_name,
            &req.filter_name,
            &req.filter_pattern,
            transformations,
            req.apply_on_transformed_logs,
        )
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteMetricFilterRequest {
    pub log_group_name: String,
    pub filter_name: String,
}

pub(super) async fn delete_metric_filter(
    ctx: &AwsContext,
    req: DeleteMetricFilterRequest,
) -> Result<Empty, AwsError> {
    ctx.app
        .logs
        .delete_metric_filter(&log_scope(ctx), &req.log_group_name, &req.filter_name)
        .map_err(logs_error)?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeMetricFiltersRequest {
    pub log_group_name: Option<String>,
    pub filter_name_prefix: Option<String>,
    pub metric_name: Option<String>,
    pub metric_namespace: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilterWire {
    pub filter_name: String,
    pub filter_pattern: String,
    pub metric_transformations: Vec<MetricTransformationWire>,
    pub creation_time: i64,
    pub log_group_name: String,
    pub apply_on_transformed_logs: bool,
}

impl From<MetricFilter> for MetricFilterWire {
    fn from(f: MetricFilter) -> Self {
        MetricFilterWire {
            filter_name: f.filter_name,
            filter_pattern: f.filter_pattern,
            metric_transformations: f
                .metric_transformations
                .into_iter()
                .map(|t| MetricTransformationWire {
                    metric_name: t.metric_name,
                    metric_namespace: t.metric_namespace,
                    metric_value: t.metric_value,
                    default_value: t.default_value,
                    dimensions: (!t.dimensions.is_empty()).then_some(t.dimensions),
                    unit: t.unit,
                })
                .collect(),
            creation_time: f.creation_time,
            log_group_name: f.log_group_name,
            apply_on_transformed_logs: f.apply_on_transformed_logs,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeMetricFiltersResponse {
    pub metric_filters: Vec<MetricFilterWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn describe_metric_filters(
    ctx: &AwsContext,
    req: DescribeMetricFiltersRequest,
) -> Result<DescribeMetricFiltersResponse, AwsError> {
    let (filters, next_token) = ctx
        .app
        .logs
        .describe_metric_filters(
            &log_scope(ctx),
            &DescribeMetricFilters {
                group: req.log_group_name,
                name_prefix: req.filter_name_prefix,
                metric_name: req.metric_name,
                metric_namespace: req.metric_namespace,
                next_token: req.next_token,
                limit: limit("limit", req.limit, 50)?.unwrap_or(50),
            },
        )
        .map_err(logs_error)?;
    Ok(DescribeMetricFiltersResponse {
        metric_filters: filters.into_iter().map(MetricFilterWire::from).collect(),
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestMetricFilterRequest {
    pub filter_pattern: String,
    pub log_event_messages: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilterMatchRecord {
    pub event_number: usize,
    pub event_message: String,
    pub extracted_values: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct TestMetricFilterResponse {
    pub matches: Vec<MetricFilterMatchRecord>,
}

pub(super) async fn test_metric_filter(
    _ctx: &AwsContext,
    req: TestMetricFilterRequest,
) -> Result<TestMetricFilterResponse, AwsError> {
    let matches = run_test(&req.filter_pattern, &req.log_event_messages).map_err(logs_error)?;
    Ok(TestMetricFilterResponse {
        matches: matches
            .into_iter()
            .map(|m| MetricFilterMatchRecord {
                event_number: m.event_number,
                event_message: m.event_message,
                extracted_values: m.extracted_values,
            })
            .collect(),
    })
}
