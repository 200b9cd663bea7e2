//! The integration suite, one test binary: each module is one area (linking one binary instead of
//! one per file keeps the release build small and fast to link).

mod adversarial;
mod alloy;
mod attacks;
mod authoring;
mod cli;
mod cli_conventions;
mod console;
mod discovery;
mod ecosystem;
mod eventlog;
mod grants;
mod grid;
mod host_api;
mod http_api;
mod inference;
mod install;
mod jobs;
mod market;
mod netns;
mod process;
mod reflection;
mod robustness;
mod sandbox;
mod upgrade;
