//! The [`#[cluster_client]`](macro@cluster_client) attribute, which turns a trait into a client
//! shared by the processes of one host. Its documentation lists what it generates and the rules it
//! enforces. Depend on the [`cluster-client`](https://docs.rs/cluster-client) crate rather than on
//! this one: it re-exports the attribute and holds the runtime the generated code calls into.

#![forbid(unsafe_code)]

mod attr;
mod errors;
mod expand;
mod fallback;
mod fingerprint;
mod model;
mod rename;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Shares a trait's real client among the processes of one host: the process elected leader owns
/// the real client, the others forward their calls to it over loopback.
///
/// Use it through the `cluster-client` crate, which re-exports it and holds the runtime that the
/// generated code calls into; every path in the expansion is absolute
/// (`::cluster_client::__private::…`, or under the `crate = ".."` override).
///
/// # What you write
///
/// ```text
/// use cluster_client::{cluster_client, Subscription};
///
/// #[cluster_client]                                // options: name = "channel", crate = "::path",
///                                                  //   rename_all = "camelCase"
/// pub trait Registry {
///     #[invoke]                                    // request/response; also every untagged async fn
///     async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, RegistryError>;
///     #[invoke(timeout_ms = 10_000, idempotent)]   // own deadline; retried once after a failover
///     async fn snapshot(&self) -> Result<Snapshot, RegistryError>;
///     #[oneway]                                    // fire and forget
///     async fn report(&self, stats: Stats);
///     #[subscribe]                                 // or #[subscribe(broadcast = false, resubscribe)]
///     fn watch(&self, service: String) -> Subscription<Vec<Endpoint>>;
///     #[publish]                                   // replayed after a failover
///     async fn register(&self, me: Endpoint);
///     #[close]                                     // called on the real client at shutdown
///     async fn close(&self);
/// }
/// ```
///
/// Trait options: `name = "channel"` sets the channel name (default: the trait's name);
/// `crate = "::path::to::cluster_client"` sets the runtime's path, as serde's `crate` does;
/// `rename_all = "camelCase"` (or `PascalCase`, `snake_case`, `SCREAMING_SNAKE_CASE`,
/// `kebab-case`, `lowercase`, `UPPERCASE`) gives the methods their names on the wire from their Rust
/// names. Every tag but `#[close]` also takes `name = "wireName"`, which wins over `rename_all`.
///
/// # What it generates
///
/// For a trait `Registry` (`vis` is the trait's visibility):
///
/// | item | what it is |
/// | --- | --- |
/// | `vis trait Registry` | the trait, re-emitted: each `async fn m(&self, ..) -> T` becomes `fn m(&self, ..) -> impl Future<Output = T> + Send`; tags stripped; docs, `#[cfg]`s and other attributes kept |
/// | `vis struct RegistryClient` | the handle users hold, `Clone` and `Debug`; implements `Registry`: each method is one call into the runtime with the method's `&'static MethodSpec`, taken from `SCHEMA` |
/// | `RegistryClient::SCHEMA` | `&'static Schema`: channel name, fingerprint, one `MethodSpec` per method |
/// | `RegistryClient::create(options, factory)` | runs the election; `factory` builds the real client wherever this process becomes leader |
/// | `RegistryClient::is_leader`, `epoch` | whether this process holds the real client now; the current leadership term (see below) |
/// | `RegistryClient::roles`, `stats` | this process's role changes (a `watch` receiver); the leader's snapshot of the channel |
/// | `RegistryClient::close` | `async fn close(&self)`, returning `()`: leaves the cluster (a leader closes its real client and hands over); later calls fail with `Error::Closed` |
/// | `vis struct ServeRegistry<T>(pub T)` | the leader-side dispatch: implements the runtime's `Service` for `T: Registry + Send + Sync + 'static` |
/// | `const _: () = { .. };` | compile-time serde assertions, spanned on each argument, result, error and item type |
///
/// The expanded shape, abridged (`P` is `::cluster_client::__private`):
///
/// ```text
/// pub trait Registry {
///     fn lookup(&self, service: String)
///         -> impl Future<Output = Result<Vec<Endpoint>, RegistryError>> + Send;
///     fn watch(&self, service: String) -> Subscription<Vec<Endpoint>>;
///     // ..
/// }
///
/// const _: () = { P::assert_wire::<String>(); P::assert_wire::<Vec<Endpoint>>();
///                 P::assert_error::<RegistryError>(); };
///
/// #[derive(Clone, Debug)]
/// pub struct RegistryClient { handle: P::Handle }
/// impl RegistryClient {
///     pub const SCHEMA: &'static P::Schema = &P::Schema {
///         name: "Registry",
///         fingerprint: …u64,
///         methods: &[P::MethodSpec { name: "lookup", kind: P::MethodKind::Invoke, .. }, ..],
///     };
///     pub async fn create<F, Fut, R, E>(options: Options, factory: F) -> Result<Self, Error>
///     where
///         F: Fn() -> Fut + Send + Sync + 'static,
///         Fut: Future<Output = Result<R, E>> + Send + 'static,
///         R: Registry + Send + Sync + 'static,
///         E: Display,
///     { .. }
///     pub fn is_leader(&self) -> bool { .. }
///     pub fn epoch(&self) -> u64 { .. }
///     pub fn roles(&self) -> Roles { .. }
///     pub async fn stats(&self) -> Result<Stats, Error> { .. }
///     pub async fn close(&self) { .. }
/// }
/// impl Registry for RegistryClient {
///     fn lookup(&self, service: String) -> impl Future<Output = ..> + Send {
///         P::invoke(&self.handle, /* &'static MethodSpec of `lookup`, from SCHEMA */, (service,))
///     }
///     fn watch(&self, service: String) -> Subscription<Vec<Endpoint>> {
///         P::subscribe(&self.handle, /* &'static MethodSpec of `watch`, from SCHEMA */, (service,))
///     }
///     // P::oneway and P::publish likewise; close() closes the handle
/// }
/// // (Each body above calls its helper through `P::Probe::<(Args..), T, E>::NEW`, a zero-sized
/// // value of the method's types, so that a type that cannot cross the wire is reported once, by the
/// // assertions on it, and not again in the bodies.)
///
/// pub struct ServeRegistry<T>(pub T);
/// impl<T: Registry + Send + Sync + 'static> P::Service for ServeRegistry<T> {
///     fn schema(&self) -> &'static P::Schema { RegistryClient::SCHEMA }
///     fn call(self: Arc<Self>, codec: P::Codec, method: &str, args: P::Args) -> P::BoxFuture<..> {
///         match method {
///             "lookup" => P::serve_invoke(codec, "lookup", args, move |(service,)| async move {
///                 <T as Registry>::lookup(&self.0, service).await
///             }),
///             "report" => P::serve_oneway(codec, "report", args, move |(stats,)| async move { .. }),
///             method => /* ServiceError::unknown(method, MethodKind::Invoke) */,
///         }
///     }
///     fn subscribe(self: Arc<Self>, codec: P::Codec, method: &str, app: Bytes) -> Result<..> {
///         match method {
///             "watch" => P::serve_subscribe(codec, "watch", app, move |(service,)| {
///                 <T as Registry>::watch(&self.0, service)
///             }),
///             method => /* ServiceError::unknown(method, MethodKind::Subscribe) */,
///         }
///     }
///     fn close(self: Arc<Self>) -> P::BoxFuture<()> { /* <T as Registry>::close(&self.0) */ }
/// }
/// ```
///
/// # Rules
///
/// Every rule is a compile error spanned on the offending tokens, saying what to write instead; all of
/// them are reported in one compile, with the trait (tags stripped) still emitted so no cascade follows.
///
/// - Every method takes `&self`; no generics, lifetimes, where clauses, default bodies, `const`,
///   `unsafe`, ABI; no associated types, consts or macros; no supertraits; no pattern arguments.
/// - Arguments, results and items are owned, concrete types (no `&T`, `impl Trait`, `dyn Trait`,
///   `Self`, non-`'static` lifetimes); at most 12 arguments.
/// - `#[invoke]` (and every untagged method, which must be `async`) is an `async fn` returning
///   `Result<T, E>`, with `E: From<cluster_client::Error>`; `timeout_ms` is an integer literal in
///   `1..=2_147_483_647`.
/// - `#[oneway]` and `#[publish]`: `async fn`, returning nothing.
/// - `#[subscribe]`: a plain `fn` returning `Subscription<T>`, or an `async fn` returning
///   `Result<Subscription<T>, E>` (`E` as an invoke's, and `Display`): on the handle it resolves
///   once the subscription is live upstream, or fails with the real client's `E`. `broadcast` is
///   `true` or `false`; `resubscribe` makes the leader subscribe upstream again, with backoff,
///   when the real client's stream ends with an error, keeping every subscriber's stream open.
/// - `#[close]`: `async fn`, `&self` only, returning nothing; at most one.
/// - One tag per method; unknown or repeated options are errors.
/// - A method may not be named `create`, `create_with`, `is_leader`, `epoch`, `roles` or `stats`, nor `close`
///   unless it is the `#[close]` method: the client has those of its own.
/// - Arguments, results and items are `Serialize + DeserializeOwned + Send + 'static`, errors
///   also `From<cluster_client::Error>` (an `async` subscribe's also `Display + Sync`): asserted,
///   so an unmet bound is one error, on your type, naming the fix (also for a type inside another,
///   `Vec<Endpoint>`, and for another crate's type, which it says to wrap in one of your own).
///
/// # The epoch
///
/// `epoch()` is the number of the leadership term this process is in: each process that becomes
/// leader numbers its term above every term it has seen and above the clock in milliseconds, and
/// there is one leader per term. A follower learns the term when it registers. So the epoch grows
/// at every failover and handover, and two processes reporting the same epoch have the same
/// leader. It is 0 before the first election ends, in single mode, and under a leader that does
/// not number its terms (the Node package's).
///
/// # The fingerprint
///
/// `SCHEMA.fingerprint` is a 64-bit FNV-1a, computed at macro time, of a canonical text of the
/// trait: each method's name, kind, options and the token text of its argument and result types.
/// Processes built from the same trait definition agree; a leader refuses a follower whose fingerprint
/// differs. A `#[cfg]`'d method counts whether or not it is compiled in.
#[proc_macro_attribute]
pub fn cluster_client(args: TokenStream, input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    expand::expand(args.into(), input.clone())
        .unwrap_or_else(|error| fallback::expand(input, error))
        .into()
}
