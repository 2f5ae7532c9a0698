//! The `Registry` trait wired to the runtime by hand, without `#[cluster_client]`: a hand-written
//! implementation of the service seam (leader side) and of the calls through a [`Handle`]
//! (follower side). The end-to-end tests run every scenario through this and through the generated
//! code.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cluster_client::protocol::FaultCode;
use cluster_client::service::{
    BoxFuture, ItemStream, MethodKind, MethodSpec, Prepared, Reply, Schema, Service, ServiceError,
};
use cluster_client::transcode::Transcode;
use cluster_client::{Error, Handle, Options, Subscription};
use cluster_client_registry_fixture::{Endpoint, RegistryError};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::registry_service::{Registration, Registry, UpstreamRegistry};

/// The methods, written out by hand; each call passes its own to the handle.
const LOOKUP: MethodSpec = MethodSpec::new("lookup", MethodKind::Invoke);
const ECHO: MethodSpec = MethodSpec {
    idempotent: true,
    ..MethodSpec::new("echo", MethodKind::Invoke)
};
const PAUSE: MethodSpec = MethodSpec {
    timeout_ms: Some(1000),
    ..MethodSpec::new("pause", MethodKind::Invoke)
};
const REPORT: MethodSpec = MethodSpec::new("report", MethodKind::Oneway);
const WATCH: MethodSpec = MethodSpec::new("watch", MethodKind::Subscribe);
const JOBS: MethodSpec = MethodSpec {
    broadcast: false,
    ..MethodSpec::new("jobs", MethodKind::Subscribe)
};
const REGISTER: MethodSpec = MethodSpec::new("register", MethodKind::Publish);
const CLOSE: MethodSpec = MethodSpec::new("close", MethodKind::Close);

/// The schema, written out by hand.
pub static SCHEMA: Schema = Schema {
    name: "registry",
    fingerprint: 0x6d61_6e75_616c_0002,
    methods: &[LOOKUP, ECHO, PAUSE, REPORT, WATCH, JOBS, REGISTER, CLOSE],
};

/// The leader side: the real client behind a hand-written dispatch.
pub struct ManualServe(pub UpstreamRegistry);

/// Decodes the `N`th framed argument.
fn arg<T: DeserializeOwned>(
    codec: cluster_client::Codec,
    method: &'static str,
    args: &mut cluster_client::protocol::args::Args,
) -> Result<T, ServiceError> {
    let bad = |reason: String| ServiceError::BadArguments { method, reason };
    let bytes = args.next_arg().map_err(|e| bad(e.to_string()))?;
    codec.decode(&bytes).map_err(|e| bad(e.to_string()))
}

/// Encodes a method's `Result` as its reply.
fn reply<T: Serialize, E: Serialize>(
    codec: cluster_client::Codec,
    method: &'static str,
    result: Result<T, E>,
) -> Result<Reply, ServiceError> {
    let mut out = BytesMut::new();
    let encoded = match &result {
        Ok(value) => codec.encode(value, &mut out),
        Err(error) => codec.encode(error, &mut out),
    };
    encoded.map_err(|source| ServiceError::Encode { method, source })?;
    Ok(match result {
        Ok(_) => Reply::Value(out.freeze()),
        Err(_) => Reply::Error(out.freeze()),
    })
}

impl Service for ManualServe {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn call(
        self: Arc<Self>,
        codec: cluster_client::Codec,
        method: &str,
        mut args: cluster_client::protocol::args::Args,
    ) -> BoxFuture<Result<Reply, ServiceError>> {
        let method: &'static str = match SCHEMA.method(method) {
            Some(spec) => spec.name,
            None => {
                let err = ServiceError::unknown(method, MethodKind::Invoke);
                return Box::pin(std::future::ready(Err(err)));
            }
        };
        Box::pin(async move {
            match method {
                "lookup" => {
                    let service: String = arg(codec, method, &mut args)?;
                    reply(codec, method, self.0.lookup(service).await)
                }
                "echo" => {
                    let payload: String = arg(codec, method, &mut args)?;
                    reply(codec, method, self.0.echo(payload).await)
                }
                "pause" => {
                    let ms: u64 = arg(codec, method, &mut args)?;
                    reply(codec, method, self.0.pause(ms).await)
                }
                "report" => {
                    let note: String = arg(codec, method, &mut args)?;
                    self.0.report(note).await;
                    Ok(Reply::Value(Bytes::new()))
                }
                "register" => {
                    let registration: Registration = arg(codec, method, &mut args)?;
                    self.0.register(registration).await;
                    Ok(Reply::Value(Bytes::new()))
                }
                other => Err(ServiceError::unknown(other, MethodKind::Invoke)),
            }
        })
    }

    fn subscribe(
        self: Arc<Self>,
        codec: cluster_client::Codec,
        method: &str,
        app: Bytes,
    ) -> Result<Prepared, ServiceError> {
        let Some(spec) = SCHEMA
            .method(method)
            .filter(|s| s.kind == MethodKind::Subscribe)
        else {
            return Err(ServiceError::unknown(method, MethodKind::Subscribe));
        };
        let mut args = cluster_client::protocol::args::Args::new(app, 1);
        let service: String = arg(codec, spec.name, &mut args)?;
        // The topic's key comes from the decoded argument, as generated code derives it.
        let reg = serde_json::to_string(&service).map_err(|err| ServiceError::BadArguments {
            method: spec.name,
            reason: err.to_string(),
        })?;
        let start = move || -> BoxFuture<Result<ItemStream, cluster_client::Error>> {
            let stream = match spec.name {
                "jobs" => self.0.jobs(service.clone()),
                _ => self.0.watch(service.clone()),
            };
            let items: ItemStream = Box::pin(encoded_items(codec, stream).map(Ok));
            Box::pin(std::future::ready(Ok(items)))
        };
        Ok(Prepared {
            key: cluster_client::protocol::subscription_key(&reg),
            start: Arc::new(start),
        })
    }

    fn close(self: Arc<Self>) -> BoxFuture<()> {
        Box::pin(async move { self.0.close().await })
    }
}

