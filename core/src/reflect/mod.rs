//! Reflection: a component's exported functions become commands with JSON Schemas.
//!
//! The component's types (read through wasmtime's component type API) are the authority on
//! what a command accepts; the WIT source carried with the plugin adds names and docs.

pub mod convert;
pub mod program;
pub mod schema;
pub mod wit_source;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, Val};
use wasmtime::Engine;

use convert::{object_to_fields, to_json, ConvertError, Path};
use schema::{schema, type_kind, WitRef};
use wit_source::WitWorld;

/// How a command's JSON parameters map onto its WIT parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ParamStyle {
    /// One record parameter: the JSON params are that record.
    Record,
    /// Any other parameter list: a JSON object keyed by parameter name.
    Named,
}

/// The JSON Schemas and docs of one command: what the CLI, the HTTP API and peers show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CommandSchema {
    /// The full command name, `plugin/function` or `plugin/interface/function`.
    pub name: String,
    /// The function's WIT doc comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How JSON params map onto WIT parameters.
    pub param_style: ParamStyle,
    /// Schema of the params object.
    #[schema(value_type = serde_json::Value)]
    pub params: Value,
    /// Schema of a successful result.
    #[schema(value_type = serde_json::Value)]
    pub result: Value,
    /// Schema of the error value, for functions returning `result<T, E>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub error: Option<Value>,
}

/// The shape of a function's result.
#[derive(Debug, Clone)]
pub enum ResultShape {
    /// No result: success is JSON `null`.
    Unit,
    /// A plain value.
    Value(Type),
    /// `result<T, E>`: success carries T, failure is a command error carrying E.
    Fallible {
        /// The success type, if the `ok` case carries a value.
        ok: Option<Type>,
        /// The error type, if the `err` case carries a value.
        err: Option<Type>,
    },
}

/// What kind of export a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// An exported function: JSON params become its arguments.
    Function,
    /// `wasi:cli/run`: JSON params are the process's arguments, stdin and environment, and its
    /// result is what the process wrote and its exit code ([`program`]).
    Program,
    /// `wasi:http/incoming-handler`: JSON params are one HTTP request, the result its response.
    Http,
}

/// One command reflected from a component: how to find it and how to convert its values.
#[derive(Debug, Clone)]
pub struct Command {
    /// Schemas and docs.
    pub schema: CommandSchema,
    /// What kind of export it runs.
    pub kind: CommandKind,
    /// Export index of the function, valid for every instance of the component.
    pub export: ComponentExportIndex,
    /// Parameter names and types, in order.
    pub params: Vec<(String, Type)>,
    /// The result's shape.
    pub result: ResultShape,
    /// Position among the component's exports.
    pub order: usize,
}

/// What a call returned, already converted to JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Success with its value.
    Ok(Value),
    /// The command returned the error case of its `result<T, E>`, carrying E.
    Err(Value),
}

/// The short name of an exported interface: `ns:pkg/iface@1.0.0` → `iface`.
fn interface_short_name(export: &str) -> &str {
    let tail = export.rsplit('/').next().unwrap_or(export);
    tail.split('@').next().unwrap_or(tail)
}

impl Command {
    /// Converts JSON params into the function's argument values.
    pub fn params_to_vals(&self, params: &Value) -> Result<Vec<Val>, ConvertError> {
        match self.schema.param_style {
            ParamStyle::Record => Ok(vec![convert::to_val(&self.params[0].1, params, &Path::Root("params"))?]),
            ParamStyle::Named => {
                let fields: Vec<(&str, &Type)> = self.params.iter().map(|(n, t)| (n.as_str(), t)).collect();
                object_to_fields(&fields, params, &Path::Root("params"))
            }
        }
    }

    /// How many result slots the function has.
    pub fn result_count(&self) -> usize {
        usize::from(!matches!(self.result, ResultShape::Unit))
    }

