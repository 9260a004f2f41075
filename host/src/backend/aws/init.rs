//! `weft aws init`: creates every table, queue and bucket Weft needs, on
//! whatever `AWS_ENDPOINT` points at. Idempotent: existing resources are
//! reported and left alone.

use super::dynamo::retention;
use super::{AwsClients, AwsSettings};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::fmt;
use std::time::Duration;

/// What `init` did to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    pub kind: &'static str,
    pub name: String,
    pub created: bool,
}

impl fmt::Display for Provisioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.created { "created" } else { "exists " };
        write!(f, "{what} {:<6} {}", self.kind, self.name)
    }
}

/// Queue tuning applied when the queues are created.
#[derive(Clone, Copy, Debug)]
pub struct QueueOptions {
    pub visibility_timeout: Duration,
    /// Receives before SQS moves a message to the dead-letter queue.
    pub max_receives: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(60),
            max_receives: 5,
        }
    }
}

/// An attribute used as a key: its name and type.
type KeyAttr = (&'static str, ScalarAttributeType);

struct IndexSpec {
    name: &'static str,
    hash: KeyAttr,
    range: Option<KeyAttr>,
    projected: Projected,
}

/// What an index copies from each item besides its keys.
enum Projected {
    /// Nothing.
    Keys,
    /// These attributes.
    Some(&'static [&'static str]),
    /// Everything.
    All,
}

struct TableSpec {
    name: String,
    hash: KeyAttr,
    range: Option<KeyAttr>,
    indexes: Vec<IndexSpec>,
}

fn tables(s: &AwsSettings) -> Vec<TableSpec> {
    use ScalarAttributeType::{N, S};
    vec![
        TableSpec {
            name: s.runs_table.clone(),
            hash: ("id", S),
            range: None,
            indexes: vec![
                IndexSpec {
                    name: "status-index",
                    hash: ("status", S),
                    range: Some(("createdAt", N)),
                    // Keys and the workflow filter only: a run's other updates
                    // cost no index write, and listings read runs by key.
                    projected: Projected::Some(&["workflow"]),
                },
                IndexSpec {
                    name: "quiet-index",
                    hash: ("quietShard", N),
                    range: Some(("quietKey", S)),
                    // The sweep reads the runs it finds by key.
                    projected: Projected::Keys,
                },
                IndexSpec {
                    name: "schedule-index",
                    hash: ("scheduleSet", S),
                    range: Some(("scheduleDue", S)),
                    // Listings and the tick read schedules by key.
                    projected: Projected::Keys,
                },
                IndexSpec {
                    name: retention::INDEX,
                    hash: ("purgeGroup", S),
                    range: Some(("purgeKey", S)),
                    // Expired runs by expiry, and each run's other items:
                    // the retention sweep deletes them by key.
                    projected: Projected::Keys,
                },
            ],
        },
        TableSpec {
            name: s.steps_table.clone(),
            hash: ("runStepKey", S),
            range: None,
            indexes: vec![IndexSpec {
                name: "runId-index",
                hash: ("runId", S),
                range: None,
                projected: Projected::All,
            }],
        },
        TableSpec {
            name: s.history_table.clone(),
            hash: ("stepId", S),
            range: Some(("attemptCount", N)),
            indexes: vec![],
        },
        TableSpec {
            name: s.logs_table.clone(),
            hash: ("runId", S),
            range: Some(("seq", N)),
            indexes: vec![],
        },
        TableSpec {
            name: s.modules_table.clone(),
            hash: ("name", S),
            range: Some(("version", N)),
            indexes: vec![],
        },
    ]
}

impl TableSpec {
    /// Every key attribute of the table and its indexes, each once.
    fn attributes(&self) -> anyhow::Result<Vec<AttributeDefinition>> {
        let mut keys = vec![&self.hash];
        keys.extend(&self.range);
        for index in &self.indexes {
            keys.push(&index.hash);
            keys.extend(&index.range);
        }
        let mut seen = std::collections::BTreeSet::new();
        keys.into_iter()
            .filter(|(name, _)| seen.insert(*name))
            .map(|(name, kind)| attr(name, kind.clone()))
            .collect()
    }
}

impl IndexSpec {
    fn build(&self) -> anyhow::Result<GlobalSecondaryIndex> {
        let mut schema = vec![key(self.hash.0, KeyType::Hash)?];
        if let Some((name, _)) = &self.range {
            schema.push(key(name, KeyType::Range)?);
        }
        let projection = match self.projected {
            Projected::Keys => Projection::builder().projection_type(ProjectionType::KeysOnly),
            Projected::All => Projection::builder().projection_type(ProjectionType::All),
            Projected::Some(attrs) => Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(attrs.iter().map(|a| a.to_string()).collect())),
        };
        Ok(GlobalSecondaryIndex::builder()
            .index_name(self.name)
            .set_key_schema(Some(schema))
            .projection(projection.build())
            .build()?)
    }
}

