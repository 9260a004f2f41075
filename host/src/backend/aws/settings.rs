//! Names and places of every AWS resource Weft uses, from the seed's
//! environment variables with their defaults.

/// Names and places of every AWS resource Weft uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION`, default `us-east-1`.
    pub region: String,
    /// `AWS_ENDPOINT` (or the SDK's `AWS_ENDPOINT_URL`): LocalStack, moto.
    pub endpoint: Option<String>,
    /// `RUNS_TABLE_NAME`, default `workflow-runs`.
    pub runs_table: String,
    /// `STEPS_TABLE_NAME`, default `workflow-steps`.
    pub steps_table: String,
    /// `HISTORY_TABLE_NAME`, default `workflow-step-history`.
    pub history_table: String,
    /// `LOGS_TABLE_NAME`, default `workflow-run-logs`.
    pub logs_table: String,
    /// `MODULES_TABLE_NAME`, default `workflow-modules`.
    pub modules_table: String,
    /// `MODULES_BUCKET_NAME`, default `weft-modules`.
    pub modules_bucket: String,
    /// `QUEUE_URL_PREFIX`: queue URL = prefix + queue name. Unset, the queue
    /// is looked up by name and RPC steps run inline (no worker fleet).
    pub queue_url_prefix: Option<String>,
    /// `QUEUE_NAME`, default `weft-work`; its dead-letter queue is
    /// `<name>-dlq`.
    pub queue_name: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

impl AwsSettings {
    /// Where RPC steps run: through the queue when a worker fleet is
    /// configured (`QUEUE_URL_PREFIX` set), inline otherwise.
    pub fn rpc_mode(&self) -> crate::config::RpcMode {
        if self.queue_url_prefix.is_some() {
            crate::config::RpcMode::Queued
        } else {
            crate::config::RpcMode::Inline
        }
    }

    pub fn from_env() -> Self {
        Self {
            region: env_or("AWS_REGION", "us-east-1"),
            endpoint: std::env::var("AWS_ENDPOINT")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok()
                .filter(|v| !v.is_empty()),
            runs_table: env_or("RUNS_TABLE_NAME", "workflow-runs"),
            steps_table: env_or("STEPS_TABLE_NAME", "workflow-steps"),
            history_table: env_or("HISTORY_TABLE_NAME", "workflow-step-history"),
            logs_table: env_or("LOGS_TABLE_NAME", "workflow-run-logs"),
            modules_table: env_or("MODULES_TABLE_NAME", "workflow-modules"),
            modules_bucket: env_or("MODULES_BUCKET_NAME", "weft-modules"),
            queue_url_prefix: std::env::var("QUEUE_URL_PREFIX")
                .ok()
                .filter(|v| !v.is_empty()),
            queue_name: env_or("QUEUE_NAME", "weft-work"),
        }
    }

    /// Every name derived from `prefix`, for isolated test environments.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            runs_table: format!("{prefix}-runs"),
            steps_table: format!("{prefix}-steps"),
            history_table: format!("{prefix}-history"),
            logs_table: format!("{prefix}-logs"),
            modules_table: format!("{prefix}-modules"),
            modules_bucket: format!("{prefix}-modules"),
            queue_name: format!("{prefix}-work"),
            ..self.clone()
        }
    }

    pub fn dead_letter_queue_name(&self) -> String {
        format!("{}-dlq", self.queue_name)
    }

    /// The environment variables that select these settings, for child
    /// processes (`weft dev` in tests, the Lambda template).
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_REGION", self.region.clone()),
            ("RUNS_TABLE_NAME", self.runs_table.clone()),
            ("STEPS_TABLE_NAME", self.steps_table.clone()),
            ("HISTORY_TABLE_NAME", self.history_table.clone()),
            ("LOGS_TABLE_NAME", self.logs_table.clone()),
            ("MODULES_TABLE_NAME", self.modules_table.clone()),
            ("MODULES_BUCKET_NAME", self.modules_bucket.clone()),
            ("QUEUE_NAME", self.queue_name.clone()),
        ];
        if let Some(e) = &self.endpoint {
            env.push(("AWS_ENDPOINT", e.clone()));
        }
        if let Some(p) = &self.queue_url_prefix {
            env.push(("QUEUE_URL_PREFIX", p.clone()));
        }
        env
    }
}
