//! The machinery behind the one declaration of the server settings (`raw.rs`): the
//! `declare_settings!` macro, which makes from one entry per setting the raw struct (whose
//! fields are the TOML keys), the list [`SETTINGS`](super::raw::SETTINGS) that the
//! `SCIMGATE_*` reader, the flags and the docs table go through, the layering and the
//! parsing of a setting's text.
//!
//! Names follow from the TOML key: `smtp_to` is read from `SCIMGATE_SMTP_TO` and, if the
//! setting has a flag, from `--smtp-to`.

use super::SettingsError;

/// One declared setting, as the environment reader, the flags and the docs see it.
#[derive(Debug, Clone, Copy)]
pub struct SettingInfo {
    /// The TOML key, and the field of [`RawSettings`](super::RawSettings).
    pub key: &'static str,
    /// What it is (the docs table's first column).
    pub doc: &'static str,
    /// The default, as the docs table shows it. When it starts with a value in backticks,
    /// that value is the one `Settings::resolve` uses (a test holds the two together).
    pub default: &'static str,
    /// The `--help` line of its command-line flag, for the few settings that have one.
    pub flag_help: Option<&'static str>,
}

impl SettingInfo {
    /// `SCIMGATE_` and the key in capitals.
    pub fn env_var(&self) -> String {
        format!("SCIMGATE_{}", self.key.to_ascii_uppercase())
    }

    /// `--` and the key with dashes, when the setting has a flag.
    pub fn flag(&self) -> Option<String> {
        self.flag_help
            .map(|_| format!("--{}", self.key.replace('_', "-")))
    }
}

/// A type a setting's value can have, read from the text of an environment variable or flag.
pub trait SettingValue: Sized {
    /// Ends the sentence "`x` is not …" when the text does not parse.
    const WHAT: &'static str;
    fn from_text(text: &str) -> Option<Self>;
}

impl SettingValue for String {
    const WHAT: &'static str = "text";
    fn from_text(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
}

impl SettingValue for bool {
    const WHAT: &'static str = "true or false";
    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

macro_rules! number_setting {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            const WHAT: &'static str = "a number";
            fn from_text(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }
    )*};
}
number_setting!(u16, u32, usize);

/// Parse `text`, given as `source` (an environment variable or a flag); `what` replaces
/// the type's own word for what was expected.
pub(crate) fn parse_text<T: SettingValue>(
    text: String,
    source: &str,
    what: Option<&str>,
) -> Result<T, SettingsError> {
    T::from_text(&text).ok_or_else(|| SettingsError::Invalid {
        name: source.into(),
        reason: format!("`{text}` is not {}", what.unwrap_or(T::WHAT)),
    })
}

/// Declares every server setting once. Each entry: doc comment (what it is), `key: type`,
/// then `default:` (as the docs show it), optionally `parse_error:` (what an unparsable
/// value is not, when the type's word does not say it) and `flag:` (the `--help` line of
/// a command-line flag).
macro_rules! declare_settings {
    (@opt) => { None };
    (@opt $v:literal) => { Some($v) };
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty {
            default: $default:literal
            $(, parse_error: $what:literal)?
            $(, flag: $flag_help:literal)?
            $(,)?
        }
    )*) => {
        /// Raw values from one source; every field optional so sources can be layered.
        #[derive(Debug, Clone, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawSettings {
            $( $(#[doc = $doc])+ pub $name: Option<$ty>, )*
        }

        /// Every server setting, in the order of its declaration.
        pub const SETTINGS: &[$crate::settings::declare::SettingInfo] = &[$(
            $crate::settings::declare::SettingInfo {
                key: stringify!($name),
                doc: concat!($($doc),+),
                default: $default,
                flag_help: declare_settings!(@opt $($flag_help)?),
            },
        )*];

        impl RawSettings {
            /// Set the setting `key` from `text`, given as `source` (for the error).
            pub(crate) fn set_text(
                &mut self,
                key: &str,
                text: String,
                source: &str,
            ) -> Result<(), SettingsError> {
                match key {
                    $(stringify!($name) => {
                        self.$name = Some($crate::settings::declare::parse_text::<$ty>(
                            text,
                            source,
                            declare_settings!(@opt $($what)?),
                        )?);
                    })*
                    _ => unreachable!("`{key}` is not a declared setting"),
                }
                Ok(())
            }

            /// `self` with every value `over` sets replacing ours.
            pub fn overlay(self, over: RawSettings) -> RawSettings {
                RawSettings {
                    $($name: over.$name.or(self.$name),)*
                }
            }
        }
    };
}

pub(crate) use declare_settings;
