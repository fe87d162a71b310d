//! Code generation for `#[monitor]`.
//!
//! Three shapes of function, one span guard each:
//! - a sync fn: an `EnteredSpan` for the call; when the outcome matters
//!   (`Result` return, `ret`), the body runs in a closure so that `return`
//!   and `?` still pass through the guard's observation;
//! - an `async fn`: rewritten to `fn -> impl Future` so the span starts at
//!   the call, not at the first poll; elided lifetimes are named and
//!   captured, so it reads the same on every edition;
//! - a plain fn returning a future: a tail `async { .. }` or
//!   `Box::pin(async { .. })` (what `#[async_trait]` generates) is wrapped in
//!   place, so the span times the future's run, not the boxing; any other
//!   returned future is wrapped whole;
//! - a fn returning a stream or an iterator: the returned value is wrapped,
//!   so the span lasts until its last item; a boxed one is boxed again.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    parse_quote, Block, FnArg, GenericParam, Ident, ItemFn, Lifetime, LifetimeParam, Pat,
    ReturnType, Signature, Stmt, Type,
};

use crate::attr::{Options, Sequence};
use crate::returns::{
    async_tail, erase_impl_trait, future_output, is_result, returns_boxed, sequence_of,
    SequenceReturn,
};

/// What the function returns, seen through futures.
enum Shape {
    Sync,
    AsyncFn,
    /// A plain fn that returns a future: an `async {}` tail, `Box::pin`ned
    /// or not, or any `impl Future` / boxed future.
    Future,
    /// A fn that returns a stream or an iterator.
    Sequence(Box<SequenceReturn>),
}

pub(crate) fn expand(options: Options, mut func: ItemFn) -> syn::Result<TokenStream> {
    if let Some(constness) = &func.sig.constness {
        return Err(syn::Error::new(
            constness.span,
            "#[monitor] cannot instrument a `const fn`: it may run at compile time, where nothing is recorded",
        ));
    }
    let params = simple_params(&func.sig);
    check_skip(&options, &func.sig, &params)?;
    let krate: syn::Path = options
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::monitor_runtime));
    let shape = shape_of(&func, &options)?;
    check_shape_options(&shape, &options)?;
    let kind = match &shape {
        Shape::Sync => "Sync",
        Shape::AsyncFn | Shape::Future => "Async",
        Shape::Sequence(seq) if seq.kind == Sequence::Stream => "Stream",
        Shape::Sequence(_) => "Iter",
    };
    let span_var = Ident::new("__monitor_span", Span::mixed_site());
    let output: Option<Type> = match &func.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    let value_type = match &shape {
        Shape::Sync | Shape::AsyncFn => output.clone(),
        Shape::Future => output.as_ref().and_then(future_output).cloned(),
        // The items are observed, not the returned value.
        Shape::Sequence(_) => None,
    };
    let parts = Parts {
        callsite_static: callsite(&options, &func.sig, &krate, kind, ""),
        capture: capture(&options, &params, &krate, &span_var),
        result_like: value_type.as_ref().is_some_and(is_result),
        options: &options,
        krate,
        span_var,
        output,
        value_type,
    };
    let new_block = match &shape {
        Shape::Sync => sync_body(&parts, &func),
        Shape::AsyncFn => {
            let block = func.block.clone();
            async_fn_body(&parts, &mut func.sig, &block)
        }
        Shape::Future => future_body(&parts, &func),
        Shape::Sequence(seq) => sequence_body(&parts, &func, seq),
    };
    func.block = Box::new(syn::parse2::<Block>(new_block)?);
    Ok(func.into_token_stream())
}

/// `skip` needs `args`, and names arguments.
fn check_skip(options: &Options, sig: &Signature, params: &[Ident]) -> syn::Result<()> {
    if let Some(span) = options
        .skip
        .first()
        .map(|s| s.span())
        .filter(|_| options.args.is_none())
    {
        return Err(syn::Error::new(
            span,
            "`skip` leaves arguments out of `args`: add `args`, or remove `skip`",
        ));
    }
    for name in &options.skip {
        if !params.iter().any(|p| p == name) {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "`{name}` is not an argument of `{}`: `skip` names arguments",
                    sig.ident
                ),
            ));
        }
    }
    Ok(())
}

