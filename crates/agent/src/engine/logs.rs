//! The awslogs log driver's part of a supervisor: a container's options, checked as Docker
//! checks them, and one shipper per container, drained before the task is cleaned up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::Inner;
use super::errors::StartError;
use super::supervisor::Supervisor;
use crate::awslogs::{
    self, AwslogsOptions, LogsApi, Progress, PutLogEventsRequest, RejectedLogEventsInfo, Shipper,
    StreamLookup,
};
use crate::client::{ClientError, ControlFuture};
use crate::translate;

impl Supervisor {
    /// The container's awslogs options when its log driver is awslogs; `Err` is the task's
    /// stopped reason when they are not valid (Docker's check at create).
    pub(super) fn awslogs_options(
        &mut self,
        name: &str,
    ) -> Result<Option<AwslogsOptions>, StartError> {
        let Some(log) = translate::log_config(&self.members[name].def) else {
            return Ok(None);
        };
        if log.driver != awslogs::DRIVER {
            return Ok(None);
        }
        // The instance's region (its ARN's) when the options name none.
        let region = self
            .engine
            .config
            .instance_arn
            .split(':')
            .nth(3)
            .unwrap_or_default();
        AwslogsOptions::parse(&log.options, region)
            .map(Some)
            .map_err(|e| self.fail_member(name, StartError::LogOptions(e)))
    }

    /// The CloudWatch Logs calls of this task's shippers: signed with the task's execution
    /// role while it has one (its latest credentials, call by call), else the agent's own.
    pub(super) fn logs_api(&self) -> Arc<dyn LogsApi> {
        if self.engine.execution_credentials(&self.arn).is_none() {
            return self.engine.control.clone();
        }
        Arc::new(ExecutionRoleLogs {
            engine: self.engine.clone(),
            task_arn: self.arn.clone(),
        })
    }

    /// Starts shipping a container's log (once: a running shipper is left alone).
    pub(super) fn ship_logs(&mut self, name: &str, options: AwslogsOptions) {
        let Some(id) = self.members[name].id.clone() else {
            return;
        };
        if self
            .shippers
            .get(name)
            .is_some_and(|(shipper, _)| !shipper.is_finished())
        {
            return;
        }
        let stream = options.stream_name(name, &self.arn, id.as_str());
        tracing::debug!(task = %self.arn, container = name, group = %options.group, %stream, "shipping the container's log");
        let progress = Progress::now();
        let shipper = Shipper {
            logs: self.logs_api(),
            runtime: self.engine.runtime.clone(),
            container: id,
            options,
            stream,
            progress: progress.clone(),
            shutdown: self.engine.shutdown.clone(),
        };
        self.shippers
            .insert(name.to_owned(), (tokio::spawn(shipper.run()), progress));
    }

    /// Waits for the shippers to deliver what the stopped containers wrote; one that makes
    /// no progress for [`awslogs::DRAIN_LIMIT`] is given up on. `false` on shutdown.
    pub(super) async fn drain_shippers(&mut self) -> bool {
        let mut shutdown = self.engine.shutdown.clone();
        for (name, (mut shipper, progress)) in std::mem::take(&mut self.shippers) {
            loop {
                tokio::select! {
                    _ = &mut shipper => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if progress.idle_for() >= awslogs::DRAIN_LIMIT {
                            tracing::warn!(task = %self.arn, container = %name, "the container's log could not be delivered for {:?}; the rest of it is lost", awslogs::DRAIN_LIMIT);
                            shipper.abort();
                            break;
                        }
                    }
                    _ = shutdown.changed() => return false,
                }
            }
        }
        true
    }
}

/// CloudWatch Logs calls signed with a task's execution role (`execution-role-awslogs`),
/// falling back to the agent's own credentials when the task has none (any more).
struct ExecutionRoleLogs {
    engine: Arc<Inner>,
    task_arn: String,
}

impl ExecutionRoleLogs {
    async fn call(&self, region: &str, operation: &str, body: Value) -> Result<Value, ClientError> {
        let credentials = self
            .engine
            .execution_credentials(&self.task_arn)
            .ok_or_else(|| {
                ClientError::Protocol("the task has no execution role credentials".to_owned())
            })?;
        self.engine
            .control
            .json_call_as(
                &credentials,
                "logs",
                region,
                &awslogs::logs_target(operation),
                body,
            )
            .await
    }
}

impl LogsApi for ExecutionRoleLogs {
    fn create_log_group<'a>(&'a self, region: &'a str, group: &'a str) -> ControlFuture<'a, ()> {
        Box::pin(async move {
            awslogs::already_exists(
                self.call(region, "CreateLogGroup", json!({"logGroupName": group}))
                    .await,
            )
        })
    }

    fn create_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, ()> {
        Box::pin(async move {
            awslogs::already_exists(
                self.call(
                    region,
                    "CreateLogStream",
                    json!({"logGroupName": group, "logStreamName": stream}),
                )
                .await,
            )
        })
    }

    /// Where the shipper left off (Berth's resume cursor), asked as a put, so the execution
    /// role needs only what ECS's does (CreateLogStream, PutLogEvents).
    fn find_log_stream<'a>(
        &'a self,
        region: &'a str,
        group: &'a str,
        stream: &'a str,
    ) -> ControlFuture<'a, StreamLookup> {
        Box::pin(async move {
            let body = serde_json::to_value(PutLogEventsRequest::cursor_lookup(group, stream))
                .expect("json");
            let answer = self.call(region, "PutLogEvents", body).await?;
            Ok(awslogs::stream_lookup(&answer))
        })
    }

    fn put_log_events<'a>(
        &'a self,
        region: &'a str,
        request: &'a PutLogEventsRequest,
    ) -> ControlFuture<'a, RejectedLogEventsInfo> {
        Box::pin(async move {
            let body = serde_json::to_value(request).expect("json");
            let answer = self.call(region, "PutLogEvents", body).await?;
            Ok(awslogs::rejected(&answer))
        })
    }
}
