//! The settings table of `docs/settings.md`, generated from the one declaration
//! (`raw.rs`). Tests hold the file to it: a setting missing from the table, or a
//! `SCIMGATE_*` variable in the docs that no setting reads, fails them.
//! `SCIMGATE_BLESS_DOCS=1 cargo test settings::docs` writes the table anew.

use std::fmt::Write;

use super::raw::SETTINGS;

/// The line before the generated table in `docs/settings.md`.
pub const TABLE_START: &str = "<!-- settings table: generated from src/settings/raw.rs; \
     SCIMGATE_BLESS_DOCS=1 cargo test settings::docs writes it anew -->";
/// The line after it.
pub const TABLE_END: &str = "<!-- end of the generated settings table -->";

/// One row per declared setting: what it is, TOML key, variable, flag, default.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| setting | TOML key | environment variable | flag | default |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let flag = s
            .flag()
            .map_or_else(|| "—".to_string(), |f| format!("`{f}`"));
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {flag} | {} |",
            s.doc.trim(),
            s.key,
            s.env_var(),
            s.default
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `SCIMGATE_*` variables the docs may name that are not server settings.
    const OTHER_VARIABLES: &[&str] = &[
        "SCIMGATE_CONFIG",
        "SCIMGATE_TOOL_PASSWORD",
        "SCIMGATE_NEW_TOOL_PASSWORD",
        "SCIMGATE_USER_PASSWORD",
        "SCIMGATE_TEST_PYTHON",
        "SCIMGATE_TEST_PG_URL",
        "SCIMGATE_TEST_PG_CA",
        "SCIMGATE_TEST_PG_REQUIRED",
        "SCIMGATE_TEST_BACKEND",
        "SCIMGATE_BLESS_DOCS",
    ];

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn docs_settings_table_matches_the_declaration() {
        let path = root().join("docs/settings.md");
        let text = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = text
            .split_once(TABLE_START)
            .expect("the table's start marker");
        let (table, tail) = rest.split_once(TABLE_END).expect("the table's end marker");
        let want = format!("\n{}", markdown_table());
        if table == want {
            return;
        }
        if std::env::var_os("SCIMGATE_BLESS_DOCS").is_some() {
            std::fs::write(&path, format!("{head}{TABLE_START}{want}{TABLE_END}{tail}")).unwrap();
            return;
        }
        panic!(
            "docs/settings.md does not show the declared settings (src/settings/raw.rs); \
             SCIMGATE_BLESS_DOCS=1 cargo test settings::docs writes it anew. Expected:\n{want}"
        );
    }

    #[test]
    fn docs_name_only_variables_that_a_setting_reads() {
        let vars: Vec<String> = SETTINGS.iter().map(|s| s.env_var()).collect();
        let mut files: Vec<_> = std::fs::read_dir(root().join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        files.push(root().join("README.md"));
        let mut unknown = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("SCIMGATE_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                let known = if text[at + name.len()..].starts_with('*') || name.ends_with('_') {
                    vars.iter().any(|v| v.starts_with(&name))
                } else {
                    vars.contains(&name) || OTHER_VARIABLES.contains(&name.as_str())
                };
                if !known {
                    unknown.push(format!("{}: {name}", file.display()));
                }
            }
        }
        assert!(
            unknown.is_empty(),
            "variables no setting reads: {unknown:?}"
        );
    }

    #[test]
    fn docs_settings_example_is_a_settings_file() {
        let text = std::fs::read_to_string(root().join("docs/settings.md")).unwrap();
        let (_, rest) = text.split_once("```toml\n").expect("a TOML example");
        let (example, _) = rest.split_once("```").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scimgate.toml");
        std::fs::write(&file, example).unwrap();
        let raw = super::super::RawSettings::from_file(&file).unwrap();
        assert_eq!(raw.login_max_failures, Some(5));
    }
}
