//! What a function's signature and body say about what it returns: a
//! stream or an iterator (and its `Item`), a future (and its `Output`), a
//! `Result`, a tail `async` block. Read by `expand`, which generates code
//! for each shape.

use syn::visit_mut::{self, VisitMut};
use syn::{
    Block, Expr, GenericArgument, PathArguments, ReturnType, Signature, Stmt, Type, TypeParamBound,
};

use crate::attr::Sequence;

/// A returned stream or iterator, as far as the signature shows it.
pub(crate) struct SequenceReturn {
    pub(crate) kind: Sequence,
    /// The `Item` type, when the signature spells it.
    pub(crate) item: Option<Type>,
    /// Returned in a box (or behind a name): wrapped, then boxed again.
    pub(crate) boxed: bool,
}

/// A stream or iterator the return type spells: `impl Stream<Item = T>`,
/// `impl Iterator<Item = T>` (or a subtrait), `BoxStream<'_, T>`,
/// `Pin<Box<dyn Stream<Item = T>>>`, `Box<dyn Iterator<Item = T>>`.
pub(crate) fn sequence_of(ty: &Type) -> Option<SequenceReturn> {
    match ty {
        Type::Group(g) => sequence_of(&g.elem),
        Type::Paren(p) => sequence_of(&p.elem),
        Type::ImplTrait(t) => {
            let (kind, item) = t.bounds.iter().find_map(sequence_bound)?;
            Some(SequenceReturn {
                kind,
                item,
                boxed: false,
            })
        }
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            let first_type = match &last.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                }),
                _ => None,
            };
            let (kind, item) = match last.ident.to_string().as_str() {
                "BoxStream" | "LocalBoxStream" => (Sequence::Stream, first_type.cloned()),
                "Pin" => boxed_dyn(first_type?).filter(|(kind, _)| *kind == Sequence::Stream)?,
                // `Box<dyn Stream + Unpin>` or `Box<dyn Iterator>`.
                "Box" => boxed_dyn(ty)?,
                _ => return None,
            };
            Some(SequenceReturn {
                kind,
                item,
                boxed: true,
            })
        }
        _ => None,
    }
}

/// `Box<dyn Stream<Item = T>>` or `Box<dyn Iterator<Item = T>>`.
fn boxed_dyn(ty: &Type) -> Option<(Sequence, Option<Type>)> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Box" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(Type::TraitObject(t)) => t.bounds.iter().find_map(sequence_bound),
        _ => None,
    })
}

/// `Stream<Item = T>`, `Iterator<Item = T>` and their usual subtraits
/// (`TryStream` names no `Item`: the observer's type is then inferred).
fn sequence_bound(bound: &TypeParamBound) -> Option<(Sequence, Option<Type>)> {
    let TypeParamBound::Trait(t) = bound else {
        return None;
    };
    let last = t.path.segments.last()?;
    let kind = match last.ident.to_string().as_str() {
        "Stream" | "FusedStream" | "TryStream" => Sequence::Stream,
        "Iterator" | "DoubleEndedIterator" | "ExactSizeIterator" | "FusedIterator" => {
            Sequence::Iter
        }
        _ => return None,
    };
    let item = match &last.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(assoc.ty.clone()),
            _ => None,
        }),
        _ => None,
    };
    Some((kind, item))
}

/// The block's tail `async {}` (boxing function `None`) or
/// `Box::pin(async {})` (boxing function `Some(Box::pin)`).
pub(crate) fn async_tail(block: &Block) -> Option<(Option<&Expr>, &Expr)> {
    match block.stmts.last()? {
        Stmt::Expr(tail @ Expr::Async(_), None) => Some((None, tail)),
        Stmt::Expr(Expr::Call(call), None)
            if call.args.len() == 1
                && matches!(call.args[0], Expr::Async(_))
                && is_box_pin(&call.func) =>
        {
            Some((Some(&*call.func), &call.args[0]))
        }
        _ => None,
    }
}

/// Whether the function returns a boxed future (`Pin<Box<dyn Future>>`,
/// `BoxFuture`) rather than `impl Future`.
pub(crate) fn returns_boxed(sig: &Signature) -> bool {
    matches!(&sig.output, ReturnType::Type(_, ty) if !matches!(&**ty, Type::ImplTrait(_)))
}

/// `Box::pin`, `std::boxed::Box::pin`, ...
fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else { return false };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segments.ends_with(&["Box".to_owned(), "pin".to_owned()])
}

/// The `Output` of `impl Future<Output = T>`, `Pin<Box<dyn Future<Output = T>>>`
/// or `BoxFuture<'_, T>`.
pub(crate) fn future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Group(g) => future_output(&g.elem),
        Type::Paren(p) => future_output(&p.elem),
        Type::ImplTrait(t) => t.bounds.iter().find_map(future_bound_output),
        Type::TraitObject(t) => t.bounds.iter().find_map(future_bound_output),
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let mut types = args.args.iter().filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            });
            match last.ident.to_string().as_str() {
                "Pin" | "Box" => types.next().and_then(future_output),
                "BoxFuture" | "LocalBoxFuture" => types.next(),
                _ => None,
            }
        }
        _ => None,
    }
}

fn future_bound_output(bound: &TypeParamBound) -> Option<&Type> {
    let TypeParamBound::Trait(t) = bound else {
        return None;
    };
    let last = t.path.segments.last()?;
    if last.ident != "Future" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
        _ => None,
    })
}

/// Whether a type is spelled as a `Result` (`Result`, `io::Result`,
/// `anyhow::Result`, ...).
pub(crate) fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Group(g) => is_result(&g.elem),
        Type::Paren(p) => is_result(&p.elem),
        Type::Path(p) => {
            p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result")
        }
        _ => false,
    }
}

/// `impl Trait` becomes `_`, so the type can annotate a `let`.
pub(crate) fn erase_impl_trait(ty: &Type) -> Type {
    struct Erase;
    impl VisitMut for Erase {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(t) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](t.impl_token.span),
                });
            } else {
                visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    Erase.visit_type_mut(&mut ty);
    ty
}
