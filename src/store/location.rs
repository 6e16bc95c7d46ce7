//! Where a store is: `--db` / `SCIMGATE_DB` / `db` in the settings file. A `postgres://`
//! or `postgresql://` URL is a PostgreSQL database ([`super::PgTarget`]); `sqlite:PATH`
//! or any other string is the path of a SQLite file.

use std::path::{Path, PathBuf};

use super::PgTarget;

/// A store's location, parsed.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

impl Location {
    /// Parse `raw`; the error is one sentence (a URL PostgreSQL would not accept).
    pub fn parse(raw: &str) -> Result<Location, String> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return PgTarget::parse(raw).map(|t| Location::Postgres(Box::new(t)));
        }
        let path = raw.strip_prefix("sqlite:").unwrap_or(raw);
        if path.is_empty() {
            return Err(
                "the store's location is empty; give a file path or a postgres:// URL".into(),
            );
        }
        Ok(Location::Sqlite(PathBuf::from(path)))
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// How messages name it: the file's absolute path, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(p) => std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            Location::Postgres(t) => t.to_string(),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => write!(f, "{t}"),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> Result<Location, String> {
        Location::parse(s)
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Sqlite(p)
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_are_files() {
        assert!(matches!(
            Location::parse("postgres://u:secret@127.0.0.1:5432/db?pool_size=4").unwrap(),
            Location::Postgres(_)
        ));
        assert!(matches!(
            Location::parse("postgresql://u@localhost/db").unwrap(),
            Location::Postgres(_)
        ));
        assert_eq!(
            Location::parse("sqlite:/tmp/a.db").unwrap().sqlite_path(),
            Some(Path::new("/tmp/a.db"))
        );
        assert_eq!(
            Location::parse("scimgate.db").unwrap().sqlite_path(),
            Some(Path::new("scimgate.db"))
        );
        assert!(Location::parse("").is_err());
        assert!(Location::parse("sqlite:").is_err());
    }

    #[test]
    fn a_url_shows_no_password() {
        let l = Location::parse("postgres://u:hunter2@127.0.0.1:5432/db?sslmode=disable").unwrap();
        assert!(!l.to_string().contains("hunter2"), "{l}");
        assert!(!format!("{l:?}").contains("hunter2"));
        assert!(l.to_string().contains("127.0.0.1:5432/db"), "{l}");
    }

    #[test]
    fn bad_urls_and_parameters_are_one_sentence() {
        for bad in [
            "postgres://u@h/db?pool_size=0",
            "postgres://u@h/db?timeout=abc",
            "postgres://u@h/db?nonsense=1",
            "postgres://u@h:notaport/db",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
    }
}
