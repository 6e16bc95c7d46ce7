//! `config`: scimgate's admin and token-lifecycle CLI, command-compatible with Spotfire's
//! `config` tool (`register-api-client`, `issue-access-token`, `revoke-token`, …).
//!
//! It opens the same store as the server, directly, and works while the server runs.
//! This file declares the arguments and dispatches; one file per command group does the
//! work by calling `scimgate::admin`; `output` prints tables and JSON; `secrets` finds the
//! tool password and account passwords. Exit codes are chosen in one place
//! ([`CliError::exit_code`]): 0 success, 1 the operation failed, 2 usage error.
//! Command-line errors are rewritten into one sentence by `usage_error`: clap's "did you
//! mean" suggestion kept, number parse errors said in words, and a pointer to the
//! subcommand's own `--help`. `completions` and `man` (`clap_complete`, `clap_mangen`)
//! need no store.

mod clients;
mod output;
mod provisioning;
mod secrets;
mod status;
mod store_cmds;
mod tokens;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand};
use scimgate::admin::{Admin, AdminError};
use scimgate::store::{Location, Store, StoreError};
use scimgate::time::Clock;

/// scimgate's admin CLI: API clients, tokens, login accounts and the audit log.
#[derive(Parser, Debug)]
#[command(name = "config", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (listed after the command's own in its help).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The server's store: its SQLite file (give it when not in the server's directory),
    /// or a postgres:// URL.
    #[arg(
        long,
        global = true,
        env = "SCIMGATE_DB",
        default_value = "scimgate.db"
    )]
    // Kept as typed and parsed by `GlobalArgs::location`: clap would echo a refused
    // value, and a URL may hold a password. (A `///` line here would print in --help.)
    pub db: String,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The tool password (visible in shell history: prefer SCIMGATE_TOOL_PASSWORD or
    /// --tool-password-file).
    #[arg(short = 't', long, global = true)]
    pub tool_password: Option<String>,
    /// File whose first line is the tool password.
    #[arg(long, global = true)]
    pub tool_password_file: Option<PathBuf>,
}

