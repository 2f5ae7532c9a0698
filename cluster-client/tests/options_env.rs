//! The environment variables behind `Options::default()`. One test in its own binary: it sets
//! process-wide variables.

use std::time::Duration;

use cluster_client::{Codec, Options, Role, SlowConsumer};

#[test]
fn defaults_and_environment_overrides() {
    // SAFETY: this binary has this one test, so no other thread reads the environment meanwhile.
    unsafe {
        std::env::remove_var(cluster_client::PORT_ENV);
        std::env::remove_var(cluster_client::NODE_PORT_ENV);
        std::env::remove_var(cluster_client::SINGLE_MODE_ENV);
    }
    let options = Options::default();
    assert_eq!(options.port, 7777);
    assert!(!options.single_mode);
    assert_eq!(options.role, Role::Auto);
    assert_eq!(options.max_wait_time, Duration::from_secs(30));
    assert_eq!(options.connect_timeout, Duration::from_secs(10));
    assert_eq!(options.response_timeout, Duration::from_secs(3));
    assert_eq!(options.heartbeat_interval, Duration::from_secs(20));
    assert!(options.heartbeat_check);
    assert_eq!(options.subscribe_timeout, None);
    assert_eq!(options.codec, Codec::default());
    assert_eq!(options.max_frame_size, 8 * 1024 * 1024);
    assert_eq!(options.slow_consumer, SlowConsumer::KeepLatest);
    assert_eq!(options.name, None);
    assert_eq!(options.channel("Trait"), "Trait");

    // SAFETY: as above.
    unsafe {
        std::env::set_var(cluster_client::PORT_ENV, "7788");
        std::env::set_var(cluster_client::SINGLE_MODE_ENV, "1");
    }
    let options = Options::default();
    assert_eq!(options.port, 7788);
    assert!(options.single_mode);
    // An explicit setting beats the environment.
    assert_eq!(Options::new("x").port(9000).port, 9000);
    assert_eq!(Options::new("x").channel("Trait"), "x");

    // SAFETY: as above.
    unsafe {
        std::env::set_var(cluster_client::PORT_ENV, "not a port");
        std::env::set_var(cluster_client::SINGLE_MODE_ENV, "0");
    }
    let options = Options::default();
    assert_eq!(
        options.port, 7777,
        "an unparsable port falls back to the default"
    );
    assert!(!options.single_mode);

    // The Node package's variable when ours is unset; ours wins when both are set.
    // SAFETY: as above.
    unsafe {
        std::env::remove_var(cluster_client::PORT_ENV);
        std::env::set_var(cluster_client::NODE_PORT_ENV, "7799");
    }
    assert_eq!(Options::default().port, 7799);
    // SAFETY: as above.
    unsafe {
        std::env::set_var(cluster_client::PORT_ENV, "7788");
    }
    assert_eq!(Options::default().port, 7788);
}
