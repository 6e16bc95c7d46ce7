//! The command-line flags of `scimgate serve`, made from the declared settings that have
//! one (`flag:` in `raw.rs`): `--public-url` for `public_url`, with its `--help` line.
//! Flattened into the binary's clap arguments.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::raw::{RawSettings, SETTINGS};

/// The values given as flags, as one layer of raw settings.
#[derive(Debug, Clone, Default)]
pub struct SettingFlags(pub RawSettings);

impl clap::Args for SettingFlags {
    fn augment_args(cmd: Command) -> Command {
        SETTINGS.iter().fold(cmd, |cmd, setting| {
            let (Some(flag), Some(help)) = (setting.flag(), setting.flag_help) else {
                return cmd;
            };
            cmd.arg(
                Arg::new(setting.key)
                    .long(flag.trim_start_matches('-').to_string())
                    .value_name(setting.key.to_ascii_uppercase())
                    .value_parser(clap::value_parser!(String))
                    .action(ArgAction::Set)
                    .help(help),
            )
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = SettingFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for setting in SETTINGS {
            let Some(flag) = setting.flag() else { continue };
            if let Some(text) = matches.get_one::<String>(setting.key) {
                self.0
                    .set_text(setting.key, text.clone(), &flag)
                    .map_err(|e| {
                        clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
                    })?;
            }
        }
        Ok(())
    }
}
