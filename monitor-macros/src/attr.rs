//! Parsing of `#[monitor(...)]` options. Every error points at the token
//! that caused it.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(group);
    syn::custom_keyword!(args);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(ret);
    syn::custom_keyword!(fields);
    syn::custom_keyword!(sample);
    syn::custom_keyword!(stream);
    syn::custom_keyword!(iter);
    syn::custom_keyword!(item_spans);
    syn::custom_keyword!(parent);
}

/// The kind a function's returned sequence is given.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sequence {
    Stream,
    Iter,
}

impl Sequence {
    pub(crate) fn option(self) -> &'static str {
        match self {
            Sequence::Stream => "stream",
            Sequence::Iter => "iter",
        }
    }
}

/// The options of one `#[monitor(...)]`.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) group: Option<LitStr>,
    /// Where `args` was written: record every argument.
    pub(crate) args: Option<Span>,
    pub(crate) skip: Vec<Ident>,
    pub(crate) ret: Option<Span>,
    pub(crate) fields: Vec<Field>,
    pub(crate) sample: Option<f64>,
    pub(crate) krate: Option<Path>,
    /// `stream` or `iter`, where it was written.
    pub(crate) sequence: Option<(Sequence, Span)>,
    pub(crate) item_spans: Option<Span>,
    /// `parent = expr`: a remote parent (`TraceContext`, `traceparent`
    /// text, `SpanIds`, or an `Option`/`Result` of one).
    pub(crate) parent: Option<Expr>,
    /// Options seen so far, to report duplicates at the second one.
    seen: Vec<&'static str>,
}

/// `key = expr` inside `fields(...)`.
pub(crate) struct Field {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `=` after `{key}`: write `fields({key} = expression)`"),
            )
        })?;
        let value: Expr = input.parse()?;
        Ok(Field { key, value })
    }
}

impl Options {
    fn first(&mut self, option: &'static str, span: Span) -> syn::Result<()> {
        if self.seen.contains(&option) {
            return Err(syn::Error::new(
                span,
                format!("duplicate `{option}` option"),
            ));
        }
        self.seen.push(option);
        Ok(())
    }
}

/// The `=` after an option that takes a value; without one, the error
/// points at the option and shows the expected form.
fn equals(input: ParseStream<'_>, option: Span, expected: &str) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(option, format!("expected {expected}")))
    }
}

fn string_value(input: ParseStream<'_>, option: &str, span: Span) -> syn::Result<LitStr> {
    equals(input, span, &format!("`{option} = \"...\"`"))?;
    let lit: Lit = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{option}` expects a string literal, e.g. {option} = \"...\""),
        )
    })?;
    match lit {
        Lit::Str(s) if !s.value().is_empty() => Ok(s),
        Lit::Str(s) => Err(syn::Error::new(
            s.span(),
            format!("`{option}` must not be empty"),
        )),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{option}` expects a string literal, e.g. {option} = \"...\""),
        )),
    }
}

fn sample_value(input: ParseStream<'_>, span: Span) -> syn::Result<f64> {
    equals(input, span, "`sample = 0.1` (a number from 0.0 to 1.0)")?;
    let lit: Lit = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "`sample` expects a number from 0.0 to 1.0, e.g. sample = 0.1",
        )
    })?;
    let (value, span) = match &lit {
        Lit::Float(f) => (f.base10_parse::<f64>()?, f.span()),
        Lit::Int(i) => (i.base10_parse::<f64>()?, i.span()),
        other => {
            return Err(syn::Error::new(
                other.span(),
                "`sample` expects a number from 0.0 to 1.0, e.g. sample = 0.1",
            ))
        }
    };
    if !(0.0..=1.0).contains(&value) {
        return Err(syn::Error::new(
            span,
            format!("`sample` is the share of spans kept: expected 0.0 to 1.0, got {value}"),
        ));
    }
    Ok(value)
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::name) {
                let token: kw::name = input.parse()?;
                options.first("name", token.span)?;
                options.name = Some(string_value(input, "name", token.span)?);
            } else if lookahead.peek(kw::group) {
                let token: kw::group = input.parse()?;
                options.first("group", token.span)?;
                options.group = Some(string_value(input, "group", token.span)?);
            } else if lookahead.peek(kw::args) {
                let token: kw::args = input.parse()?;
                options.first("args", token.span)?;
                options.args = Some(token.span);
            } else if lookahead.peek(kw::skip) {
                let token: kw::skip = input.parse()?;
                options.first("skip", token.span)?;
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                for (i, name) in names.iter().enumerate() {
                    if names.iter().take(i).any(|n| n == name) {
                        return Err(syn::Error::new(
                            name.span(),
                            format!("`{name}` is skipped twice"),
                        ));
                    }
                }
                options.skip = names.into_iter().collect();
            } else if lookahead.peek(kw::ret) {
                let token: kw::ret = input.parse()?;
                options.first("ret", token.span)?;
                options.ret = Some(token.span);
            } else if lookahead.peek(kw::fields) {
                let token: kw::fields = input.parse()?;
                options.first("fields", token.span)?;
                let content;
                syn::parenthesized!(content in input);
                let fields = Punctuated::<Field, Token![,]>::parse_terminated(&content)?;
                for (i, field) in fields.iter().enumerate() {
                    if fields.iter().take(i).any(|f| f.key == field.key) {
                        return Err(syn::Error::new(
                            field.key.span(),
                            format!("duplicate field `{}`", field.key),
                        ));
                    }
                }
                options.fields = fields.into_iter().collect();
            } else if lookahead.peek(kw::sample) {
                let token: kw::sample = input.parse()?;
                options.first("sample", token.span)?;
                options.sample = Some(sample_value(input, token.span)?);
            } else if lookahead.peek(kw::stream) || lookahead.peek(kw::iter) {
                let (sequence, span) = if input.peek(kw::stream) {
                    (Sequence::Stream, input.parse::<kw::stream>()?.span)
                } else {
                    (Sequence::Iter, input.parse::<kw::iter>()?.span)
                };
                if let Some((first, _)) = options.sequence {
                    return Err(syn::Error::new(
                        span,
                        if first == sequence {
                            format!("duplicate `{}` option", sequence.option())
                        } else {
                            "`stream` and `iter` exclude each other: a function returns one or the other".to_owned()
                        },
                    ));
                }
                options.sequence = Some((sequence, span));
            } else if lookahead.peek(kw::item_spans) {
                let token: kw::item_spans = input.parse()?;
                options.first("item_spans", token.span)?;
                options.item_spans = Some(token.span);
            } else if lookahead.peek(kw::parent) {
                let token: kw::parent = input.parse()?;
                options.first("parent", token.span)?;
                equals(
                    input,
                    token.span,
                    "`parent = expression` (a `TraceContext`, a `traceparent` text, or an `Option` of one)",
                )?;
                options.parent = Some(input.parse()?);
            } else if lookahead.peek(Token![crate]) {
                let token: Token![crate] = input.parse()?;
                options.first("crate", token.span)?;
                equals(input, token.span, "`crate = path::to::monitor_runtime`")?;
                options.krate = Some(input.parse()?);
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(options)
    }
}