    /// Converts the function's result values into an [`Outcome`].
    pub fn outcome(&self, results: &[Val]) -> Result<Outcome, ConvertError> {
        match (&self.result, results.first()) {
            (ResultShape::Unit, _) => Ok(Outcome::Ok(Value::Null)),
            (ResultShape::Value(t), Some(v)) => Ok(Outcome::Ok(to_json(t, v, &Path::Root("result"))?)),
            (ResultShape::Fallible { ok, err }, Some(Val::Result(r))) => match r {
                Ok(v) => Ok(Outcome::Ok(match (ok, v) {
                    (Some(t), Some(v)) => to_json(t, v, &Path::Root("result"))?,
                    _ => Value::Null,
                })),
                Err(v) => Ok(Outcome::Err(match (err, v) {
                    (Some(t), Some(v)) => to_json(t, v, &Path::Root("error"))?,
                    _ => Value::Null,
                })),
            },
            _ => Err(ConvertError { path: "result".into(), message: "the component returned no result value".into() }),
        }
    }
}

/// Checks that a type can cross a command boundary: no resources, futures or streams, and no
/// `option<option<T>>` (JSON `null` could not tell its two empty states apart).
fn check_type(ty: &Type, at: &str) -> Result<()> {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => bail!(
            "{at} has type {}; resources, futures and streams cannot be command parameters or results \
             (a command is one stateless call) — pass plain data (records, lists, strings) instead",
            type_kind(ty)
        ),
        Type::Option(o) => {
            if matches!(o.ty(), Type::Option(_)) {
                bail!("{at} has type option<option<…>>, which JSON null cannot represent unambiguously; use a variant instead");
            }
            check_type(&o.ty(), at)
        }
        Type::List(l) => check_type(&l.ty(), &format!("{at}[]")),
        Type::FixedLengthList(l) => check_type(&l.ty(), &format!("{at}[]")),
        Type::Map(m) => {
            check_type(&m.key(), &format!("{at}{{key}}"))?;
            check_type(&m.value(), &format!("{at}{{}}"))
        }
        Type::Record(r) => r.fields().try_for_each(|f| check_type(&f.ty, &format!("{at}.{}", f.name))),
        Type::Tuple(t) => t.types().enumerate().try_for_each(|(i, t)| check_type(&t, &format!("{at}.{i}"))),
        Type::Variant(v) => {
            v.cases().try_for_each(|c| c.ty.map_or(Ok(()), |t| check_type(&t, &format!("{at}.{}", c.name))))
        }
        Type::Result(r) => {
            r.ok().map_or(Ok(()), |t| check_type(&t, &format!("{at}.ok")))?;
            r.err().map_or(Ok(()), |t| check_type(&t, &format!("{at}.err")))
        }
        _ => Ok(()),
    }
}

