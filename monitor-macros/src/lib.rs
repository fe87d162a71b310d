//! The `#[monitor]` attribute, re-exported by `monitor_runtime`: every call
//! of the function becomes a span in the monitor database.
//!
//! Option parsing lives in `attr`, the return-type analysis in `returns`,
//! code generation in `expand`; see
//! `monitor_runtime::monitor` for the user-facing documentation.

extern crate proc_macro;

mod attr;
mod expand;
mod returns;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Records every call of the function as a span. See `monitor_runtime::monitor`.
#[proc_macro_attribute]
pub fn monitor(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.clone().into();
    let result = syn::parse::<attr::Options>(attr).and_then(|options| {
        let func = parse_function(item)?;
        expand::expand(options, func)
    });
    match result {
        Ok(tokens) => tokens.into(),
        // Keep the item, so that the only error is ours.
        Err(err) => {
            let mut out = err.to_compile_error();
            out.extend(item2);
            out.into()
        }
    }
}

/// The annotated function, or an error naming what it was instead.
fn parse_function(item: TokenStream) -> syn::Result<syn::ItemFn> {
    let item2: proc_macro2::TokenStream = item.clone().into();
    if let Ok(func) = syn::parse::<syn::ItemFn>(item) {
        return Ok(func);
    }
    let what = match syn::parse2::<syn::Item>(item2.clone()) {
        Ok(syn::Item::Struct(s)) => Some((s.struct_token.into_token_stream(), "a struct")),
        Ok(syn::Item::Enum(e)) => Some((e.enum_token.into_token_stream(), "an enum")),
        Ok(syn::Item::Impl(i)) => Some((
            i.impl_token.into_token_stream(),
            "an impl block: put it on the methods",
        )),
        Ok(syn::Item::Trait(t)) => Some((
            t.trait_token.into_token_stream(),
            "a trait: put it on the methods of its impls",
        )),
        Ok(syn::Item::Mod(m)) => Some((m.mod_token.into_token_stream(), "a module")),
        Ok(syn::Item::Static(s)) => Some((s.static_token.into_token_stream(), "a static")),
        Ok(syn::Item::Const(c)) => Some((c.const_token.into_token_stream(), "a const")),
        Ok(syn::Item::Type(t)) => Some((t.type_token.into_token_stream(), "a type alias")),
        _ => None,
    };
    if let Some((token, what)) = what {
        return Err(syn::Error::new_spanned(
            token,
            format!("#[monitor] goes on a function, not on {what}"),
        ));
    }
    if let Ok(method) = syn::parse2::<syn::TraitItemFn>(item2.clone()) {
        if method.default.is_none() {
            return Err(syn::Error::new_spanned(
                method.sig.fn_token,
                "#[monitor] needs a function body: put it on the implementations of this method",
            ));
        }
    }
    Err(syn::Error::new_spanned(
        item2,
        "#[monitor] goes on a function",
    ))
}
