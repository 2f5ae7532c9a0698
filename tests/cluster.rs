//! End-to-end scenarios in real processes, each run twice, as two tests: `generated::<scenario>`
//! through the code `#[cluster_client]` generates, and `manual::<scenario>` through the
//! hand-written service seam (no macro). The scenarios are in `tests/support/scenarios.rs`.

mod support;

/// One module of tests, `$seam`, that runs every scenario through that seam of `cc-worker`.
macro_rules! seam {
    ($(#[$doc:meta])* $seam:ident: $($name:ident),*) => {
        $(#[$doc])*
        mod $seam {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::support::scenarios::$name(stringify!($seam)).await;
                }
            )*
        }
    };
}

/// Every scenario, through both seams.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        seam!(
            /// Through the code `#[cluster_client]` generates.
            generated: $($name),*
        );
        seam!(
            /// Through the hand-written service seam (no macro).
            manual: $($name),*
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