fn reflect_function(
    plugin: &str,
    interface: Option<&str>,
    name: &str,
    func: &ComponentFunc,
    export: ComponentExportIndex,
    wit: Option<&WitWorld>,
) -> Result<Command> {
    let full = match interface {
        Some(i) => format!("{plugin}/{}/{name}", interface_short_name(i)),
        None => format!("{plugin}/{name}"),
    };
    if let Some(rest) = name.strip_prefix('[') {
        let resource = rest.split_once(']').map_or(rest, |(_, r)| r).split('.').next().unwrap_or(rest);
        bail!(
            "the component exports resource `{resource}` in `{}`; resources cannot be commands (a command is one \
             stateless call) — export plain functions over records, lists and strings instead",
            interface.map_or(plugin, interface_short_name)
        );
    }
    if func.async_() {
        bail!("command `{full}` is an async function; async exports are not supported yet — export a synchronous function");
    }
    let params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_string(), t)).collect();
    let results: Vec<Type> = func.results().collect();
    for (n, t) in &params {
        check_type(t, &format!("command `{full}`: parameter `{n}`"))?;
    }
    for t in &results {
        check_type(t, &format!("command `{full}`: the result"))?;
    }
    let wit_fn = match wit {
        Some(w) => Some(w.export_function(interface, name).with_context(|| {
            format!("the WIT source does not describe this component: it has no export `{name}` for command `{full}`")
        })?),
        None => None,
    };
    if let Some(f) = wit_fn {
        let wit_names: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
        let names: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
        if wit_names != names {
            bail!("the WIT source does not describe this component: `{full}` takes ({}) in the WIT but ({}) in the component", wit_names.join(", "), names.join(", "));
        }
    }
    let wit_ref = |t: wit_parser::Type| wit.map(|w| WitRef { resolve: &w.resolve, ty: t });

    let record_style = params.len() == 1 && matches!(params[0].1, Type::Record(_));
    let params_schema = if record_style {
        schema(&params[0].1, wit_fn.and_then(|f| wit_ref(f.params[0].ty)), "params")?
    } else {
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for (i, (n, t)) in params.iter().enumerate() {
            properties
                .insert(n.clone(), schema(t, wit_fn.and_then(|f| wit_ref(f.params[i].ty)), &format!("params.{n}"))?);
            if !matches!(t, Type::Option(_)) {
                required.push(json!(n));
            }
        }
        json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
    };

    let wit_result = wit_fn.and_then(|f| f.result);
    let (result, result_schema, error_schema) = match results.as_slice() {
        [] => (ResultShape::Unit, json!({ "type": "null" }), None),
        [Type::Result(r)] => {
            let wit_kind = match (wit, wit_result) {
                (Some(w), Some(wit_parser::Type::Id(id))) => Some(&w.resolve.types[id].kind),
                (_, None) => None,
                _ => bail!(
                    "the WIT source does not describe this component: `{full}` returns a result in the component only"
                ),
            };
            let (wok, werr) = match wit_kind {
                Some(wit_parser::TypeDefKind::Result(wr)) => (wr.ok, wr.err),
                Some(_) => bail!(
                    "the WIT source does not describe this component: `{full}` returns a result in the component only"
                ),
                None => (None, None),
            };
            let ok = match r.ok() {
                Some(t) => schema(&t, wok.and_then(wit_ref), "result")?,
                None => json!({ "type": "null" }),
            };
            let err = match r.err() {
                Some(t) => schema(&t, werr.and_then(wit_ref), "error")?,
                None => json!({ "type": "null" }),
            };
            (ResultShape::Fallible { ok: r.ok(), err: r.err() }, ok, Some(err))
        }
        [t] => (ResultShape::Value(t.clone()), schema(t, wit_result.and_then(wit_ref), "result")?, None),
        _ => bail!("command `{full}` returns {} values; a command returns at most one", results.len()),
    };
    let description = wit_fn.and_then(|f| f.docs.contents.as_deref()).map(|d| d.trim().to_string());
    Ok(Command {
        schema: CommandSchema {
            name: full,
            description,
            param_style: if record_style { ParamStyle::Record } else { ParamStyle::Named },
            params: params_schema,
            result: result_schema,
            error: error_schema,
        },
        kind: CommandKind::Function,
        export,
        params,
        result,
        order: 0,
    })
}

/// A command whose schemas come from the WASI world it exports rather than from its own
/// function types: a program, an HTTP handler. The world's docs, when the WIT has them, are
/// its description instead of `fallback`.
struct StandardExport {
    name: String,
    fallback: String,
    kind: CommandKind,
    params: Value,
    result: Value,
    shape: ResultShape,
}

impl StandardExport {
    fn command(self, export: ComponentExportIndex, wit: Option<&WitWorld>) -> Command {
        let description = wit.and_then(|w| w.docs()).map(|d| d.trim().to_string()).unwrap_or(self.fallback);
        Command {
            schema: CommandSchema {
                name: self.name,
                description: Some(description),
                param_style: ParamStyle::Record,
                params: self.params,
                result: self.result,
                error: None,
            },
            kind: self.kind,
            export,
            params: Vec::new(),
            result: self.shape,
            order: 0,
        }
    }
}

/// The command of an HTTP handler (a component exporting `wasi:http/incoming-handler`),
/// `<plugin>/http`: one request in, its response out.
fn reflect_http_handler(plugin: &str, export: ComponentExportIndex, wit: Option<&WitWorld>) -> Command {
    StandardExport {
        name: format!("{plugin}/http"),
        fallback: format!(
            "The HTTP handler `{plugin}`, also served at /v1/http/{plugin}/: one request (body base64) in, its response out."
        ),
        kind: CommandKind::Http,
        params: crate::host_api::http::params_schema(),
        result: crate::host_api::http::result_schema(),
        shape: ResultShape::Unit,
    }
    .command(export, wit)
}

