//! The migrations function, run at deploy time: as a CloudFormation custom resource (it answers
//! the protocol's pre-signed ResponseURL) or invoked directly (`{}`), it applies pending
//! migrations and returns their versions, then keeps the functions' login users
//! (`DATABASE_LOGINS`) as members of their roles with their secrets' passwords. Deleting the
//! resource never touches the data.

use anyhow::Context;
use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use medrec_store::roles::Role;
use medrec_store::DbConfig;
use serde_json::{json, Value as Json};

/// Stable, so stack updates re-run migrations on the same resource instead of replacing it.
const PHYSICAL_ID: &str = "medrec-migrations";

pub struct MigrateFunction {
    db: DbConfig,
    logins: Vec<(Role, String)>,
}

impl MigrateFunction {
    pub fn new(db: DbConfig) -> MigrateFunction {
        MigrateFunction {
            db,
            logins: Vec::new(),
        }
    }

    /// After each migration, also keep these login users (role, secret ARN with `username` and
    /// `password`: [`crate::config::database_logins`]) as members of their roles, with their
    /// secrets' passwords.
    pub fn with_logins(mut self, logins: Vec<(Role, String)>) -> MigrateFunction {
        self.logins = logins;
        self
    }

    pub async fn handle(&self, event: Json) -> anyhow::Result<Json> {
        if event.get("ResponseURL").is_none() {
            let applied = self.migrate().await?;
            return Ok(json!({ "applied": applied }));
        }
        let request: CloudFormationCustomResourceRequest = serde_json::from_value(event)
            .context("not a CloudFormation custom resource request")?;
        let (url, stack_id, request_id, logical_id, run) = match &request {
            CloudFormationCustomResourceRequest::Create(r) => (
                &r.response_url,
                &r.stack_id,
                &r.request_id,
                &r.logical_resource_id,
                true,
            ),
            CloudFormationCustomResourceRequest::Update(r) => (
                &r.response_url,
                &r.stack_id,
                &r.request_id,
                &r.logical_resource_id,
                true,
            ),
            CloudFormationCustomResourceRequest::Delete(r) => (
                &r.response_url,
                &r.stack_id,
                &r.request_id,
                &r.logical_resource_id,
                false,
            ),
            _ => anyhow::bail!("unknown custom resource request type"),
        };
        let outcome = if run {
            self.migrate().await
        } else {
            Ok(Vec::new())
        };
        let mut response = CloudFormationCustomResourceResponse::default();
        response.physical_resource_id = PHYSICAL_ID.to_owned();
        response.stack_id = stack_id.clone();
        response.request_id = request_id.clone();
        response.logical_resource_id = logical_id.clone();
        match &outcome {
            Ok(applied) => {
                response.status = CloudFormationCustomResourceResponseStatus::Success;
                response
                    .data
                    .insert("Applied".to_owned(), applied.join(","));
            }
            Err(error) => {
                response.status = CloudFormationCustomResourceResponseStatus::Failed;
                response.reason = Some(crate::log_safe(error));
            }
        }
        send_response(url, &response).await?;
        let applied = outcome?;
        Ok(json!({ "applied": applied }))
    }

    async fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let mut client = medrec_store::connect(&self.db).await?;
        let applied = medrec_store::migrate(&mut client).await?;
        tracing::info!(applied = applied.len(), "migrations applied");
        for (role, arn) in &self.logins {
            let (user, password) = crate::config::login_credentials(arn).await?;
            medrec_store::roles::ensure_login(&client, &user, Some(&password), *role).await?;
            tracing::info!(user, role = role.name(), "login user kept");
        }
        Ok(applied.into_iter().map(str::to_owned).collect())
    }
}

/// PUTs the answer to CloudFormation's pre-signed URL (an empty content type, as the protocol
/// requires).
async fn send_response(
    url: &str,
    response: &CloudFormationCustomResourceResponse,
) -> anyhow::Result<()> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .context("loading TLS roots")?
        .https_or_http()
        .enable_http1()
        .build();
    let client: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build(https);
    let body = serde_json::to_vec(response)?;
    let request = hyper::Request::put(url)
        .header("content-type", "")
        .header("content-length", body.len())
        .body(Full::new(Bytes::from(body)))
        .context("building the custom resource response")?;
    let answer = client
        .request(request)
        .await
        .context("sending the custom resource response")?;
    anyhow::ensure!(
        answer.status().is_success(),
        "CloudFormation refused the custom resource response: {}",
        answer.status()
    );
    Ok(())
}
