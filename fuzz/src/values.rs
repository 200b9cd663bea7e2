//! Random component values of a reflected type (wasmtime's `Type`), for round-trip checks.

use arbitrary::{Result, Unstructured};
use wasmtime::component::{Type, Val};

/// Most list items generated at one level.
const MAX_ITEMS: usize = 6;

/// A random value of type `ty`.
pub fn val(u: &mut Unstructured<'_>, ty: &Type) -> Result<Val> {
    Ok(match ty {
        Type::Bool => Val::Bool(u.arbitrary()?),
        Type::S8 => Val::S8(u.arbitrary()?),
        Type::U8 => Val::U8(u.arbitrary()?),
        Type::S16 => Val::S16(u.arbitrary()?),
        Type::U16 => Val::U16(u.arbitrary()?),
        Type::S32 => Val::S32(u.arbitrary()?),
        Type::U32 => Val::U32(u.arbitrary()?),
        Type::S64 => Val::S64(u.arbitrary()?),
        Type::U64 => Val::U64(u.arbitrary()?),
        Type::Float32 => Val::Float32(u.arbitrary()?),
        Type::Float64 => Val::Float64(u.arbitrary()?),
        Type::Char => Val::Char(u.arbitrary()?),
        Type::String => Val::String(u.arbitrary()?),
        Type::List(list) => {
            let n = u.int_in_range(0..=MAX_ITEMS)?;
            Val::List((0..n).map(|_| val(u, &list.ty())).collect::<Result<_>>()?)
        }
        Type::Option(opt) => Val::Option(if u.arbitrary()? { Some(Box::new(val(u, &opt.ty())?)) } else { None }),
        Type::Result(result) => {
            let side = |u: &mut Unstructured<'_>, t: Option<Type>| -> Result<Option<Box<Val>>> {
                t.map(|t| val(u, &t).map(Box::new)).transpose()
            };
            Val::Result(if u.arbitrary()? { Ok(side(u, result.ok())?) } else { Err(side(u, result.err())?) })
        }
        Type::Tuple(tuple) => Val::Tuple(tuple.types().map(|t| val(u, &t)).collect::<Result<_>>()?),
        Type::Record(record) => {
            Val::Record(record.fields().map(|f| Ok((f.name.to_string(), val(u, &f.ty)?))).collect::<Result<_>>()?)
        }
        Type::Variant(variant) => {
            let cases: Vec<_> = variant.cases().collect();
            let case = u.choose(&cases)?;
            let payload = case.ty.as_ref().map(|t| val(u, t).map(Box::new)).transpose()?;
            Val::Variant(case.name.to_string(), payload)
        }
        Type::Enum(e) => Val::Enum(u.choose(&e.names().collect::<Vec<_>>())?.to_string()),
        Type::Flags(flags) => {
            // Flags come back in declaration order, so generate them in that order.
            let mut names = Vec::new();
            for name in flags.names() {
                if u.arbitrary()? {
                    names.push(name.to_string());
                }
            }
            Val::Flags(names)
        }
        _ => return Err(arbitrary::Error::IncorrectFormat),
    })
}

/// Whether `v` holds a float that JSON cannot carry (NaN or an infinity).
pub fn has_non_finite(v: &Val) -> bool {
    match v {
        Val::Float32(f) => !f.is_finite(),
        Val::Float64(f) => !f.is_finite(),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => items.iter().any(has_non_finite),
        Val::Record(fields) => fields.iter().any(|(_, v)| has_non_finite(v)),
        Val::Option(Some(v)) | Val::Variant(_, Some(v)) | Val::Result(Ok(Some(v)) | Err(Some(v))) => has_non_finite(v),
        _ => false,
    }
}
