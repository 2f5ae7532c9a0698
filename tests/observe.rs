//! What a member can see of its cluster, with real processes: its role changes as they happen
//! (leader or follower, the term, the leader's pid), and the channel's stats, which the leader
//! fills and a follower asks for over the wire.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cluster_client::{Error, Inspector, Options};
use serde_json::{Value, json};
use support::{Worker, endpoints, free_port, upstream};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// A follower's snapshot is the leader's: who leads (pid, term), who follows (pids), the topic
/// and its two subscribers (the leader's own and one follower's), the calls served and failed
/// (one past its deadline), the bytes both ways, and no failover at start-up. Then kill -9 of the
/// leader: each survivor reports the change of role with the new term and the new leader's pid,
/// and the new leader's snapshot records the failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_role_changes_follow_the_cluster() {
    let up = upstream().await;
    up.set("svc", endpoints(&[("10.0.0.1", 80)]));
    let port = free_port();
    let mut leader = Worker::ready("leader", "generated", port, &up, &[]).await;
    let mut first = Worker::ready("first", "generated", port, &up, &[]).await;
    let mut second = Worker::ready("second", "generated", port, &up, &[]).await;
    let (leads, epoch) = leader.status().await;
    assert!(leads);
    let status = first.call(json!({ "cmd": "status" })).await;
    assert_eq!(
        status["leader_pid"], leader.pid,
        "registration says who leads: {status}"
    );

    for worker in [&mut leader, &mut first] {
        worker
            .send(json!({ "cmd": "watch", "sub": "w", "service": "svc" }))
            .await;
        worker.item("w").await;
    }
    // Two publishes of the same registration are one to remember; a second registration is another.
    // Sent first: a publish is oneway, and the 1 s `pause` below outlasts its upstream call, so
    // that none is in flight when the stats are read.
    for host in ["h1", "h1", "h2"] {
        second
            .call(json!({ "cmd": "register", "service": "obs", "host": host, "port": 1 }))
            .await;
    }
    for n in 0..5 {
        let echoed = second
            .call(json!({ "cmd": "echo", "payload": format!("p{n}") }))
            .await;
        assert_eq!(echoed["ok"], format!("p{n}"));
    }
    // `pause` may take 1 s: the leader gives up on a 5 s pause at that deadline.
    let failed = second.call(json!({ "cmd": "pause", "ms": 5000 })).await;
    assert_eq!(failed["kind"], "timeout", "{failed}");

    let stats = second.call(json!({ "cmd": "stats" })).await;
    eprintln!("the follower's stats: {stats}");
    let stats = &stats["ok"];
    assert_eq!(stats["channel"], "registry");
    assert_eq!(stats["role"], "follower", "the asking process's role");
    assert_eq!(stats["epoch"], epoch);
    assert_eq!(stats["leader"]["pid"], leader.pid);
    let since = stats["leader"]["since_ms"].as_u64().expect("since");
    assert!(since <= now_ms() && since + 60_000 > now_ms(), "{since}");
    let pids = follower_pids(stats);
    assert_eq!(pids, BTreeSet::from([first.pid.into(), second.pid.into()]));
    assert_eq!(
        stats["topics"],
        json!([{ "method": "watch", "key": "$$inner$$__\"svc\"", "subscribers": 2 }])
    );
    assert!(stats["calls"]["served"].as_u64() >= Some(5), "{stats}");
    assert!(stats["calls"]["failed"].as_u64() >= Some(1), "{stats}");
    assert_eq!(stats["calls"]["in_flight"], 0, "{stats}");
    // Five echoes of a few dozen bytes each, at least, both ways.
    assert!(stats["bytes_in"].as_u64() > Some(5 * 40), "{stats}");
    assert!(stats["bytes_out"].as_u64() > Some(5 * 40), "{stats}");
    assert_eq!(stats["last_failover"], Value::Null);
    assert_eq!(stats["publishes"]["count"], 2, "{stats}");
    let bytes = stats["publishes"]["bytes"].as_u64().expect("bytes");
    assert!(
        bytes > 2 * 10,
        "two registrations of a few bytes each: {bytes}"
    );
    for follower in stats["followers"].as_array().expect("followers") {
        let count = if follower["pid"] == second.pid { 2 } else { 0 };
        assert_eq!(follower["publishes"]["count"], count, "{follower}");
    }
    let own = leader.call(json!({ "cmd": "stats" })).await;
    assert_eq!(own["ok"]["role"], "leader");
    assert_eq!(follower_pids(&own["ok"]), pids, "the leader's own snapshot");

    let killed_at = now_ms();
    leader.kill9().await;
    let mut changes = Vec::new();
    for worker in [&mut first, &mut second] {
        let change = worker.expect(|v| v["event"] == "role").await;
        assert!(
            change["epoch"].as_u64() > Some(epoch),
            "a new term: {change}"
        );
        changes.push(change);
    }
    eprintln!("the survivors' role changes: {changes:?}");
    let new_leader_pid = changes[0]["leader_pid"].clone();
    assert_eq!(changes[1]["leader_pid"], new_leader_pid, "one leader");
    assert_eq!(changes[0]["epoch"], changes[1]["epoch"], "one term");
    let roles: BTreeSet<String> = changes
        .iter()
        .map(|c| c["role"].as_str().expect("role").to_owned())
        .collect();
    assert_eq!(roles, BTreeSet::from(["follower".into(), "leader".into()]));
    let (new_leader, follower) = if changes[0]["role"] == "leader" {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert_eq!(new_leader_pid, new_leader.pid);
    let stats = follower.call(json!({ "cmd": "stats" })).await;
    eprintln!("after the failover: {stats}");
    let stats = &stats["ok"];
    assert_eq!(stats["leader"]["pid"], new_leader.pid);
    assert_eq!(follower_pids(stats), BTreeSet::from([follower.pid.into()]));
    let failover = &stats["last_failover"];
    let at = failover["at_ms"].as_u64().expect("the failover's time");
    assert!(at >= killed_at && at <= now_ms(), "{failover}");
    let took = failover["took_us"].as_u64().expect("its length");
    assert!(took < 15_000_000, "{failover}");
    // The first follower's subscription moved to the new leader (the old leader's went with it).
    let mut subscribers = Value::Null;
    for _ in 0..100 {
        let stats = follower.call(json!({ "cmd": "stats" })).await;
        subscribers = stats["ok"]["topics"][0]["subscribers"].clone();
        if subscribers == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(subscribers, 1);
}

/// The pids of a snapshot's followers.
fn follower_pids(stats: &Value) -> BTreeSet<u64> {
    stats["followers"]
        .as_array()
        .expect("followers")
        .iter()
        .map(|f| f["pid"].as_u64().expect("a pid"))
        .collect()
}

/// `Inspector` (behind `examples/inspect.rs`) on the endpoint of a leader of two channels: one
/// snapshot per channel, each with its leader, followers and topics. On a free port it reports
/// nothing listening; on a port held by something else (the upstream registry, which answers
/// nothing to a registration), what it found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_every_channel_of_the_endpoint() {
    let up = upstream().await;
    let port = free_port();
    let two = ["--channels", "alpha,beta"];
    let leader = Worker::ready("leader", "generated", port, &up, &two).await;
    let mut follower = Worker::ready("follower", "generated", port, &up, &two).await;
    follower
        .send(json!({ "ch": 1, "cmd": "watch", "sub": "b", "service": "svc" }))
        .await;
    follower.item("b").await;
    let options = Options::default()
        .port(port)
        .runtime_dir(Some(support::runtime_dir()));
    let inspector = Inspector::connect(&options).await.expect("inspects");
    let channels = inspector.channels().await.expect("stats");
    let names: Vec<&str> = channels.iter().map(|c| c.channel.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    for channel in &channels {
        assert_eq!(channel.leader.pid, Some(leader.pid));
        let pids: Vec<Option<u32>> = channel.followers.iter().map(|f| f.pid).collect();
        assert_eq!(pids, [Some(follower.pid)], "{}", channel.channel);
    }
    assert!(channels[0].topics.is_empty());
    assert_eq!(channels[1].topics.len(), 1);
    assert_eq!(channels[1].topics[0].subscribers, 1);
    drop(inspector);

    let nothing = Inspector::connect(&options.clone().port(free_port())).await;
    assert!(
        matches!(nothing, Err(Error::NoLeader { .. })),
        "{nothing:?}"
    );
    let foreign = Options::default()
        .port(up.local_addr().port())
        .runtime_dir(Some(support::runtime_dir()))
        .connect_timeout(Duration::from_millis(300));
    match Inspector::connect(&foreign).await {
        Err(Error::ForeignPeer { found, .. }) => {
            assert!(found.contains("answered nothing"), "{found}")
        }
        other => panic!("a foreign process: {other:?}"),
    }
}

/// A healthy cluster is quiet at INFO after start-up: calls, subscriptions, items and heartbeats
/// (every 100 ms, for a second) log nothing at INFO or above, in the leader or its follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_cluster_logs_nothing_at_info() {
    let up = upstream().await;
    up.set("svc", endpoints(&[("10.0.0.1", 80)]));
    let port = free_port();
    let flags = ["--log", "info", "--heartbeat-ms", "100"];
    let mut leader = Worker::ready("leader", "generated", port, &up, &flags).await;
    let mut follower = Worker::ready("follower", "generated", port, &up, &flags).await;
    let logged = |worker: &mut Worker| worker.take_all(|v| v.get("level").is_some());
    let started = logged(&mut leader);
    assert!(
        started
            .iter()
            .any(|v| v["fields"]["message"] == "became leader"),
        "start-up is logged: {started:?}"
    );
    logged(&mut follower);
    follower
        .send(json!({ "cmd": "watch", "sub": "w", "service": "svc" }))
        .await;
    follower.item("w").await;
    up.set("svc", endpoints(&[("10.0.0.2", 80)]));
    follower.item("w").await;
    for n in 0..20 {
        let answer = follower
            .call(json!({ "cmd": "echo", "payload": format!("{n}") }))
            .await;
        assert_eq!(answer["ok"], format!("{n}"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(logged(&mut leader), Vec::<Value>::new());
    assert_eq!(logged(&mut follower), Vec::<Value>::new());
}
