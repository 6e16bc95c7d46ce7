//! Where passwords come from. The tool password: `-t` (warned about: shell history), else
//! `SCIMGATE_TOOL_PASSWORD`, else `--tool-password-file`, else a prompt on the terminal.
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
        return Err(CliError::Usage(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    Ok(line)
}

fn prompt(label: &str, hint: &str) -> Result<String, CliError> {
    rpassword::prompt_password(label).map_err(|_| {
        CliError::Usage(format!(
            "no terminal to ask for the {hint} on; {}",
            match hint {
                "tool password" =>
                    "give it with SCIMGATE_TOOL_PASSWORD, --tool-password-file or -t",
                _ => "give it with --password-file or SCIMGATE_USER_PASSWORD",
            }
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
    if let Ok(p) = std::env::var("SCIMGATE_TOOL_PASSWORD") {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    if let Some(path) = &g.tool_password_file {
        return first_line(path, "tool password");
    }
    prompt("Tool password: ", "tool password")
}

/// A new password (tool password at `init`, account passwords): file, env, or asked twice.
pub fn new_password(
    file: Option<&Path>,
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
    let first = prompt(&format!("{label}: "), hint)?;
    let second = prompt(&format!("{label} (again): "), hint)?;
    if first != second {
        return Err(CliError::Usage("the two passwords differ".into()));
    }
    Ok(first)
}