/// The items of a real client's subscription, encoded (an item that does not encode is skipped).
fn encoded_items(
    codec: cluster_client::Codec,
    stream: Subscription<Vec<Endpoint>>,
) -> impl futures::Stream<Item = Bytes> + Send + 'static {
    stream.filter_map(move |endpoints| {
        let mut out = BytesMut::new();
        std::future::ready(
            codec
                .encode(&endpoints, &mut out)
                .ok()
                .map(|()| out.freeze()),
        )
    })
}

/// The follower side: each method encodes its arguments and calls the handle.
#[derive(Clone, Debug)]
pub struct ManualRegistry {
    handle: Handle,
}

impl ManualRegistry {
    /// Joins the channel; `upstream` is the registry's address, used if this process leads.
    pub async fn create(options: Options, upstream: String) -> Result<Self, Error> {
        let factory: cluster_client::Factory = Arc::new(move |_term| {
            let upstream = upstream.clone();
            Box::pin(async move {
                UpstreamRegistry::connect(&upstream)
                    .await
                    .map(|real| Arc::new(ManualServe(real)) as Arc<dyn Service>)
                    .map_err(|e| e.to_string())
            })
        });
        Ok(ManualRegistry {
            handle: Handle::create(options, &SCHEMA, factory).await?,
        })
    }

    /// The handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    fn encode(&self, args: &[&dyn erased::Arg]) -> Result<Bytes, Error> {
        let mut out = BytesMut::new();
        for value in args {
            value.push(self.handle.codec(), &mut out)?;
        }
        Ok(out.freeze())
    }

    async fn invoke<T: DeserializeOwned>(
        &self,
        method: &'static MethodSpec,
        args: &[&dyn erased::Arg],
    ) -> Result<T, RegistryError> {
        let codec = self.handle.codec();
        let app = self.encode(args)?;
        match self.handle.call(method, args.len() as u32, app).await? {
            Reply::Value(bytes) => Ok(codec.decode(&bytes).map_err(Error::from)?),
            Reply::Error(bytes) => Err(codec.decode(&bytes).map_err(Error::from)?),
        }
    }
}

/// Framed arguments of mixed types, without generics per call site.
mod erased {
    use bytes::BytesMut;
    use cluster_client::Codec;
    use cluster_client::protocol::args::push_arg_with;
    use cluster_client::transcode::{CodecError, Transcode};
    use serde::Serialize;

    /// One argument.
    pub trait Arg: Sync {
        /// Appends it, framed.
        fn push(&self, codec: Codec, out: &mut BytesMut) -> Result<(), CodecError>;
    }

    impl<T: Serialize + Sync> Arg for T {
        fn push(&self, codec: Codec, out: &mut BytesMut) -> Result<(), CodecError> {
            push_arg_with(out, |out| codec.encode(self, out))
        }
    }
}

impl Registry for ManualRegistry {
    async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, RegistryError> {
        self.invoke(&LOOKUP, &[&service]).await
    }

    async fn echo(&self, payload: String) -> Result<String, RegistryError> {
        self.invoke(&ECHO, &[&payload]).await
    }

    async fn pause(&self, ms: u64) -> Result<u64, RegistryError> {
        self.invoke(&PAUSE, &[&ms]).await
    }

    async fn report(&self, note: String) {
        let result = match self.encode(&[&note]) {
            Ok(app) => self.handle.call(&REPORT, 1, app).await.map(drop),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "report failed");
        }
    }

    fn watch(&self, service: String) -> Subscription<Vec<Endpoint>> {
        self.subscribe(&WATCH, &service)
    }

    fn jobs(&self, queue: String) -> Subscription<Vec<Endpoint>> {
        self.subscribe(&JOBS, &queue)
    }

    async fn register(&self, registration: Registration) {
        let key = serde_json::to_string(&registration).unwrap_or_default();
        let result = match self.encode(&[&registration]) {
            Ok(app) => self.handle.publish(&REGISTER, key, 1, app).await,
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "register failed");
        }
    }

    async fn close(&self) {
        self.handle.close().await;
    }
}

impl ManualRegistry {
    fn subscribe(&self, method: &'static MethodSpec, service: &str) -> Subscription<Vec<Endpoint>> {
        match (self.encode(&[&service]), serde_json::to_string(service)) {
            (Ok(app), Ok(reg)) => self.handle.subscribe(method, reg, app),
            (Err(err), _) => Subscription::failed(err),
            (_, Err(err)) => Subscription::failed(Error::Remote {
                name: FaultCode::BadArguments,
                message: err.to_string(),
            }),
        }
    }
}
