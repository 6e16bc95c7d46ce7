//! Where passwords come from. The tool password: `-t` (warned about: shell history), else
//! `--tool-password-file`, else `SCIMGATE_TOOL_PASSWORD`, else a prompt on the terminal.
//! Account passwords: `--password-file`, else `SCIMGATE_USER_PASSWORD`, else a prompt
//! asked twice. Passwords are never echoed, logged or put in an error message.

use std::path::Path;

use crate::{CliError, GlobalArgs};

fn first_line(path: &Path, what: &str) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Io(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(CliError::Io(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    Ok(line)
}

/// Ask on the terminal; without one, say which flag or variable gives the password.
fn prompt(label: &str, hint: &str, sources: &str) -> Result<String, CliError> {
    rpassword::prompt_password(label).map_err(|_| {
        CliError::Usage(format!(
            "no terminal to ask for the {hint} on; give it with {sources}"
        ))
    })
}

/// The tool password from the first source that has one.
pub fn tool_password(g: &GlobalArgs) -> Result<String, CliError> {
    if let Some(p) = &g.tool_password {
        eprintln!(
            "warning: a password given with -t can end up in your shell history; prefer SCIMGATE_TOOL_PASSWORD or --tool-password-file"
        );
        return Ok(p.clone());
    }
    // A file named on the command line is more explicit than the environment: it wins.
    if let Some(path) = &g.tool_password_file {
        return first_line(path, "tool password");
    }
    if let Ok(p) = std::env::var("SCIMGATE_TOOL_PASSWORD") {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    prompt(
        "Tool password: ",
        "tool password",
        "--tool-password-file, SCIMGATE_TOOL_PASSWORD or -t",
    )
}

/// A new password (tool password at `init`, account passwords): file, env, or asked twice.
pub fn new_password(
    file: Option<&Path>,
    file_flag: &str,
    env: &str,
    label: &str,
    hint: &str,
) -> Result<String, CliError> {
    if let Some(path) = file {
        return first_line(path, hint);
    }
    if let Ok(p) = std::env::var(env) {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let sources = format!("{file_flag} or {env}");
    let first = prompt(&format!("{label}: "), hint, &sources)?;
    let second = prompt(&format!("{label} (again): "), hint, &sources)?;
    if first != second {
        return Err(CliError::Usage("the two passwords differ".into()));
    }
    Ok(first)
}
