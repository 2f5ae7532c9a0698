//! End-to-end scenarios in real processes, through the hand-written service seam (no macro).

mod support;

use support::scenarios;

macro_rules! scenarios {
    ($seam:literal: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                scenarios::$name($seam).await;
            }
        )*
    };
}

scenarios!("manual":
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
