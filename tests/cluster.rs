//! End-to-end scenarios in real processes, each run three times, as three tests:
//! `generated::<scenario>` through the code `#[cluster_client]` generates, `manual::<scenario>`
//! through the hand-written service seam (no macro), both over loopback TCP, and
//! `unix::<scenario>` through the generated code over the Unix-socket transport. The scenarios are
//! in `tests/support/scenarios.rs`.

mod support;

/// One module of tests, `$module`, that runs every scenario through one seam of `cc-worker` over
/// one transport.
macro_rules! via {
    ($(#[$doc:meta])* $module:ident = $seam:literal over $transport:literal: $($name:ident),*) => {
        $(#[$doc])*
        mod $module {
            use crate::support::Via;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let via = Via { seam: $seam, transport: $transport };
                    crate::support::scenarios::$name(via).await;
                }
            )*
        }
    };
}

/// Every scenario, through both seams over TCP, and through the generated code over a Unix socket.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        via!(
            /// Through the code `#[cluster_client]` generates.
            generated = "generated" over "tcp": $($name),*
        );
        via!(
            /// Through the hand-written service seam (no macro).
            manual = "manual" over "tcp": $($name),*
        );
        via!(
            /// Through the code `#[cluster_client]` generates, over the Unix-socket transport.
            unix = "generated" over "unix": $($name),*
        );
    };
}

scenarios!(
    leader_and_three_followers,
    late_subscriber_gets_the_cached_item,
    unsubscribe_ends_the_upstream_watch,
    leader_killed_while_followers_call_and_subscribe,
    two_channels_share_one_port,
    leader_only_with_the_port_taken,
    follower_only_with_no_leader,
    single_mode,
    work_goes_to_one_subscriber,
);
