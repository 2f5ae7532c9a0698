//! Unit tests of the expansion on `parse_quote!` input.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{ItemTrait, parse_quote};

use crate::attr::Kind;
use crate::expand::expand;
use crate::fingerprint;
use crate::model::{Model, Output};

mod rules;

fn registry() -> ItemTrait {
    parse_quote! {
        /// A service registry.
        pub trait Registry {
            /// Looks a service up.
            #[invoke]
            async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, RegistryError>;
            #[invoke(timeout_ms = 10_000)]
            async fn snapshot(&self) -> Result<Snapshot, RegistryError>;
            #[invoke(idempotent)]
            async fn get(&self, k: String) -> Result<u64, RegistryError>;
            async fn untagged(&self, a: u32, b: u32) -> Result<u32, RegistryError>;
            #[oneway]
            async fn report(&self, stats: Stats);
            #[subscribe]
            fn watch(&self, service: String) -> Subscription<Vec<Endpoint>>;
            #[subscribe(broadcast = false)]
            fn work(&self, queue: String) -> Subscription<Job>;
            #[publish]
            async fn register(&self, me: Endpoint);
            #[cfg(feature = "admin")]
            #[close]
            async fn close(&self);
        }
    }
}

fn model(args: TokenStream, item: &ItemTrait) -> syn::Result<Model> {
    Model::parse(args, item.to_token_stream())
}