fn key(name: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn attr(name: &str, kind: ScalarAttributeType) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()?)
}

async fn create_table(clients: &AwsClients, spec: &TableSpec) -> anyhow::Result<Provisioned> {
    let mut schema = vec![key(spec.hash.0, KeyType::Hash)?];
    if let Some((name, _)) = &spec.range {
        schema.push(key(name, KeyType::Range)?);
    }
    let indexes = spec
        .indexes
        .iter()
        .map(IndexSpec::build)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let result = clients
        .dynamo
        .create_table()
        .table_name(&spec.name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .set_attribute_definitions(Some(spec.attributes()?))
        .set_key_schema(Some(schema))
        .send()
        .await;
    let created = match result {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => anyhow::bail!("creating table {}: {}", spec.name, super::describe(&e)),
    };
    wait_for_table(clients, &spec.name, None).await?;
    Ok(Provisioned {
        kind: "table",
        name: spec.name.clone(),
        created,
    })
}

/// Adds the indexes a table made by an older Weft lacks (DynamoDB builds
/// each from the items already there). One per update, as DynamoDB allows.
async fn add_missing_indexes(
    clients: &AwsClients,
    spec: &TableSpec,
) -> anyhow::Result<Vec<Provisioned>> {
    let described = clients
        .dynamo
        .describe_table()
        .table_name(&spec.name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("describing table {}: {}", spec.name, super::describe(&e)))?;
    let present: Vec<String> = described
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_string))
        .collect();
    let mut added = Vec::new();
    for index in spec
        .indexes
        .iter()
        .filter(|i| !present.iter().any(|p| p == i.name))
    {
        let built = index.build()?;
        let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
            .index_name(index.name)
            .set_key_schema(Some(built.key_schema().to_vec()))
            .set_projection(built.projection().cloned())
            .build()?;
        clients
            .dynamo
            .update_table()
            .table_name(&spec.name)
            .set_attribute_definitions(Some(spec.attributes()?))
            .global_secondary_index_updates(
                aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                    .create(create)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "adding index {} to {}: {}",
                    index.name,
                    spec.name,
                    super::describe(&e)
                )
            })?;
        wait_for_table(clients, &spec.name, Some(index.name)).await?;
        added.push(Provisioned {
            kind: "index",
            name: format!("{}/{}", spec.name, index.name),
            created: true,
        });
    }
    Ok(added)
}

/// Turns on DynamoDB's TTL on `table` by `attribute`, unless it is on.
/// DynamoDB allows one TTL attribute per table, so a table that expires by
/// another one is an error to resolve by hand, not something to override.
async fn enable_ttl(
    clients: &AwsClients,
    table: &str,
    attribute: &str,
) -> anyhow::Result<Provisioned> {
    use aws_sdk_dynamodb::types::{TimeToLiveSpecification, TimeToLiveStatus};
    let provisioned = |created| Provisioned {
        kind: "ttl",
        name: format!("{table}/{attribute}"),
        created,
    };
    let described = clients
        .dynamo
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("describing TTL of {table}: {}", super::describe(&e)))?;
    let current = described.time_to_live_description();
    let on = current.and_then(|d| d.attribute_name());
    match current.and_then(|d| d.time_to_live_status()) {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) if on == Some(attribute) => {
            return Ok(provisioned(false));
        }
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => anyhow::bail!(
            "table {table} expires items by `{}`; Weft's retention needs TTL on `{attribute}` \
             (DynamoDB allows one TTL attribute per table): disable the other first",
            on.unwrap_or_default()
        ),
        Some(TimeToLiveStatus::Disabling) => anyhow::bail!(
            "TTL on table {table} is being disabled; run `weft aws init` again once it is \
             (DynamoDB takes up to an hour)"
        ),
        _ => {}
    }
    clients
        .dynamo
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("enabling TTL on {table}: {}", super::describe(&e)))?;
    Ok(provisioned(true))
}

/// Real DynamoDB takes a few seconds to make a table ACTIVE, and minutes
/// to build an index on a table with items; `index`: wait for that one too.
async fn wait_for_table(
    clients: &AwsClients,
    name: &str,
    index: Option<&str>,
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{IndexStatus, TableStatus};
    for _ in 0..1200 {
        let out = clients
            .dynamo
            .describe_table()
            .table_name(name)
            .send()
            .await;
        let table = out.ok().and_then(|o| o.table().cloned());
        let active = table.as_ref().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && index.is_none_or(|wanted| {
                    t.global_secondary_indexes().iter().any(|i| {
                        i.index_name() == Some(wanted)
                            && i.index_status() == Some(&IndexStatus::Active)
                    })
                })
        });
        if active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("table {name} did not become ACTIVE within ten minutes")
}

