//! [`Subscription`]: the stream a `#[subscribe]` method returns.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, Stream, StreamExt};
use serde::Serialize;
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
    /// A real client's: its items, or the error that ends it.
    Local(BoxStream<'static, Result<T, Error>>),
    /// A real client's whose subscribe has not returned yet.
    Starting(BoxFuture<'static, Result<Subscription<T>, Error>>),
    Remote {
        mailbox: Arc<Mailbox>,
        codec: Codec,
        /// Unsubscribes when dropped.
        _unsubscribe: Unsubscribe,
        /// Set when an item failed to decode.
        failure: Option<Error>,
        _item: PhantomData<fn() -> T>,
    },
    /// Over: cleanly (`None`) or with an error.
    Ended(Option<Error>),
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

impl<T: 'static> Subscription<T> {
    /// Wraps any stream, as a real client's `#[subscribe]` method does.
    pub fn from_stream(stream: impl Stream<Item = T> + Send + 'static) -> Self {
        Subscription {
            inner: Inner::Local(stream.map(Ok).boxed()),
        }
    }

    /// Wraps a stream of results: its items until the first `Err`, which ends the subscription
    /// with that error as its reason. Every subscriber reads it as the method's own error type
    /// ([`error`](Self::error)); with `#[subscribe(resubscribe)]` the leader subscribes again
    /// instead.
    ///
    /// ```
    /// use cluster_client::Subscription;
    /// use futures::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let items = futures::stream::iter([Ok(1), Err("connection reset".to_owned())]);
    /// let mut numbers = Subscription::from_try_stream(items);
    /// assert_eq!(numbers.next().await, Some(1));
    /// assert_eq!(numbers.next().await, None);
    /// let reason = numbers.close_reason();
    /// assert!(matches!(reason, Some(cluster_client::Error::Upstream { message, .. }) if message == "connection reset"));
    /// # }
    /// ```
    pub fn from_try_stream<E>(stream: impl Stream<Item = Result<T, E>> + Send + 'static) -> Self
    where
        E: Serialize + fmt::Display + Send + Sync + 'static,
    {
        Subscription {
            inner: Inner::Local(stream.map(|item| item.map_err(Error::upstream)).boxed()),
        }
    }

    /// A subscription that is live once `subscribe` resolves: for a real client whose subscribe
    /// awaits its upstream (an `async fn` method may instead return
    /// `Result<Subscription<T>, E>` itself). Its `Err` fails the subscription, and reaches every
    /// subscriber as the method's own error.
    pub fn from_future<F, E>(subscribe: F) -> Self
    where
        F: Future<Output = Result<Subscription<T>, E>> + Send + 'static,
        E: Serialize + fmt::Display + Send + Sync + 'static,
    {
        Subscription {
            inner: Inner::Starting(
                subscribe
                    .map(|result| result.map_err(Error::upstream))
                    .boxed(),
            ),
        }
    }
}

impl<T> Subscription<T> {
    /// A subscription that has already ended with `error`.
    pub fn failed(error: Error) -> Self {
        Subscription {
            inner: Inner::Ended(Some(error)),
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
            Inner::Local(_) | Inner::Starting(_) => None,
            Inner::Remote {
                mailbox, failure, ..
            } => failure.clone().or_else(|| mailbox.close_reason()),
            Inner::Ended(reason) => reason.clone(),
        }
    }

    /// Why the stream ended, as the method's own error type `E`: the real client's own error
    /// (see [`Error::Upstream`]), or any other failure through `E::from`. `None` while it runs or
    /// after a clean end.
    pub fn error<E: DeserializeOwned + From<Error>>(&self) -> Option<E> {
        self.close_reason().map(Error::into_method_error)
    }

    /// Resolves once the subscription is live upstream: the leader's real client has subscribed
    /// (at once if it already had, for another subscriber), so no item published from now on is
    /// missed. `Err` when it failed or ended first: with the real client's own error
    /// ([`Error::Upstream`]) when its subscribe failed.
    ///
    /// Under a leader of the Node package, which does not say, it resolves once the subscription
    /// is sent to it.
    pub async fn ready(&mut self) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        futures::ready!(self.poll_started(cx));
        match &self.inner {
            Inner::Local(_) | Inner::Ended(None) => Poll::Ready(Ok(())),
            Inner::Ended(Some(error))
            | Inner::Remote {
                failure: Some(error),
                ..
            } => Poll::Ready(Err(error.clone())),
            Inner::Remote { mailbox, .. } => mailbox.poll_live(cx),
            Inner::Starting(_) => unreachable!("poll_started resolved it"),
        }
    }

    /// Drives a real client's subscribe that has not returned yet (from `from_future`, possibly
    /// nested) until it has: `Ready` once the subscription is anything but `Starting`.
    fn poll_started(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Inner::Starting(subscribe) = &mut self.inner {
            self.inner = match futures::ready!(subscribe.poll_unpin(cx)) {
                Ok(started) => started.inner,
                Err(error) => Inner::Ended(Some(error)),
            };
        }
        Poll::Ready(())
    }
}

impl<T: DeserializeOwned + Send + 'static> Subscription<T> {
    /// Waits for the real client's subscribe to return, then gives its items and the error that
    /// ends them: what the leader pumps to the subscribers.
    pub(crate) async fn started(mut self) -> Result<BoxStream<'static, Result<T, Error>>, Error> {
        std::future::poll_fn(|cx| self.poll_started(cx)).await;
        match self.inner {
            Inner::Local(items) => Ok(items),
            Inner::Ended(Some(error)) => Err(error),
            Inner::Ended(None) => Ok(futures::stream::empty().boxed()),
            Inner::Remote { .. } => {
                // A cluster subscription used as a real client's: its items, then its end.
                let items = futures::stream::unfold(Some(self), |sub| async move {
                    let mut sub = sub?;
                    match sub.next().await {
                        Some(item) => Some((Ok(item), Some(sub))),
                        None => sub.close_reason().map(|error| (Err(error), None)),
                    }
                });
                Ok(items.boxed())
            }
            Inner::Starting(_) => unreachable!("poll_started resolved it"),
        }
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // No field is structurally pinned: the local stream and future are boxed.
        let this = self.get_mut();
        futures::ready!(this.poll_started(cx));
        match &mut this.inner {
            Inner::Local(stream) => match futures::ready!(stream.poll_next_unpin(cx)) {
                Some(Ok(item)) => Poll::Ready(Some(item)),
                end => {
                    this.inner = Inner::Ended(end.and_then(Result::err));
                    Poll::Ready(None)
                }
            },
            Inner::Ended(_) => Poll::Ready(None),
            Inner::Starting(_) => unreachable!("poll_started resolved it"),
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
            Inner::Starting(_) => "starting",
            Inner::Remote { .. } => "cluster",
            Inner::Ended(_) => "ended",
        };
        f.debug_struct("Subscription")
            .field("kind", &kind)
            .field("close_reason", &self.close_reason())
            .finish()
    }
}