/// Every message of the combined error.
pub(super) fn errors(args: TokenStream, item: ItemTrait) -> Vec<String> {
    match expand(args, item.into_token_stream()) {
        Ok(tokens) => panic!("expected errors, got {tokens}"),
        Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn model_of_the_example() {
    let model = model(TokenStream::new(), &registry()).expect("valid");
    assert_eq!(model.channel, "Registry");
    assert_eq!(
        model.krate.to_token_stream().to_string(),
        ":: cluster_client"
    );
    let summary: Vec<_> = model
        .methods
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.kind,
                m.timeout_ms,
                m.idempotent,
                m.broadcast,
                m.args.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("lookup", Kind::Invoke, None, false, true, 1),
            ("snapshot", Kind::Invoke, Some(10_000), false, true, 0),
            ("get", Kind::Invoke, None, true, true, 1),
            ("untagged", Kind::Invoke, None, false, true, 2),
            ("report", Kind::Oneway, None, false, true, 1),
            ("watch", Kind::Subscribe, None, false, true, 1),
            ("work", Kind::Subscribe, None, false, false, 1),
            ("register", Kind::Publish, None, false, true, 1),
            ("close", Kind::Close, None, false, true, 0),
        ]
    );
    let lookup = &model.methods[0];
    let Output::Result { ok, err, .. } = &lookup.output else {
        panic!("lookup returns a Result");
    };
    assert_eq!(quote!(#ok).to_string(), "Vec < Endpoint >");
    assert_eq!(quote!(#err).to_string(), "RegistryError");
    assert!(
        matches!(&model.methods[5].output, Output::Subscription { item, .. } if quote!(#item).to_string() == "Vec < Endpoint >")
    );
    assert!(matches!(model.methods[4].output, Output::Unit));
    // Docs are kept; the tag is not.
    assert_eq!(lookup.attrs.len(), 1);
    assert!(lookup.attrs[0].path().is_ident("doc"));
    assert_eq!(model.methods[8].cfgs().count(), 1);
}

#[test]
fn options_set_channel_and_crate() {
    let model = model(
        quote!(name = "chan", crate = "::renamed::inner"),
        &registry(),
    )
    .expect("valid");
    assert_eq!(model.channel, "chan");
    let tokens = expand(quote!(crate = "::renamed"), registry().into_token_stream())
        .expect("valid")
        .to_string();
    assert!(tokens.contains(":: renamed :: __private :: Service"));
    assert!(
        !tokens.contains("cluster_client"),
        "a path escaped the override: {tokens}"
    );
}

/// `rename_all` gives the wire names from the Rust names; a tag's `name` overrides it; the
/// generated client keeps the Rust names.
#[test]
fn wire_names_from_rename_all_and_name() {
    let item: ItemTrait = parse_quote! {
        pub trait Data {
            async fn get_data(&self, key: String) -> Result<String, DataError>;
            #[invoke(name = "fetchAll", timeout_ms = 500)]
            async fn fetch_everything(&self) -> Result<Vec<String>, DataError>;
            #[oneway(name = "log")]
            async fn write_log(&self, line: String);
            #[subscribe(name = "onChange", broadcast = false)]
            fn watch_key(&self, key: String) -> Subscription<String>;
            #[publish]
            async fn publish_me(&self, me: String);
        }
    };
    let model = model(quote!(rename_all = "camelCase"), &item).expect("valid");
    let names: Vec<_> = model.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["getData", "fetchAll", "log", "onChange", "publishMe"]
    );
    assert_eq!(model.methods[1].timeout_ms, Some(500));
    let tokens = expand(quote!(rename_all = "camelCase"), item.into_token_stream())
        .expect("valid")
        .to_string();
    assert!(tokens.contains("name : \"getData\""), "{tokens}");
    assert!(
        tokens.contains("fn get_data"),
        "the Rust name stays: {tokens}"
    );

    let twice: ItemTrait = parse_quote! {
        pub trait Twice {
            async fn get_data(&self) -> Result<u8, E>;
            #[invoke(name = "getData")]
            async fn other(&self) -> Result<u8, E>;
        }
    };
    let messages = errors(quote!(rename_all = "camelCase"), twice);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("duplicate method name `getData` on the wire")),
        "{messages:?}"
    );
    let bad = errors(quote!(rename_all = "camel"), registry());
    assert!(
        bad.iter()
            .any(|m| m.contains("unknown `rename_all` rule \"camel\"")),
        "{bad:?}"
    );
    let empty: ItemTrait = parse_quote! {
        pub trait Empty {
            #[invoke(name = "")]
            async fn a(&self) -> Result<u8, E>;
        }
    };
    let messages = errors(TokenStream::new(), empty);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("non-empty string literal")),
        "{messages:?}"
    );
}

#[test]
fn generates_every_item() {
    let tokens = expand(TokenStream::new(), registry().into_token_stream())
        .expect("valid")
        .to_string();
    for needle in [
        "pub trait Registry",
        "fn lookup (& self , service : String) -> impl :: core :: future :: Future < Output = Result < Vec < Endpoint > , RegistryError > > + :: core :: marker :: Send ;",
        "fn watch (& self , service : String) -> Subscription < Vec < Endpoint > > ;",
        "pub struct ServeRegistry < T > (",
        "impl < T > :: cluster_client :: __private :: Service for ServeRegistry < T >",
        "\"lookup\" => :: cluster_client :: __private :: Probe :: < (String ,) , Vec < Endpoint > , RegistryError > :: NEW . serve_invoke (codec , \"lookup\" , args , move | (service ,) | async move { < T as Registry > :: lookup (& self . 0 , service) . await })",
        "\"report\" => :: cluster_client :: __private :: Probe :: < (Stats ,) , () , () > :: NEW . serve_oneway",
        "\"register\" => :: cluster_client :: __private :: Probe :: < (Endpoint ,) , () , () > :: NEW . serve_oneway",
        "\"watch\" => :: cluster_client :: __private :: Probe :: < (String ,) , Vec < Endpoint > , () > :: NEW . serve_subscribe (codec , \"watch\" , app , move | (service ,) | < T as Registry > :: watch (& self . 0 , service))",
        "pub struct RegistryClient { handle : :: cluster_client :: __private :: Handle , }",
        ":: cluster_client :: __private :: Probe :: < (String ,) , Vec < Endpoint > , RegistryError > :: NEW . invoke (& self . handle , & Self :: SCHEMA . methods [0] , (service ,))",
        ":: cluster_client :: __private :: Probe :: < () , Snapshot , RegistryError > :: NEW . invoke (& self . handle , & Self :: SCHEMA . methods [1] , ())",
        ":: cluster_client :: __private :: Probe :: < (Stats ,) , () , () > :: NEW . oneway (& self . handle , & Self :: SCHEMA . methods [4] , (stats ,))",
        ":: cluster_client :: __private :: Probe :: < (String ,) , Vec < Endpoint > , () > :: NEW . subscribe (& self . handle , & Self :: SCHEMA . methods [5] , (service ,))",
        ":: cluster_client :: __private :: Probe :: < (Endpoint ,) , () , () > :: NEW . publish (& self . handle , & Self :: SCHEMA . methods [7] , (me ,))",
        ":: cluster_client :: __private :: close (& self . handle)",
        "pub const SCHEMA : & 'static :: cluster_client :: __private :: Schema",
        "name : \"Registry\"",
        "timeout_ms : :: core :: option :: Option :: Some (10000u32)",
        "kind : :: cluster_client :: __private :: MethodKind :: Subscribe",
        "pub async fn create < F , Fut , R , E >",
        "pub fn is_leader (& self) -> bool",
        "pub fn epoch (& self) -> u64",
        "pub async fn close (& self) { self . handle . close () . await }",
        ". map (| handle | RegistryClient { handle })",
        "impl Registry for RegistryClient",
        ":: cluster_client :: __private :: assert_wire :: < Vec < Endpoint > > ()",
        ":: cluster_client :: __private :: assert_error :: < RegistryError > ()",
    ] {
        assert!(tokens.contains(needle), "missing `{needle}` in\n{tokens}");
    }
    // Tags are stripped everywhere; the cfg of `close` is copied to the trait, the schema entry, the
    // client method, and the serve side's two `close` variants.
    for tag in [
        "# [invoke",
        "# [oneway",
        "# [subscribe",
        "# [publish",
        "# [close",
    ] {
        assert!(!tokens.contains(tag), "{tag} left in the expansion");
    }
    assert_eq!(tokens.matches("# [cfg (feature = \"admin\")]").count(), 3);
    // One client type: no proxy, no forwarding, no lookup by name.
    assert!(!tokens.contains("Proxy"), "{tokens}");
    assert!(!tokens.contains("\"lookup\" , (service ,)"), "{tokens}");
    assert!(tokens.contains("# [cfg (all (feature = \"admin\"))]"));
    assert!(tokens.contains("# [cfg (not (all (feature = \"admin\")))]"));
}

#[test]
fn client_methods_pass_their_schema_entry_counting_cfgd_methods_before_them() {
    let item: ItemTrait = parse_quote! {
        trait Feed {
            #[cfg(feature = "a")]
            async fn first(&self) -> Result<u32, E>;
            async fn second(&self) -> Result<u32, E>;
            #[cfg(all(unix, feature = "b"))]
            #[cfg(test)]
            #[subscribe]
            fn third(&self) -> Subscription<u32>;
            #[oneway]
            async fn fourth(&self, n: u32);
        }
    };
    let tokens = expand(TokenStream::new(), item.into_token_stream())
        .expect("valid")
        .to_string();
    let a = ":: core :: cfg ! (all (feature = \"a\")) as usize";
    let b = ":: core :: cfg ! (all (all (unix , feature = \"b\") , test)) as usize";
    for needle in [
        "invoke (& self . handle , & Self :: SCHEMA . methods [0] , ())".to_owned(),
        format!("invoke (& self . handle , & Self :: SCHEMA . methods [0 + {a}] , ())"),
        format!("subscribe (& self . handle , & Self :: SCHEMA . methods [1 + {a}] , ())"),
        format!("oneway (& self . handle , & Self :: SCHEMA . methods [1 + {a} + {b}] , (n ,))"),
    ] {
        assert!(tokens.contains(&needle), "missing `{needle}` in\n{tokens}");
    }
}

#[test]
fn empty_trait_has_no_matches() {
    let tokens = expand(
        TokenStream::new(),
        quote!(
            trait Empty {}
        ),
    )
    .expect("valid")
    .to_string();
    assert!(!tokens.contains("match"), "{tokens}");
    assert!(tokens.contains("fn call (self : :: std :: sync :: Arc < Self > , _ :"));
    assert!(tokens.contains("struct EmptyClient"));
}

#[test]
fn raw_names_and_a_trait_named_t() {
    let item: ItemTrait = parse_quote! {
        trait T {
            async fn r#type(&self) -> Result<(), E>;
        }
    };
    let tokens = expand(TokenStream::new(), item.into_token_stream())
        .expect("valid")
        .to_string();
    assert!(tokens.contains("\"type\" =>"));
    assert!(tokens.contains("struct ServeT < Real >"));
    assert!(tokens.contains("< Real as T > :: r#type"));
}

#[test]
fn fingerprint_follows_the_wire_only() {
    let base = model(TokenStream::new(), &registry()).expect("valid");
    let fp = fingerprint::fingerprint(&base);
    let same: ItemTrait = parse_quote! {
        pub trait Registry {
            async fn lookup(&self, other_name: String) -> Result<Vec<Endpoint>, RegistryError>;
        }
    };
    let spaced: ItemTrait = parse_quote! {
        pub trait Registry {
            /// Documented.
            async fn lookup(&self, s: String) -> Result<Vec< Endpoint >, RegistryError>;
        }
    };
    let changed_type: ItemTrait = parse_quote! {
        pub trait Registry {
            async fn lookup(&self, s: String) -> Result<Vec<Endpoint2>, RegistryError>;
        }
    };
    let changed_option: ItemTrait = parse_quote! {
        pub trait Registry {
            #[invoke(idempotent)]
            async fn lookup(&self, s: String) -> Result<Vec<Endpoint>, RegistryError>;
        }
    };
    let fp_of = |item: &ItemTrait| {
        fingerprint::fingerprint(&model(TokenStream::new(), item).expect("valid"))
    };
    assert_eq!(fp_of(&same), fp_of(&spaced));
    assert_ne!(fp_of(&same), fp_of(&changed_type));
    assert_ne!(fp_of(&same), fp_of(&changed_option));
    assert_ne!(fp_of(&same), fp);
    assert_eq!(
        fingerprint::canonical(&model(TokenStream::new(), &changed_option).expect("valid")),
        "cluster-client schema 1\nlookup invoke idempotent (String) -> Result<Vec < Endpoint2 >, RegistryError>\n"
            .replace("Endpoint2", "Endpoint")
    );
    // FNV-1a test vectors.
    assert_eq!(fingerprint::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fingerprint::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn fallback_strips_tags_and_keeps_the_trait() {
    let input = quote! {
        pub trait X {
            /// Kept.
            #[oneway]
            async fn m(&self, (a, b): (u8, u8), mut c: u8) -> u8;
        }
    };
    let error = expand(TokenStream::new(), input.clone()).expect_err("invalid");
    let tokens = crate::fallback::expand(input, error).to_string();
    assert!(tokens.starts_with("pub trait X"), "{tokens}");
    assert!(tokens.contains("# [doc = r\" Kept.\"]"), "{tokens}");
    assert!(!tokens.contains("oneway ]"), "{tokens}");
    assert!(
        tokens.contains("async fn m (& self , _ : (u8 , u8) , c : u8) -> u8 ;"),
        "{tokens}"
    );
    assert_eq!(tokens.matches("compile_error").count(), 2, "{tokens}");
}
