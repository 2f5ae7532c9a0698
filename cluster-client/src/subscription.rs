//! [`Subscription`]: the stream a `#[subscribe]` method returns.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::mailbox::Mailbox;
use crate::transcode::{Codec, Transcode};

/// A stream of items from a subscription.
///
/// On a cluster handle, items come from the leader's one upstream subscription for this argument; the
/// stream goes on across failovers (it may see the current value again, never a stop). Dropping it
/// unsubscribes; when the last subscriber of an argument is gone the leader drops the upstream
/// subscription. A slow consumer has a bounded buffer (`Options::subscription_buffer`) with the policy
/// `Options::slow_consumer`. When the stream ends, [`close_reason`](Self::close_reason) tells why.
///
/// A real client builds one from any stream:
///
/// ```
/// use cluster_client::Subscription;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut numbers = Subscription::from_stream(futures::stream::iter([1, 2, 3]));
/// assert_eq!(numbers.next().await, Some(1));
/// # }
/// ```
pub struct Subscription<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Local(BoxStream<'static, T>),
    Remote {
        mailbox: Arc<Mailbox>,
        codec: Codec,
        /// Unsubscribes when dropped.
        _unsubscribe: Unsubscribe,
        /// Set when an item failed to decode.
        failure: Option<Error>,
        _item: PhantomData<fn() -> T>,
    },
    Failed(Error),
}

/// The owner's unsubscribe hook, run when the [`Subscription`] holding it is dropped.
struct Unsubscribe(Option<Box<dyn FnOnce() + Send>>);

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(unsubscribe) = self.0.take() {
            unsubscribe();
        }
    }
}

impl<T> Subscription<T> {
    /// Wraps any stream, as a real client's `#[subscribe]` method does.
    pub fn from_stream(stream: impl Stream<Item = T> + Send + 'static) -> Self {
        Subscription {
            inner: Inner::Local(stream.boxed()),
        }
    }

    /// A subscription that has already ended with `error`.
    pub fn failed(error: Error) -> Self {
        Subscription {
            inner: Inner::Failed(error),
        }
    }

    /// A subscription of a cluster handle: its items arrive in `mailbox`, encoded with `codec`;
    /// `unsubscribe` runs once, when the subscription is dropped.
    pub(crate) fn remote(
        mailbox: Arc<Mailbox>,
        codec: Codec,
        unsubscribe: impl FnOnce() + Send + 'static,
    ) -> Self {
        Subscription {
            inner: Inner::Remote {
                mailbox,
                codec,
                _unsubscribe: Unsubscribe(Some(Box::new(unsubscribe))),
                failure: None,
                _item: PhantomData,
            },
        }
    }

    /// Why the stream ended, once it has; `None` while it runs or after a clean end.
    pub fn close_reason(&self) -> Option<Error> {
        match &self.inner {
            Inner::Local(_) => None,
            Inner::Remote {
                mailbox, failure, ..
            } => failure.clone().or_else(|| mailbox.close_reason()),
            Inner::Failed(error) => Some(error.clone()),
        }
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // No field is structurally pinned: the local stream is boxed.
        match &mut self.get_mut().inner {
            Inner::Local(stream) => stream.poll_next_unpin(cx),
            Inner::Failed(_) => Poll::Ready(None),
            Inner::Remote {
                mailbox,
                codec,
                failure,
                ..
            } => {
                if failure.is_some() {
                    return Poll::Ready(None);
                }
                match mailbox.poll_next(cx) {
                    Poll::Ready(Some(bytes)) => match codec.decode(&bytes) {
                        Ok(item) => Poll::Ready(Some(item)),
                        Err(err) => {
                            tracing::warn!(error = %err, "subscription item did not decode; ending the stream");
                            *failure = Some(err.into());
                            Poll::Ready(None)
                        }
                    },
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            Inner::Local(_) => "local",
            Inner::Remote { .. } => "cluster",
            Inner::Failed(_) => "failed",
        };
        f.debug_struct("Subscription")
            .field("kind", &kind)
            .field("close_reason", &self.close_reason())
            .finish()
    }
}