async fn create_queue(
    clients: &AwsClients,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> anyhow::Result<(Provisioned, String)> {
    let exists = |url: String| {
        let provisioned = Provisioned {
            kind: "queue",
            name: name.to_string(),
            created: false,
        };
        (provisioned, url)
    };
    match clients.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => return Ok(exists(out.queue_url().unwrap_or_default().to_string())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist()) => {}
        Err(e) => anyhow::bail!("looking up queue {name}: {}", super::describe(&e)),
    }
    let mut request = clients.sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        request = request.attributes(k, v);
    }
    match request.send().await {
        Ok(out) => {
            let provisioned = Provisioned {
                kind: "queue",
                name: name.to_string(),
                created: true,
            };
            Ok((provisioned, out.queue_url().unwrap_or_default().to_string()))
        }
        // Created concurrently (or with other attributes) by someone else.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_name_exists()) =>
        {
            let out = clients
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("looking up queue {name}: {}", super::describe(&e)))?;
            Ok(exists(out.queue_url().unwrap_or_default().to_string()))
        }
        Err(e) => anyhow::bail!("creating queue {name}: {}", super::describe(&e)),
    }
}

async fn queue_arn(clients: &AwsClients, url: &str) -> anyhow::Result<String> {
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading queue attributes: {}", super::describe(&e)))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("queue {url} has no ARN"))
}

async fn create_bucket(
    clients: &AwsClients,
    settings: &AwsSettings,
) -> anyhow::Result<Provisioned> {
    let name = &settings.modules_bucket;
    // In us-east-1, CreateBucket succeeds on a bucket you already own, so
    // ask first to report honestly.
    if clients.s3.head_bucket().bucket(name).send().await.is_ok() {
        return Ok(Provisioned {
            kind: "bucket",
            name: name.clone(),
            created: false,
        });
    }
    let mut request = clients.s3.create_bucket().bucket(name);
    if settings.region != "us-east-1" {
        request = request.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    settings.region.as_str(),
                ))
                .build(),
        );
    }
    let created = match request.send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) =>
        {
            false
        }
        Err(e) => anyhow::bail!("creating bucket {name}: {}", super::describe(&e)),
    };
    Ok(Provisioned {
        kind: "bucket",
        name: name.clone(),
        created,
    })
}

/// Creates whatever is missing; returns one line per resource.
pub async fn init(
    clients: &AwsClients,
    settings: &AwsSettings,
    queues: QueueOptions,
) -> anyhow::Result<Vec<Provisioned>> {
    let mut done = Vec::new();
    for spec in tables(settings) {
        let table = create_table(clients, &spec).await?;
        let existed = !table.created;
        done.push(table);
        if existed {
            done.extend(add_missing_indexes(clients, &spec).await?);
        }
    }
    // Finished runs' items expire by themselves too (see
    // `dynamo/retention.rs`: a backstop to the retention sweep).
    done.push(enable_ttl(clients, &settings.runs_table, retention::TTL_ATTRIBUTE).await?);
    // Runs started before the quiet index existed (or before its table had
    // it) are put into it, or the recovery sweep would never see them.
    let store = super::dynamo::DynamoStore::new(clients.dynamo.clone(), settings);
    let indexed = store
        .index_quiet_runs()
        .await
        .map_err(|e| anyhow::anyhow!("indexing running runs for the sweep: {e}"))?;
    if indexed > 0 {
        tracing::info!(indexed, "running runs added to the quiet index");
    }
    let dlq_name = settings.dead_letter_queue_name();
    let (dlq, dlq_url) = create_queue(
        clients,
        &dlq_name,
        vec![(QueueAttributeName::MessageRetentionPeriod, "1209600".into())],
    )
    .await?;
    done.push(dlq);
    let redrive = serde_json::json!({
        "deadLetterTargetArn": queue_arn(clients, &dlq_url).await?,
        "maxReceiveCount": queues.max_receives.to_string(),
    });
    let (queue, _) = create_queue(
        clients,
        &settings.queue_name,
        vec![
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            (
                QueueAttributeName::VisibilityTimeout,
                queues.visibility_timeout.as_secs().to_string(),
            ),
        ],
    )
    .await?;
    done.push(queue);
    done.push(create_bucket(clients, settings).await?);
    Ok(done)
}