/// What every shape's code is made of.
struct Parts<'a> {
    options: &'a Options,
    /// `::monitor_runtime`, or the `crate = path` option.
    krate: syn::Path,
    /// The span's binding, which the user's body cannot name.
    span_var: Ident,
    /// `static __MONITOR_CALLSITE`.
    callsite_static: TokenStream,
    /// Records `args` and `fields`.
    capture: TokenStream,
    /// The declared return type.
    output: Option<Type>,
    /// The value whose outcome the span records (a future's `Output`).
    value_type: Option<Type>,
    /// Whether that value is spelled as a `Result`.
    result_like: bool,
}

impl Parts<'_> {
    /// Opens the span: an `EnteredSpan` for a call (`entered`), else a
    /// `Span`; under the `parent` option's value when it gives one.
    fn new_span(&self, entered: bool) -> TokenStream {
        let krate = &self.krate;
        let guard = if entered {
            quote!(#krate::EnteredSpan)
        } else {
            quote!(#krate::Span)
        };
        match &self.options.parent {
            None => quote!(#guard::new(&__MONITOR_CALLSITE)),
            Some(parent) => {
                // A value of the wrong type is reported at the expression.
                let into = quote_spanned!(parent.span()=>
                    #krate::propagation::ParentSpan::parent_span(&(#parent))
                );
                quote!(#guard::under(&__MONITOR_CALLSITE, #into))
            }
        }
    }
}

/// A sync fn: an `EnteredSpan` for the call; the body runs in a closure
/// that catches a panic where the span ends, and its result is observed.
fn sync_body(p: &Parts<'_>, func: &ItemFn) -> TokenStream {
    let Parts {
        options,
        krate,
        span_var,
        callsite_static,
        capture,
        output,
        ..
    } = p;
    let block = &func.block;
    let stmts = &block.stmts;
    let new_span = p.new_span(true);
    let ret = Ident::new("__monitor_ret", Span::mixed_site());
    let observe = observe(
        p.result_like,
        options.ret.is_some(),
        krate,
        &quote!(&#ret),
        span_var,
    );
    // A closure would hide the caller's location from a
    // `#[track_caller]` body; such a body runs inline, and its
    // panic's message comes from the hook (closures cannot take the
    // attribute on stable).
    let track_caller = func.attrs.iter().any(|a| a.path().is_ident("track_caller"));
    if observe.is_empty() && track_caller {
        let mutability = (!capture.is_empty()).then(|| quote!(mut));
        quote! {{
            #callsite_static
            let #mutability #span_var = #new_span;
            #capture
            #(#stmts)*
        }}
    } else {
        // The body runs in a closure that states the return type, so
        // coercions in the body work, a type error points at the
        // user's line, and a panic is caught where the span ends and
        // its message read from the payload.
        let ty = output
            .as_ref()
            .map(erase_impl_trait)
            .unwrap_or_else(|| parse_quote!(()));
        let call = quote!(let #ret = #span_var.observe_panic(move || -> #ty #block););
        quote! {{
            #callsite_static
            let mut #span_var = #new_span;
            #capture
            #call
            #observe
            #ret
        }}
    }
}

/// An `async fn`: rewritten to `fn -> impl Future`, so the span starts at
/// the call, and its body wrapped in `Monitored`.
fn async_fn_body(p: &Parts<'_>, sig: &mut Signature, block: &Block) -> TokenStream {
    let Parts {
        options,
        krate,
        span_var,
        callsite_static,
        capture,
        output,
        value_type,
        ..
    } = p;
    let rebinds = rewrite_async_signature(sig, krate, options.parent.is_some());
    let new_span = p.new_span(false);
    let ret = Ident::new("__monitor_ret", Span::mixed_site());
    let out_ty = output
        .as_ref()
        .map_or_else(|| quote!(()), |ty| erase_impl_trait(ty).into_token_stream());
    let inner = quote! {
        async move {
            #(#rebinds)*
            #[allow(clippy::diverging_sub_expression)]
            let #ret: #out_ty = #block;
            #[allow(unreachable_code)] // a body that always returns or panics
            #ret
        }
    };
    let wrapped = monitored(inner, value_type.as_ref(), options, krate, span_var);
    quote! {{
        #callsite_static
        let mut #span_var = #new_span;
        #capture
        #wrapped
    }}
}

/// A plain fn returning a future: built with the span entered, then
/// wrapped (in place when its tail is an `async` block).
fn future_body(p: &Parts<'_>, func: &ItemFn) -> TokenStream {
    let Parts {
        options,
        krate,
        span_var,
        callsite_static,
        capture,
        value_type,
        ..
    } = p;
    // The future is built with the span entered: whatever runs before
    // its async block is the span's work too. A tail `async {}` or
    // `Box::pin(async {})` is wrapped in place; any other future is
    // wrapped whole, and boxed again when the function returns a box.
    let new_span = p.new_span(false);
    let mut stmts = func.block.stmts.clone();
    let boxer = match async_tail(&func.block) {
        Some((boxer, async_block)) => {
            stmts.pop();
            stmts.push(Stmt::Expr(async_block.clone(), None));
            boxer.map(ToTokens::into_token_stream)
        }
        None => returns_boxed(&func.sig).then(|| quote!(::std::boxed::Box::pin)),
    };
    let future = Ident::new("__monitor_future", Span::mixed_site());
    let wrapped = monitored(
        quote!(#future),
        value_type.as_ref(),
        options,
        krate,
        span_var,
    );
    let tail = match boxer {
        Some(boxer) => quote!(#boxer(#wrapped)),
        None => wrapped,
    };
    quote! {{
        #callsite_static
        let mut #span_var = #new_span;
        #capture
        let #future = {
            let _entered = #span_var.enter();
            #(#stmts)*
        };
        #tail
    }}
}

/// A fn returning a stream or an iterator: built with the span entered,
/// then wrapped so the span lasts until its last item.
fn sequence_body(p: &Parts<'_>, func: &ItemFn, seq: &SequenceReturn) -> TokenStream {
    let Parts {
        options,
        krate,
        span_var,
        callsite_static,
        capture,
        output,
        ..
    } = p;
    let block = &func.block;
    let new_span = p.new_span(false);
    // The stream or iterator is built with the span entered, in a
    // closure so that an early `return` is wrapped too.
    let ty = output
        .as_ref()
        .map(erase_impl_trait)
        .unwrap_or_else(|| parse_quote!(()));
    let inner = Ident::new("__monitor_inner", Span::mixed_site());
    let (item_static, item_callsite) = if options.item_spans.is_some() {
        let item_kind = match seq.kind {
            Sequence::Stream => "Async",
            Sequence::Iter => "Sync",
        };
        (
            callsite(options, &func.sig, krate, item_kind, ".item"),
            quote!(::core::option::Option::Some(&__MONITOR_ITEM_CALLSITE)),
        )
    } else {
        (TokenStream::new(), quote!(::core::option::Option::None))
    };
    let wrap = match (seq.boxed, seq.kind) {
        // An error about what cannot be rewrapped points at the type.
        (true, _) => {
            let at = output.as_ref().map_or_else(Span::call_site, Spanned::span);
            quote_spanned!(at=> #krate::__private::Rewrap::rewrap)
        }
        (false, Sequence::Stream) => quote!(#krate::__private::MonitoredStream::new),
        (false, Sequence::Iter) => quote!(#krate::__private::MonitoredIter::new),
    };
    let observer = item_observer(seq.item.as_ref(), krate);
    // The same binding, located at the return type for errors.
    let inner_at_type = Ident::new(
        "__monitor_inner",
        Span::mixed_site().located_at(output.as_ref().map_or_else(Span::call_site, Spanned::span)),
    );
    quote! {{
        #callsite_static
        #item_static
        let mut #span_var = #new_span;
        #capture
        let #inner = #span_var.in_scope(move || -> #ty #block);
        #wrap(#inner_at_type, #span_var, #item_callsite, #observer)
    }}
}

/// `Monitored::new(future, span, observer)`.
fn monitored(
    future: TokenStream,
    value_type: Option<&Type>,
    options: &Options,
    krate: &syn::Path,
    span_var: &Ident,
) -> TokenStream {
    let out = Ident::new("__monitor_out", Span::mixed_site());
    let result_like = value_type.is_some_and(is_result);
    let observe = observe(
        result_like,
        options.ret.is_some(),
        krate,
        &quote!(#out),
        span_var,
    );
    // The output's type is stated, not left to `<F as Future>::Output`: the
    // `Err` check picks its impl by that type when the closure is checked.
    let out_type = value_type.map(|ty| {
        let ty = erase_impl_trait(ty);
        quote!(: &#ty)
    });
    let observer = if observe.is_empty() {
        quote!(|_, _| {})
    } else {
        quote!(|#out #out_type, #span_var: &mut #krate::Span| { #observe })
    };
    quote!(#krate::__private::Monitored::new(#future, #span_var, #observer))
}

/// The message of an `Err` item, for a stream's or iterator's observer.
fn item_observer(item: Option<&Type>, krate: &syn::Path) -> TokenStream {
    let var = Ident::new("__monitor_item", Span::mixed_site());
    let ty = item.map(|ty| {
        let ty = erase_impl_trait(ty);
        quote!(: &#ty)
    });
    quote! {
        |#var #ty| -> ::core::option::Option<::std::string::String> {
            #[allow(unused_imports)]
            use #krate::__private::{OutcomeOfOther as _, OutcomeOfResult as _};
            #[allow(clippy::needless_borrow)]
            let __monitor_err = (&&#krate::__private::Outcome(#var)).__monitor_err()?;
            #[allow(unused_imports)]
            use #krate::__private::{CaptureOpaque as _, MessageDebug as _, MessageDisplay as _};
            #[allow(clippy::needless_borrow)]
            ::core::option::Option::Some(
                (&&&#krate::__private::Capture(__monitor_err)).__monitor_message(#krate::__private::capture_rules()),
            )
        }
    }
}

/// The callsite static: `__MONITOR_CALLSITE`, or with a name suffix (the
/// per-item spans' `.item`) `__MONITOR_ITEM_CALLSITE`.
fn callsite(
    options: &Options,
    sig: &Signature,
    krate: &syn::Path,
    kind: &str,
    suffix: &str,
) -> TokenStream {
    let kind = format_ident!("{kind}");
    let static_name = if suffix.is_empty() {
        format_ident!("__MONITOR_CALLSITE")
    } else {
        format_ident!("__MONITOR_ITEM_CALLSITE")
    };
    let name = options.name.as_ref().map_or_else(
        || sig.ident.to_string().trim_start_matches("r#").to_owned(),
        |n| n.value(),
    ) + suffix;
    let group = match &options.group {
        Some(group) => quote!(#group),
        None => quote!(::core::module_path!()),
    };
    let line = quote_spanned!(sig.ident.span()=> ::core::line!());
    let sampled = options
        .sample
        .filter(|rate| *rate < 1.0)
        .map(|rate| quote!(.sampled(#rate)));
    quote! {
        static #static_name: #krate::Callsite = #krate::Callsite::new(
            #name,
            ::core::module_path!(),
            #group,
            ::core::file!(),
            #line,
            #krate::SpanKind::#kind,
        ) #sampled;
    }
}

/// Records `args` and `fields` when the span is recording.
fn capture(
    options: &Options,
    params: &[Ident],
    krate: &syn::Path,
    span_var: &Ident,
) -> TokenStream {
    let mut records = Vec::new();
    // The runtime's built-in rule decides at compile time (a `const`
    // block), the configured names at run time: a secret is never formatted.
    let mut record = |key: String, value: TokenStream| {
        records.push(quote! {
            #span_var.__record_checked(
                #key,
                if const { #krate::__private::is_secret_name(#key) }
                    || __monitor_rules.is_configured_secret(#key)
                {
                    #krate::__private::masked()
                } else {
                    (&&&&#krate::__private::Capture(#value)).__monitor_field(__monitor_rules)
                },
            )
        });
    };
    if options.args.is_some() {
        for param in params
            .iter()
            .filter(|p| *p != "self" && !options.skip.contains(p))
        {
            record(
                param.to_string().trim_start_matches("r#").to_owned(),
                quote!(&#param),
            );
        }
    }
    for field in &options.fields {
        let value = &field.value;
        record(
            field.key.to_string().trim_start_matches("r#").to_owned(),
            quote!(&(#value)),
        );
    }
    if records.is_empty() {
        return TokenStream::new();
    }
    quote! {
        #[allow(clippy::needless_borrow)]
        if #span_var.is_recording() {
            #[allow(unused_imports)]
            use #krate::__private::{CaptureDebug as _, CaptureOpaque as _, CaptureScalar as _, CaptureSeq as _};
            let __monitor_rules = #krate::__private::capture_rules();
            #(#records;)*
        }
    }
}

/// Records an `Err` and, with `ret`, the value; `value` is a reference.
fn observe(
    result_like: bool,
    ret: bool,
    krate: &syn::Path,
    value: &TokenStream,
    span_var: &Ident,
) -> TokenStream {
    let mut out = TokenStream::new();
    if result_like {
        out.extend(quote! {
            #[allow(clippy::needless_borrow)]
            if let ::core::option::Option::Some(__monitor_err) = {
                #[allow(unused_imports)]
                use #krate::__private::{OutcomeOfOther as _, OutcomeOfResult as _};
                (&&#krate::__private::Outcome(#value)).__monitor_err()
            } {
                #[allow(unused_imports)]
                use #krate::__private::{CaptureOpaque as _, MessageDebug as _, MessageDisplay as _};
                #span_var.__record_error_checked(
                    (&&&#krate::__private::Capture(__monitor_err)).__monitor_message(#krate::__private::capture_rules()),
                );
            }
        });
    }
    if ret {
        out.extend(quote! {
            #[allow(clippy::needless_borrow)]
            if #span_var.is_recording() {
                #[allow(unused_imports)]
                use #krate::__private::{CaptureDebug as _, CaptureOpaque as _, CaptureScalar as _, CaptureSeq as _};
                #span_var.__record_checked(
                    "return",
                    (&&&&#krate::__private::Capture(#value)).__monitor_field(#krate::__private::capture_rules()),
                );
            }
        });
    }
    out
}

/// Arguments bound to a plain name (`x`, `mut x`, `self`), in order.
fn simple_params(sig: &Signature) -> Vec<Ident> {
    sig.inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Receiver(r) => Some(Ident::new("self", r.self_token.span)),
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => Some(p.ident.clone()),
                _ => None,
            },
        })
        .collect()
}

fn shape_of(func: &ItemFn, options: &Options) -> syn::Result<Shape> {
    let output = match &func.sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => None,
    };
    if func.sig.asyncness.is_some() {
        if let Some((sequence, span)) = options.sequence {
            return Err(syn::Error::new(
                span,
                format!(
                    "an `async fn` returns a future: `{}` applies to a fn that returns {}",
                    sequence.option(),
                    sequence_trait(sequence),
                ),
            ));
        }
        return Ok(Shape::AsyncFn);
    }
    let seen = output.and_then(sequence_of);
    match (options.sequence, seen) {
        (Some((sequence, span)), Some(seen)) if seen.kind != sequence => {
            return Err(syn::Error::new(
                span,
                format!(
                    "`{}` does not match the return type, which is {}",
                    sequence.option(),
                    sequence_trait(seen.kind),
                ),
            ))
        }
        (_, Some(seen)) => return Ok(Shape::Sequence(Box::new(seen))),
        (Some((sequence, span)), None) => {
            return match output {
                None => Err(syn::Error::new(
                    span,
                    format!(
                        "`{}` applies to a fn that returns {}; this one returns nothing",
                        sequence.option(),
                        sequence_trait(sequence),
                    ),
                )),
                Some(ty @ Type::ImplTrait(_)) => Err(syn::Error::new(
                    ty.span(),
                    format!(
                        "`{}` expects `impl {}<Item = ..>` here",
                        sequence.option(),
                        sequence_trait(sequence)
                            .trim_start_matches("a ")
                            .trim_start_matches("an "),
                    ),
                )),
                // A name that hides a box: `Rewrap` checks it.
                Some(_) => Ok(Shape::Sequence(Box::new(SequenceReturn {
                    kind: sequence,
                    item: None,
                    boxed: true,
                }))),
            };
        }
        (None, None) => {}
    }
    let returns_future =
        matches!(&func.sig.output, ReturnType::Type(_, ty) if future_output(ty).is_some());
    Ok(if async_tail(&func.block).is_some() || returns_future {
        Shape::Future
    } else {
        Shape::Sync
    })
}

/// Options that only some shapes take.
fn check_shape_options(shape: &Shape, options: &Options) -> syn::Result<()> {
    let is_sequence = matches!(shape, Shape::Sequence(_));
    if let (Some(span), false) = (options.item_spans, is_sequence) {
        return Err(syn::Error::new(
            span,
            "`item_spans` applies to a fn that returns a Stream or an Iterator",
        ));
    }
    if let (Some(span), true) = (options.ret, is_sequence) {
        return Err(syn::Error::new(
            span,
            "`ret` records a returned value; a stream's or iterator's items are counted in `items`, not recorded",
        ));
    }
    Ok(())
}

fn sequence_trait(sequence: Sequence) -> &'static str {
    match sequence {
        Sequence::Stream => "a Stream",
        Sequence::Iter => "an Iterator",
    }
}

/// Names elided lifetimes in arguments (`&T`, `&self`, `'_`), so that the
/// returned `impl Future` can capture them on edition 2021 too.
///
/// With `output` set, every elided lifetime becomes that one instead: the
/// return type gets the lifetime elision would give it.
#[derive(Default)]
struct NameElided {
    added: Vec<Lifetime>,
    output: Option<Lifetime>,
}

impl NameElided {
    fn fresh(&mut self, span: Span) -> Lifetime {
        if let Some(output) = &self.output {
            return output.clone();
        }
        let lifetime = Lifetime::new(&format!("'__monitor{}", self.added.len()), span);
        self.added.push(lifetime.clone());
        lifetime
    }
}

/// The lifetime elision gives a return type: the receiver's if it is a
/// reference, else the only lifetime among the arguments.
fn output_lifetime(sig: &Signature) -> Option<Lifetime> {
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        if let Type::Reference(reference) = &*r.ty {
            return reference.lifetime.clone();
        }
    }
    struct Collect(Vec<Lifetime>);
    impl VisitMut for Collect {
        fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
            if lifetime.ident != "static" && !self.0.contains(lifetime) {
                self.0.push(lifetime.clone());
            }
        }
        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
        fn visit_parenthesized_generic_arguments_mut(
            &mut self,
            _: &mut syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    let mut collect = Collect(Vec::new());
    for input in sig.inputs.clone().iter_mut() {
        collect.visit_fn_arg_mut(input);
    }
    (collect.0.len() == 1).then(|| collect.0.remove(0))
}

impl VisitMut for NameElided {
    fn visit_receiver_mut(&mut self, receiver: &mut syn::Receiver) {
        if let Some((and, lifetime @ None)) = &mut receiver.reference {
            let named = self.fresh(and.span);
            *lifetime = Some(named.clone());
            if let Type::Reference(r) = &mut *receiver.ty {
                r.lifetime = Some(named);
            }
        } else {
            visit_mut::visit_receiver_mut(self, receiver);
        }
    }
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some(self.fresh(r.and_token.span));
        }
        visit_mut::visit_type_reference_mut(self, r);
    }
    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        if lifetime.ident == "_" {
            *lifetime = self.fresh(lifetime.span());
        }
    }
    // Fn pointers and `Fn(&T)` sugar have their own elision scope.
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// Turns `async fn f(args) -> T` into `fn f(args) -> impl Future<Output = T>`
/// capturing every lifetime; returns the statements that move the arguments
/// into the async block, as `async fn` does (so they drop when it ends).
/// `parent_option`: the `parent` option may be an argument's only use,
/// which a rebinding inside the future must not report as unused.
fn rewrite_async_signature(
    sig: &mut Signature,
    krate: &syn::Path,
    parent_option: bool,
) -> Vec<TokenStream> {
    sig.asyncness = None;
    let mut namer = NameElided::default();
    let mut rebinds = Vec::new();
    for (i, input) in sig.inputs.iter_mut().enumerate() {
        namer.visit_fn_arg_mut(input);
        let FnArg::Typed(typed) = input else { continue };
        match &mut *typed.pat {
            Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => {
                let ident = &p.ident;
                let mutability = p.mutability.take();
                let unused = parent_option.then(|| quote!(#[allow(unused_variables)]));
                rebinds.push(quote! {
                    #[allow(clippy::redundant_locals)]
                    #unused
                    let #mutability #ident = #ident;
                });
            }
            pat => {
                let arg = format_ident!("__monitor_arg{}", i);
                let original = std::mem::replace(pat, parse_quote!(#arg));
                // Moved into the future first, so that even `_` drops when
                // the future ends, as with `async fn`.
                rebinds.push(quote! {
                    let #arg = #arg;
                    let #original = #arg;
                });
            }
        }
    }
    // Name the return type's elided lifetimes too, as elision would: a
    // named input with an elided output trips `mismatched_lifetime_syntaxes`.
    let elided_output = output_lifetime(sig);
    if let (ReturnType::Type(_, ty), Some(lifetime)) = (&mut sig.output, elided_output) {
        NameElided {
            added: Vec::new(),
            output: Some(lifetime),
        }
        .visit_type_mut(ty);
    }
    for lifetime in namer.added.into_iter().rev() {
        sig.generics
            .params
            .insert(0, GenericParam::Lifetime(LifetimeParam::new(lifetime)));
    }
    let captures = sig.generics.lifetimes().map(|l| {
        let lifetime = &l.lifetime;
        quote!(+ #krate::__private::Captures<#lifetime>)
    });
    let captures: Vec<TokenStream> = captures.collect();
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    sig.output = parse_quote!(-> impl ::core::future::Future<Output = #output> #(#captures)*);
    rebinds
}
