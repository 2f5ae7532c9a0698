//! The client seam: the code `#[cluster_client]` generates, or the hand-written one, so that every
//! scenario runs through both.

use cluster_client::stats::Stats;
use cluster_client::{Options, Roles};
use cluster_client_workspace::manual_seam::ManualRegistry;
use cluster_client_workspace::registry_service::{RegistryClient, UpstreamRegistry};

/// Either client.
#[derive(Clone)]
pub enum Client {
    Generated(RegistryClient),
    Manual(ManualRegistry),
}

/// Evaluates `$body` with `$c` bound to the client inside, whichever seam it is.
macro_rules! with_client {
    ($client:expr, $c:ident => $body:expr) => {
        match $client {
            $crate::client::Client::Generated($c) => $body,
            $crate::client::Client::Manual($c) => $body,
        }
    };
}
pub(crate) use with_client;

impl Client {
    /// Joins the channel of `options` through `seam` (`manual`; `resigning`, the generated client
    /// whose real client resigns when its upstream is lost; or else the generated client);
    /// `upstream` is the registry's address, used if this process leads.
    pub async fn create(
        seam: &str,
        options: Options,
        upstream: String,
    ) -> Result<Client, cluster_client::Error> {
        if seam == "manual" {
            return ManualRegistry::create(options, upstream)
                .await
                .map(Client::Manual);
        }
        if seam == "resigning" {
            // The generated client, whose real client resigns when its upstream is lost.
            return RegistryClient::create_with(options, move |term| {
                let upstream = upstream.clone();
                async move { UpstreamRegistry::connect_resigning(&upstream, term).await }
            })
            .await
            .map(Client::Generated);
        }
        RegistryClient::create(options, move || {
            let upstream = upstream.clone();
            async move { UpstreamRegistry::connect(&upstream).await }
        })
        .await
        .map(Client::Generated)
    }

    pub fn is_leader(&self) -> bool {
        match self {
            Client::Generated(c) => c.is_leader(),
            Client::Manual(c) => c.handle().is_leader(),
        }
    }

    pub fn epoch(&self) -> u64 {
        match self {
            Client::Generated(c) => c.epoch(),
            Client::Manual(c) => c.handle().epoch(),
        }
    }

    pub fn roles(&self) -> Roles {
        match self {
            Client::Generated(c) => c.roles(),
            Client::Manual(c) => c.handle().roles(),
        }
    }

    pub async fn stats(&self) -> Result<Stats, cluster_client::Error> {
        match self {
            Client::Generated(c) => c.stats().await,
            Client::Manual(c) => c.handle().stats().await,
        }
    }
}
