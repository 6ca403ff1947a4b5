//! `#[derive(Params)]` for the `ocf` crate.
//!
//! Each named field is one OCF parameter. Its doc comment is the longdesc;
//! `#[param(...)]` adds `short = "..."` (required), `default = "..."`,
//! `unique`, `unique_group = "..."`, `reloadable`, `deprecated = "..."`,
//! `replaced_with = "..."` and `name = "..."` (when the OCF name is not a
//! valid Rust identifier). A field of type `Option<T>` is optional; a field
//! with a default is optional and falls back to it; any other field is
//! required.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::{
    parse_macro_input, spanned::Spanned, Data, DeriveInput, Error, Expr, ExprLit, Fields,
    GenericArgument, Lit, LitStr, Meta, PathArguments, Type,
};

/// Derives `ocf::Params` for a struct with named fields.
#[proc_macro_derive(Params, attributes(param))]
pub fn derive_params(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct FieldAttrs {
    name: Option<LitStr>,
    short: Option<LitStr>,
    default: Option<LitStr>,
    unique_group: Option<LitStr>,
    reloadable: bool,
    deprecated: Option<LitStr>,
    replaced_with: Option<LitStr>,
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let ident = &input.ident;
    let Data::Struct(data) = &input.data else {
        return Err(Error::new(
            input.span(),
            "Params can only be derived for structs",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(Error::new(input.span(), "Params needs named fields"));
    };

    let mut specs = Vec::new();
    let mut readers = Vec::new();
    for (index, field) in fields.named.iter().enumerate() {
        let field_ident = field
            .ident
            .as_ref()
            .ok_or_else(|| Error::new(field.span(), "unnamed field"))?;
        let attrs = field_attrs(field)?;
        let name = attrs.name.clone().unwrap_or_else(|| {
            let raw = field_ident.to_string();
            LitStr::new(raw.trim_start_matches("r#"), field_ident.span())
        });
        let short = attrs.short.clone().ok_or_else(|| {
            Error::new(
                field.span(),
                "every parameter needs #[param(short = \"...\")]",
            )
        })?;
        let longdesc = doc_text(field);
        if longdesc.is_empty() {
            return Err(Error::new(
                field.span(),
                "every parameter needs a doc comment (its longdesc)",
            ));
        }
        let longdesc = LitStr::new(&longdesc, Span::call_site());

        let (value_ty, optional) = match option_inner(&field.ty) {
            Some(inner) => (inner, true),
            None => (&field.ty, false),
        };
        if optional && attrs.default.is_some() {
            return Err(Error::new(
                field.span(),
                "an Option<T> parameter has no default; drop Option or the default",
            ));
        }
        let required = !optional && attrs.default.is_none();
        let default = match &attrs.default {
            Some(d) => quote!(Some(#d)),
            None => quote!(None),
        };
        let unique_group = match &attrs.unique_group {
            Some(g) => quote!(Some(#g)),
            None => quote!(None),
        };
        let reloadable = attrs.reloadable;
        let deprecated = match (&attrs.deprecated, &attrs.replaced_with) {
            (Some(note), Some(with)) => quote!(Some(::ocf::Deprecated {
                note: #note,
                replaced_with: Some(#with),
            })),
            (Some(note), None) => quote!(Some(::ocf::Deprecated {
                note: #note,
                replaced_with: None,
            })),
            (None, Some(w)) => {
                return Err(Error::new(
                    w.span(),
                    "replaced_with needs deprecated = \"...\"",
                ))
            }
            (None, None) => quote!(None),
        };

        specs.push(quote! {
            ::ocf::ParamSpec {
                name: #name,
                shortdesc: #short,
                longdesc: #longdesc,
                content: <#value_ty as ::ocf::ParamValue>::CONTENT,
                choices: <#value_ty as ::ocf::ParamValue>::CHOICES,
                default: #default,
                required: #required,
                unique_group: #unique_group,
                reloadable: #reloadable,
                deprecated: #deprecated,
                placeholder: <#value_ty as ::ocf::ParamValue>::PLACEHOLDER,
            }
        });
        let reader = if optional {
            quote!(::ocf::param::optional::<#value_ty>)
        } else if required {
            quote!(::ocf::param::required::<#value_ty>)
        } else {
            quote!(::ocf::param::defaulted::<#value_ty>)
        };
        readers.push(quote! {
            #field_ident: #reader(src, &<Self as ::ocf::Params>::SPECS[#index])?
        });
    }

    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::ocf::Params for #ident #ty_generics #where_clause {
            const SPECS: &'static [::ocf::ParamSpec] = &[#(#specs),*];

            fn from_source(src: &dyn ::ocf::Source) -> ::ocf::Result<Self> {
                Ok(Self { #(#readers),* })
            }
        }
    })
}

fn field_attrs(field: &syn::Field) -> syn::Result<FieldAttrs> {
    let mut out = FieldAttrs::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("param")) {
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            match key.as_str() {
                "unique" => {
                    let name = field
                        .ident
                        .as_ref()
                        .map(|i| i.to_string())
                        .unwrap_or_default();
                    out.unique_group = Some(LitStr::new(&name, meta.path.span()));
                }
                "reloadable" => out.reloadable = true,
                "name" => out.name = Some(meta.value()?.parse()?),
                "short" => out.short = Some(meta.value()?.parse()?),
                "default" => out.default = Some(meta.value()?.parse()?),
                "unique_group" => out.unique_group = Some(meta.value()?.parse()?),
                "deprecated" => out.deprecated = Some(meta.value()?.parse()?),
                "replaced_with" => out.replaced_with = Some(meta.value()?.parse()?),
                _ => return Err(meta.error(format!("unknown #[param] key '{key}'"))),
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// The doc comment, with the one leading space rustdoc adds removed and
/// paragraphs kept.
fn doc_text(field: &syn::Field) -> String {
    let lines: Vec<String> = field
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_owned())
        .collect();
    lines.join("\n").trim().to_owned()
}

fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}
