//! `config provisioning-errors`: the SCIM requests an IdP reported as failed for a user
//! or group (recorded by the server's monitor), newest last.

use clap::Args;
use serde_json::json;

use crate::output::{print_json, table};
use crate::store_cmds::parse_since;
use crate::{CliResult, Ctx};
use scimgate::text::printable;
use scimgate::time::{format_local, format_rfc3339};

#[derive(Args, Debug)]
pub struct ProvisioningErrorsArgs {
    /// Only this client's errors.
    #[arg(short = 'i', long = "client-id")]
    pub client_id: Option<String>,
    /// Only errors since this long ago (e.g. 7d) or this date; default 7d.
    #[arg(long, default_value = "7d")]
    pub since: String,
}

pub fn list(ctx: &Ctx, a: ProvisioningErrorsArgs) -> CliResult {
    let now = ctx.admin.now();
    let since = parse_since(now, &a.since)?;
    let errors = ctx
        .admin
        .provisioning_errors(a.client_id.as_deref(), since)?;
    if ctx.json {
        let v: Vec<_> = errors
            .iter()
            .map(|e| {
                let mut v = json!(e);
                v["at"] = json!(format_rfc3339(e.at));
                v["notified_at"] = json!(e.notified_at.map(format_rfc3339));
                v
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    if errors.is_empty() {
        println!("No provisioning errors.");
        return Ok(());
    }
    let rows = errors
        .iter()
        .map(|e| {
            let who = e
                .concerned()
                .map(|s| printable(s, 64))
                .unwrap_or_else(|| "-".into());
            vec![
                format_local(e.at),
                e.client_id.clone(),
                e.method.clone(),
                e.resource.clone(),
                who,
                e.status.to_string(),
                e.scim_type.clone().unwrap_or_else(|| "-".into()),
                e.detail
                    .as_deref()
                    .map(|d| printable(d, 120))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "TIME",
                "CLIENT",
                "METHOD",
                "RESOURCE",
                "CONCERNS",
                "STATUS",
                "SCIM TYPE",
                "DETAIL"
            ],
            rows
        )
    );
    Ok(())
}