/// The one command of a program (a component exporting `wasi:cli/run`), named after the
/// plugin.
fn reflect_program(plugin: &str, export: ComponentExportIndex, wit: Option<&WitWorld>) -> Command {
    StandardExport {
        name: plugin.to_string(),
        fallback: format!(
            "Runs the WASI program `{plugin}` with arguments, stdin and environment; returns its output and exit code."
        ),
        kind: CommandKind::Program,
        params: program::params_schema(),
        result: program::result_schema(),
        shape: ResultShape::Fallible { ok: None, err: None },
    }
    .command(export, wit)
}

/// Exports that guest toolchains add for themselves, never commands: skipped when the plugin's
/// WIT does not declare them. componentize-py exports `exports#init` (its pre-initialization hook).
const TOOLCHAIN_HOOKS: [(&str, &str); 1] = [("exports", "init")];

/// Reflects every exported function of `component` into a command named under `plugin`.
///
/// Refuses components that export no functions and signatures that cannot be commands, and,
/// when `wit` is given, WIT that does not describe the component.
pub fn reflect(engine: &Engine, component: &Component, plugin: &str, wit: Option<&WitWorld>) -> Result<Vec<Command>> {
    let ty = component.component_type();
    let mut commands = Vec::new();
    for (name, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let export = component.get_export_index(None, name).context("export vanished")?;
                commands.push(reflect_function(plugin, None, name, &func, export, wit)?);
            }
            ComponentItem::ComponentInstance(_) if program::is_cli_run(name) => {
                let instance_index = component.get_export_index(None, name).context("export vanished")?;
                let export = component.get_export_index(Some(&instance_index), "run").with_context(|| {
                    format!("the component exports `{name}` without its `run` function; rebuild it with a WASI 0.2 toolchain")
                })?;
                commands.push(reflect_program(plugin, export, wit));
            }
            ComponentItem::ComponentInstance(_) if program::is_http_handler(name) => {
                let instance_index = component.get_export_index(None, name).context("export vanished")?;
                commands.push(reflect_http_handler(plugin, instance_index, wit));
            }
            ComponentItem::ComponentInstance(instance) => {
                let instance_index = component.get_export_index(None, name).context("export vanished")?;
                for (fname, fitem) in instance.exports(engine) {
                    let undeclared = wit.is_some_and(|w| w.export_function(Some(name), fname).is_none());
                    if undeclared && TOOLCHAIN_HOOKS.contains(&(name, fname)) {
                        continue;
                    }
                    if let ComponentItem::ComponentFunc(func) = fitem.ty {
                        let export =
                            component.get_export_index(Some(&instance_index), fname).context("export vanished")?;
                        commands.push(reflect_function(plugin, Some(name), fname, &func, export, wit)?);
                    }
                }
            }
            _ => {}
        }
    }
    for (i, c) in commands.iter_mut().enumerate() {
        c.order = i;
    }
    if commands.is_empty() {
        bail!(
            "the component exports no functions, so it has no commands; a command exports functions from its world, \
             `wasi:cli/run` (a program with a `main`) or `wasi:http/incoming-handler`"
        );
    }
    // A program's command is named after its plugin, so a grant for it would confer every
    // other command of the plugin too (`wc` covers `wc/…`): a program stands alone.
    if commands.len() > 1 && commands.iter().any(|c| c.kind == CommandKind::Program) {
        bail!(
            "the component exports `wasi:cli/run` beside other functions; a program must be its plugin's only \
             export (its command is named after the plugin) — split it into two components"
        );
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = commands.iter().find(|c| !seen.insert(c.schema.name.clone())) {
        bail!("two exports both become command `{}`; rename one of the interfaces or functions", dup.schema.name);
    }
    Ok(commands)
}