impl GlobalArgs {
    /// The store `--db` names; a refused URL is one sentence that does not repeat it.
    pub fn location(&self) -> Result<Location, CliError> {
        Location::parse(&self.db).map_err(|e| CliError::Usage(format!("--db: {e}")))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the store (if needed) and set the tool password.
    Init(store_cmds::InitArgs),
    /// Copy a SQLite store (clients, tokens as hashes, users, audit log, SCIM data,
    /// monitor state) into an empty PostgreSQL store, and check every table's count.
    CopyStore(store_cmds::CopyStoreArgs),
    /// Register an OAuth2 API client (an IdP app such as Okta or Entra ID).
    #[command(visible_alias = "register-oauth2-client")]
    RegisterApiClient(clients::RegisterArgs),
    /// List the registered API clients.
    #[command(visible_alias = "list-oauth2-clients")]
    ListApiClients,
    /// Show one API client.
    #[command(visible_alias = "show-oauth2-client")]
    ShowApiClient(clients::ClientIdArg),
    /// Change an API client's registration.
    #[command(visible_alias = "update-oauth2-client")]
    UpdateApiClient(clients::UpdateArgs),
    /// Give an API client a new secret; the old one and every token issued so far stop
    /// working at once.
    RotateClientSecret(clients::RotateSecretArgs),
    /// Delete an API client; every token it holds stops working at once.
    #[command(visible_alias = "delete-oauth2-client")]
    DeleteApiClient(clients::ClientIdArg),
    /// Cut an API client off: every token it holds stops working at once, and none is
    /// issued until `enable-api-client`.
    DisableApiClient(clients::DisableArgs),
    /// Let a disabled API client be issued tokens again (its old tokens stay dead).
    EnableApiClient(clients::ClientIdArg),
    /// Issue a long-lived access token to an API client (e.g. for Entra ID).
    IssueAccessToken(tokens::IssueArgs),
    /// List tokens: validity, last use, source.
    ListTokens(tokens::ListArgs),
    /// Show one token by id or value: is it valid, when does it expire, when was it used.
    ShowToken(tokens::ShowArgs),
    /// Revoke a token (by value or id) or all tokens of a client.
    RevokeToken(tokens::RevokeArgs),
    /// Replace an access token with a new one; the old one keeps working for an overlap.
    RotateToken(tokens::RotateArgs),
    /// Delete tokens that expired long ago (live tokens are never touched).
    PruneTokens(tokens::PruneArgs),
    /// Clients' provisioning health; exit 0 ok, 1 warning, 2 critical (for cron/Nagios).
    Status(status::StatusArgs),
    /// SCIM requests refused with an error the IdP reports for a user or group (409,
    /// 400, 412, 413, 415, 5xx), recorded by the server's monitor.
    ProvisioningErrors(provisioning::ProvisioningErrorsArgs),
    /// Show the audit log.
    Audit(store_cmds::AuditArgs),
    /// Show or change the token lifetime policy.
    Policy(store_cmds::PolicyArgs),
    /// Change the tool password.
    SetToolPassword(store_cmds::SetToolPasswordArgs),
    /// Create a login account: it signs in to give consent on the authorization page, and
    /// with --operator also opens the operator pages (/ui).
    CreateUser(users::CreateUserArgs),
    /// Let a login account open the operator pages (/ui), or not.
    SetOperator(users::SetOperatorArgs),
    /// Change a login account's password.
    SetPassword(users::UserArgs),
    /// Delete a login account.
    DeleteUser(users::UserNameArg),
    /// List the login accounts.
    ListUsers,
    /// Forget the consents a login account gave on the consent page (all, or one client's).
    RevokeConsent(users::RevokeConsentArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `config man > config.1; man ./config.1`.
    Man,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Why a command failed; [`CliError::exit_code`] is the one place exit codes are chosen.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Arguments that parse but do not fit together.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// What a command runs with: the store, the operator's admin session, output mode.
pub struct Ctx<'a> {
    pub admin: Admin<'a>,
    pub json: bool,
}

/// Who runs this command, for the audit log: the login name, else the numeric uid.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty());
    #[cfg(unix)]
    let user = user.or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .ok()
            .map(|m| format!("uid={}", m.uid()))
    });
    format!("cli:{}", user.unwrap_or_else(|| "unknown".into()))
}

fn run(cli: Cli) -> Result<u8, CliError> {
    let clock = Clock::system();
    match &cli.command {
        Command::Completions(a) => {
            clap_complete::generate(
                a.shell,
                &mut Cli::command(),
                "config",
                &mut std::io::stdout(),
            );
            return Ok(0);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| CliError::Io(format!("cannot write the manual page: {e}")))?;
            return Ok(0);
        }
        _ => {}
    }
    if let Command::Init(args) = &cli.command {
        return store_cmds::init(&cli.global, args, clock, actor()).map(|()| 0);
    }
    if let Command::CopyStore(args) = &cli.command {
        return store_cmds::copy_store(&cli.global, args, clock, actor()).map(|()| 0);
    }
    let store = Store::open_existing(cli.global.location()?)?;
    let ctx = Ctx {
        admin: Admin::new(&store, clock, actor()),
        json: cli.global.json,
    };
    let password = secrets::tool_password(&cli.global)?;
    ctx.admin.verify_tool_password(&password)?;
    if let Command::Status(a) = cli.command {
        return status::status(&ctx, a);
    }
    match cli.command {
        Command::Init(_)
        | Command::CopyStore(_)
        | Command::Status(_)
        | Command::Completions(_)
        | Command::Man => Ok(()),
        Command::RegisterApiClient(a) => clients::register(&ctx, a),
        Command::ListApiClients => clients::list(&ctx),
        Command::ShowApiClient(a) => clients::show(&ctx, &a.client_id),
        Command::UpdateApiClient(a) => clients::update(&ctx, a),
        Command::RotateClientSecret(a) => clients::rotate_secret(&ctx, a),
        Command::DeleteApiClient(a) => clients::delete(&ctx, &a.client_id),
        Command::DisableApiClient(a) => clients::set_disabled(&ctx, &a.client_id, true, a.reason),
        Command::EnableApiClient(a) => clients::set_disabled(&ctx, &a.client_id, false, None),
        Command::IssueAccessToken(a) => tokens::issue(&ctx, a),
        Command::ListTokens(a) => tokens::list(&ctx, a),
        Command::ShowToken(a) => tokens::show(&ctx, a),
        Command::RevokeToken(a) => tokens::revoke(&ctx, a),
        Command::RotateToken(a) => tokens::rotate(&ctx, a),
        Command::PruneTokens(a) => tokens::prune(&ctx, a),
        Command::ProvisioningErrors(a) => provisioning::list(&ctx, a),
        Command::Audit(a) => store_cmds::audit(&ctx, a),
        Command::Policy(a) => store_cmds::policy(&ctx, a),
        Command::SetToolPassword(a) => store_cmds::set_tool_password(&ctx, a),
        Command::CreateUser(a) => users::create(&ctx, a),
        Command::SetOperator(a) => users::set_operator(&ctx, a),
        Command::SetPassword(a) => users::set_password(&ctx, a),
        Command::DeleteUser(a) => users::delete(&ctx, &a.username),
        Command::ListUsers => users::list(&ctx),
        Command::RevokeConsent(a) => users::revoke_consent(&ctx, a),
    }
    .map(|()| 0)
}

