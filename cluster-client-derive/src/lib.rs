//! The `#[cluster_client]` attribute. Use it through the `cluster-client` crate, which re-exports it.

use proc_macro::TokenStream;

/// Marks a trait whose calls are shared by the processes of one host.
#[proc_macro_attribute]
pub fn cluster_client(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}
