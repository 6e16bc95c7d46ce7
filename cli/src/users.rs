//! Login account commands: create-user, set-password, delete-user, list-users,
//! revoke-consent. The accounts sign in on the authorization (login and consent) and
//! operator pages.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::output::{print_json, table};
use crate::secrets::new_password;
use crate::{CliResult, Ctx};
use scimgate::time::format_local;

#[derive(Args, Debug)]
pub struct UserArgs {
    /// The account name.
    #[arg(short = 'u', long)]
    pub username: String,
    /// File whose first line is the password (else SCIMGATE_USER_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub user: UserArgs,
    /// The account may also open the operator pages (/ui); without it, it may only sign
    /// in to give consent on the authorization page.
    #[arg(long)]
    pub operator: bool,
}

#[derive(Args, Debug)]
pub struct SetOperatorArgs {
    /// The account name.
    #[arg(short = 'u', long)]
    pub username: String,
    /// true: may open the operator pages; false: consent only.
    #[arg(value_name = "true|false", action = clap::ArgAction::Set, value_parser = crate::clients::bool_arg)]
    pub operator: bool,
}

#[derive(Args, Debug)]
pub struct UserNameArg {
    /// The account name.
    #[arg(short = 'u', long)]
    pub username: String,
}

#[derive(Args, Debug)]
pub struct RevokeConsentArgs {
    /// The account whose consents to forget.
    #[arg(short = 'u', long)]
    pub username: String,
    /// Only the consent given to this client (default: all clients).
    #[arg(short = 'i', long = "client-id")]
    pub client_id: Option<String>,
}

fn password(a: &UserArgs) -> Result<String, crate::CliError> {
    new_password(
        a.password_file.as_deref(),
        "--password-file",
        "SCIMGATE_USER_PASSWORD",
        &format!("Password for {}", a.username),
        "password",
    )
}

pub fn create(ctx: &Ctx, a: CreateUserArgs) -> CliResult {
    let pw = password(&a.user)?;
    let name = a.user.username.trim();
    ctx.admin.create_user(name, &pw, a.operator)?;
    if ctx.json {
        print_json(&json!({ "username": name, "created": true, "operator": a.operator }));
    } else if a.operator {
        println!("User {name} created; it may sign in to the operator pages (/ui).");
    } else {
        println!(
            "User {name} created (consent only; `config set-operator -u {name} true` opens /ui to it)."
        );
    }
    Ok(())
}

pub fn set_operator(ctx: &Ctx, a: SetOperatorArgs) -> CliResult {
    ctx.admin.set_operator(&a.username, a.operator)?;
    let name = a.username.trim();
    if ctx.json {
        print_json(&json!({ "username": name, "operator": a.operator }));
    } else if a.operator {
        println!("User {name} may now open the operator pages.");
    } else {
        println!("User {name} may no longer open the operator pages (consent only).");
    }
    Ok(())
}

pub fn set_password(ctx: &Ctx, a: UserArgs) -> CliResult {
    // Say that the account does not exist before asking for its new password.
    ctx.admin.require_user(&a.username)?;
    let pw = password(&a)?;
    ctx.admin.set_password(&a.username, &pw)?;
    if ctx.json {
        print_json(&json!({ "username": a.username.trim(), "password_changed": true }));
    } else {
        println!("Password of {} changed.", a.username.trim());
    }
    Ok(())
}

pub fn delete(ctx: &Ctx, username: &str) -> CliResult {
    ctx.admin.delete_user(username)?;
    if ctx.json {
        print_json(&json!({ "username": username.trim(), "deleted": true }));
    } else {
        println!("User {} deleted.", username.trim());
    }
    Ok(())
}

pub fn revoke_consent(ctx: &Ctx, a: RevokeConsentArgs) -> CliResult {
    let n = ctx
        .admin
        .revoke_consent(&a.username, a.client_id.as_deref())?;
    if ctx.json {
        print_json(
            &json!({ "username": a.username.trim(), "client_id": a.client_id, "revoked": n }),
        );
    } else {
        println!(
            "Revoked {n} remembered consent(s) of {}; the consent page will be shown again.",
            a.username.trim()
        );
    }
    Ok(())
}

pub fn list(ctx: &Ctx) -> CliResult {
    let users = ctx.admin.list_users()?;
    if ctx.json {
        let v: Vec<_> = users
            .iter()
            .map(|u| {
                json!({
                    "username": u.username,
                    "created_at": scimgate::time::format_rfc3339(u.created_at),
                    "updated_at": scimgate::time::format_rfc3339(u.updated_at),
                    "operator": u.operator,
                })
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    if users.is_empty() {
        println!("No login accounts. Create one with `config create-user -u NAME`.");
        return Ok(());
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                if u.operator { "operator" } else { "consent" }.to_string(),
                format_local(u.created_at),
                format_local(u.updated_at),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["USER", "ROLE", "CREATED", "PASSWORD CHANGED"], rows)
    );
    Ok(())
}