/// Die quietly on a closed pipe (`config list-tokens | head`) as other Unix tools do,
/// instead of panicking in `println!`.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print as clap formats them.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {}.", usage_error(&e, std::env::args_os().skip(1)));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.trim_end_matches('.');
            eprintln!("error: {msg}.");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The subcommand named on the command line (its name, not an alias), if any: the first
/// word that is not a flag or a global flag's value.
fn subcommand_named(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<String> {
    let cmd = Cli::command();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        if matches!(
            arg.as_str(),
            "--db" | "-t" | "--tool-password" | "--tool-password-file"
        ) {
            args.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        return cmd
            .get_subcommands()
            .find(|s| s.get_name() == arg || s.get_all_aliases().any(|a| a == arg))
            .map(|s| s.get_name().to_string());
    }
    None
}

/// A number that did not parse, in words.
fn int_error_words(value: &str, e: &std::num::ParseIntError) -> String {
    use std::num::IntErrorKind;
    match e.kind() {
        IntErrorKind::Empty => "a number is needed here".into(),
        IntErrorKind::PosOverflow => format!("`{value}` is too large"),
        IntErrorKind::NegOverflow => format!("`{value}` is too small"),
        _ if value.starts_with('-') => format!("`{value}` is not a positive whole number"),
        _ => format!("`{value}` is not a whole number"),
    }
}

/// clap's error as one sentence (without the final period): its first line, a "did you
/// mean" for a mistyped command or flag, number parse errors in words, and the `--help`
/// of the subcommand named on the command line.
fn usage_error(e: &clap::Error, args: impl IntoIterator<Item = std::ffi::OsString>) -> String {
    let text = e.render().to_string();
    let first = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let mut msg = first
        .strip_prefix("error: ")
        .unwrap_or(&first)
        .trim_end_matches('.')
        .to_string();
    if e.kind() == ErrorKind::ValueValidation {
        let int =
            std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::num::ParseIntError>());
        if let (Some(int), Some(ContextValue::String(value)), Some(ContextValue::String(arg))) = (
            int,
            e.get(ContextKind::InvalidValue),
            e.get(ContextKind::InvalidArg),
        ) {
            msg = format!(
                "invalid value '{value}' for '{arg}': {}",
                int_error_words(value, int)
            );
        }
    }
    let suggestion = [ContextKind::SuggestedSubcommand, ContextKind::SuggestedArg]
        .into_iter()
        .find_map(|k| match e.get(k) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            // clap orders the candidates by similarity, the closest last.
            Some(ContextValue::Strings(v)) => v.last().cloned(),
            _ => None,
        });
    if let Some(s) = suggestion {
        msg.push_str(&format!("; did you mean `{s}`?"));
    }
    let help = match subcommand_named(args) {
        Some(sub) => format!("config {sub} --help"),
        None => "config --help".into(),
    };
    format!("{msg} (see `{help}`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
