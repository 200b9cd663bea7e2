//! The output conventions every command follows, from the global flags: `--json` (one JSON
//! document on stdout instead of text, and a failure as one JSON line on stderr), `-q` (no
//! confirmations, hints or progress: only the data a command exists to print) and `--color`
//! with `NO_COLOR` (whether escape sequences colour stderr). They are fixed once, after the
//! command line is parsed, and read from anywhere in the process.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use anyhow::Result;
use clap::{ColorChoice, ValueEnum};
use serde::Serialize;

/// The output flags every `continuum` command takes, before or after its name.
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct OutputFlags {
    /// Print JSON: one document on stdout, and a failure as one line of JSON on stderr.
    #[arg(long, global = true)]
    pub(super) json: bool,
    /// Quiet: no confirmations, hints or progress; only the data a command exists to print.
    #[arg(short, long, global = true)]
    pub(super) quiet: bool,
    /// Colour on stderr: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub(super) color: ColorChoice,
}

/// The flags in effect, once [`init`] has run.
static SETTINGS: OnceLock<OutputFlags> = OnceLock::new();

/// Fixes the output flags for this process; `--color auto` becomes `never` when `NO_COLOR` is
/// set (to anything but the empty string).
pub(super) fn init(mut flags: OutputFlags) {
    flags.color = resolve(flags.color, no_color());
    let _ = SETTINGS.set(flags);
}

/// The flags in effect (the defaults before [`init`]).
fn settings() -> OutputFlags {
    SETTINGS.get().cloned().unwrap_or_default()
}

/// Whether `--json` is in effect.
pub(super) fn json() -> bool {
    settings().json
}

/// Whether `-q` is in effect.
pub(super) fn quiet() -> bool {
    settings().quiet
}

/// Whether what goes to stderr is coloured: `--color always`, or `auto` on a terminal.
pub(super) fn color_stderr() -> bool {
    match settings().color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stderr().is_terminal(),
    }
}

/// The colour clap uses for a page it prints after parsing (`continuum run --help`).
pub(super) fn clap_color() -> ColorChoice {
    settings().color
}

/// The colour clap uses for what it prints while parsing (help, usage errors), before the parsed
/// flags exist: from the last `--color` among `words` (the command line, up to a `--`).
pub(super) fn clap_color_of(words: impl IntoIterator<Item = OsString>) -> ColorChoice {
    let mut words = words.into_iter().map(|w| w.to_string_lossy().into_owned()).take_while(|w| w != "--");
    let mut choice = ColorChoice::Auto;
    while let Some(word) = words.next() {
        let value = match word.strip_prefix("--color") {
            Some("") => words.next(),
            Some(value) => value.strip_prefix('=').map(str::to_string),
            None => None,
        };
        if let Some(parsed) = value.and_then(|v| ColorChoice::from_str(&v, false).ok()) {
            choice = parsed;
        }
    }
    resolve(choice, no_color())
}

/// `choice` under `NO_COLOR`: `auto` is `never` when it is set; an explicit choice stands.
fn resolve(choice: ColorChoice, no_color: bool) -> ColorChoice {
    match choice {
        ColorChoice::Auto if no_color => ColorChoice::Never,
        choice => choice,
    }
}

/// Whether the `NO_COLOR` environment variable is set to something.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Prints `value` on `out` as one JSON document with `--json`; otherwise `human` prints it for a
/// person. For what a command exists to print: `-q` leaves it.
pub(super) fn emit<W: Write, T: Serialize + ?Sized>(
    out: &mut W,
    value: &T,
    human: impl FnOnce(&mut W) -> Result<()>,
) -> Result<()> {
    if json() {
        print_json(out, value)
    } else {
        human(out)
    }
}

/// Prints `value` on `out` as one JSON document (indented), as `--json` asks.
pub(super) fn print_json(out: &mut impl Write, value: &(impl Serialize + ?Sized)) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Prints `line` on stdout unless `--json`: a line of a text report printed as it goes (a
/// benchmark's), whose JSON form is printed whole at its end. `-q` leaves it: it is the data.
pub(super) fn report_line(line: impl Display) {
    if !json() {
        println!("{line}");
    }
}

/// Prints `line` on `out` unless `-q`: a confirmation, a hint or a note.
pub(super) fn note(out: &mut impl Write, line: impl Display) -> std::io::Result<()> {
    if quiet() {
        return Ok(());
    }
    writeln!(out, "{line}")
}

/// What a command that changed something reports: with `--json` the record it made, changed or
/// removed (`value`); otherwise `line`, unless `-q`.
pub(super) fn confirm<W: Write, T: Serialize + ?Sized>(out: &mut W, value: &T, line: impl Display) -> Result<()> {
    emit(out, value, |out| Ok(note(out, line)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn no_color_turns_auto_off_but_not_an_explicit_choice() {
        assert_eq!(resolve(ColorChoice::Auto, true), ColorChoice::Never);
        assert_eq!(resolve(ColorChoice::Auto, false), ColorChoice::Auto);
        assert_eq!(resolve(ColorChoice::Always, true), ColorChoice::Always);
        assert_eq!(resolve(ColorChoice::Never, false), ColorChoice::Never);
    }

    #[test]
    fn clap_reads_the_last_color_flag_before_a_double_dash() {
        // NO_COLOR is not set by the test runner; an explicit choice stands either way.
        assert_eq!(clap_color_of(words("continuum --color never plugin list")), ColorChoice::Never);
        assert_eq!(clap_color_of(words("continuum --color=never key list --color always")), ColorChoice::Always);
        assert_eq!(clap_color_of(words("continuum run wc -- --color=never")), resolve(ColorChoice::Auto, no_color()));
        assert_eq!(clap_color_of(words("continuum --color bogus")), resolve(ColorChoice::Auto, no_color()));
    }
}
