//! The coordinator: starts this same binary as leader, followers and raw baselines, drives each phase
//! over their stdin and stdout, and reports every figure beside its baseline.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use cluster_client_workspace::try_free_port;
use lexopt::ValueExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::report::{Cost, CostRow, Figure, Results, Target, Unit, cost_table, document, table};
use crate::util::{Summary, now_ns, rss_kib};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The command line of a benchmark run.
#[derive(Debug, Clone)]
pub struct Opts {
    /// F of the second throughput point (the first is F = 1).
    pub followers: usize,
    /// Calls in flight per follower.
    pub concurrency: usize,
    /// Measured time of each sequential and throughput phase.
    pub duration_ms: u64,
    /// Unmeasured time before each.
    pub warmup_ms: u64,
    /// Which phases run: a (sequential), b (throughput), c (oneway), d (fan-out), e (memory).
    pub only: BTreeSet<char>,
    pub json: Option<PathBuf>,
    /// Follower counts of the fan-out phase.
    pub fanout: Vec<usize>,
    /// Items pushed per fan-out measurement, and how fast.
    pub fanout_items: u64,
    pub fanout_rate: f64,
    /// The small argument (and item padding) size; the large one is 4 KiB.
    pub small: usize,
    /// Drive calls from the thread blocked in `block_on` instead of a runtime worker.
    pub main_thread: bool,
    /// Turns cluster-client and its baseline take in phases a, b and d.
    pub rounds: usize,
    /// How the cluster's members reach each other: `tcp` or `unix` (the baselines are TCP).
    pub transport: String,
    /// Reps of phases f and h.
    pub reps: usize,
}

pub const USAGE: &str = "\
usage: cargo run --release --example bench -- [options]
  --followers F      followers of the second throughput point (default 4; the first is 1)
  --concurrency C    calls in flight per follower (default 64)
  --duration-ms D    measured time per sequential/throughput phase (default 2000)
  --fanout-items N   items pushed per fan-out measurement (default 2000)
  --fanout-rate R    items per second in the fan-out phase (default 1000)
  --quick            short phases (a smoke run)
  --main-thread      make calls, and emit the fan-out's items, from the thread in block_on (as
                     code in #[tokio::main] does), not from a spawned task
  --rounds R         turns cluster-client and its baseline take in phases a, b, d (default 10)
  --only a,b,...     phases: a sequential, b throughput, c oneway, d fan-out, e memory,
                     f failover (kill -9 of the leader), g handover (SIGTERM of the
                     leader), h late subscriber
  --reps N           reps of phases f, g and h (default 30)
  --transport T      the cluster's transport: tcp (default) or unix (the baselines stay TCP)
  --json PATH        also write every figure to PATH";

/// A command-line error as text.
fn text(err: lexopt::Error) -> String {
    err.to_string()
}

/// The next value, a whole number.
fn number(parser: &mut lexopt::Parser) -> Result<u64, String> {
    parser.value().and_then(|v| v.parse()).map_err(text)
}

/// The next value, as text.
fn string(parser: &mut lexopt::Parser) -> Result<String, String> {
    parser.value().and_then(|v| v.string()).map_err(text)
}

impl Opts {
    /// Parses the coordinator's arguments (an empty error asks for the usage).
    pub fn parse(args: &[String]) -> Result<Self, String> {
        use lexopt::prelude::*;
        let mut opts = Opts {
            followers: 4,
            concurrency: 64,
            duration_ms: 2000,
            warmup_ms: 300,
            only: "abcdefgh".chars().collect(),
            json: None,
            fanout: vec![16, 64],
            fanout_items: 2000,
            fanout_rate: 1000.0,
            small: 100,
            main_thread: false,
            rounds: 10,
            transport: "tcp".to_owned(),
            reps: 30,
        };
        let mut quick = false;
        let (mut duration, mut items, mut rounds, mut reps) = (None, None, None, None);
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next().map_err(text)? {
            match arg {
                Long("followers") => opts.followers = number(&mut parser)?.max(1) as usize,
                Long("concurrency") => opts.concurrency = number(&mut parser)?.max(1) as usize,
                Long("duration-ms") => duration = Some(number(&mut parser)?),
                Long("fanout-items") => items = Some(number(&mut parser)?.max(1)),
                Long("fanout-rate") => opts.fanout_rate = number(&mut parser)?.max(1) as f64,
                Long("quick") => quick = true,
                Long("main-thread") => opts.main_thread = true,
                Long("rounds") => rounds = Some(number(&mut parser)?.max(1) as usize),
                Long("json") => opts.json = Some(PathBuf::from(string(&mut parser)?)),
                Long("reps") => reps = Some(number(&mut parser)?.max(1) as usize),
                Long("transport") => {
                    opts.transport = string(&mut parser)?;
                    if !matches!(opts.transport.as_str(), "tcp" | "unix") {
                        return Err(format!("--transport: tcp or unix, not {}", opts.transport));
                    }
                }
                Long("only") => {
                    opts.only = string(&mut parser)?
                        .split(',')
                        .filter_map(|p| p.trim().chars().next())
                        .collect();
                    if let Some(bad) = opts.only.iter().find(|p| !"abcdefgh".contains(**p)) {
                        return Err(format!("--only: unknown phase {bad}"));
                    }
                }
                Short('h') | Long("help") => return Err(String::new()),
                _ => return Err(arg.unexpected().to_string()),
            }
        }
        if quick {
            opts.duration_ms = 300;
            opts.warmup_ms = 100;
            opts.fanout_items = 200;
            opts.rounds = 2;
            opts.reps = 3;
        }
        opts.rounds = rounds.unwrap_or(opts.rounds);
        opts.reps = reps.unwrap_or(opts.reps);
        opts.duration_ms = duration.unwrap_or(opts.duration_ms);
        opts.fanout_items = items.unwrap_or(opts.fanout_items);
        Ok(opts)
    }

    fn has(&self, phase: char) -> bool {
        self.only.contains(&phase)
    }

    fn config(&self) -> Value {
        json!({
            "transport": self.transport,
            "followers": self.followers,
            "concurrency": self.concurrency,
            "duration_ms": self.duration_ms,
            "warmup_ms": self.warmup_ms,
            "phases": self.only.iter().collect::<String>(),
            "fanout": self.fanout,
            "fanout_items": self.fanout_items,
            "fanout_rate": self.fanout_rate,
            "small_bytes": self.small,
            "main_thread": self.main_thread,
            "rounds": self.rounds,
            "large_bytes": LARGE,
        })
    }
}

/// The large argument.
const LARGE: usize = 4096;

/// How long a child may take to answer a command beyond the phase's own length.
const SLACK: Duration = Duration::from_secs(30);

/// One child process of this binary, talked to in JSON lines.
struct Child {
    name: String,
    pid: u32,
    process: tokio::process::Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    ready: Value,
}

impl Child {
    /// Starts `--role role` with `args`; its first line must say it is ready.
    async fn spawn(name: String, role: &str, args: &[String]) -> Res<Child> {
        let exe = std::env::current_exe()?;
        let mut process = Command::new(exe)
            .arg("--role")
            .arg(role)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = process.id().ok_or("child exited at once")?;
        let stdin = process.stdin.take().ok_or("no stdin")?;
        let lines = BufReader::new(process.stdout.take().ok_or("no stdout")?).lines();
        let mut child = Child {
            name,
            pid,
            process,
            stdin,
            lines,
            ready: Value::Null,
        };
        child.ready = child.recv(SLACK).await?;
        if child.ready["ready"] != true {
            return Err(format!("{} did not start: {}", child.name, child.ready).into());
        }
        Ok(child)
    }

    /// Starts `count` children at once, then waits for each.
    async fn spawn_many(
        prefix: &str,
        role: &str,
        args: &[String],
        count: usize,
    ) -> Res<Vec<Child>> {
        let starts = (0..count).map(|i| Child::spawn(format!("{prefix}{i}"), role, args));
        futures::future::try_join_all(starts).await
    }

    async fn send(&mut self, command: &Value) -> Res<()> {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn recv(&mut self, within: Duration) -> Res<Value> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .map_err(|_| format!("{} did not answer within {within:?}", self.name))??
            .ok_or_else(|| format!("{} exited", self.name))?;
        let value: Value = serde_json::from_str(&line)?;
        if let Some(err) = value.get("error") {
            return Err(format!("{}: {err}", self.name).into());
        }
        Ok(value)
    }

    async fn ask(&mut self, command: Value, within: Duration) -> Res<Value> {
        self.send(&command).await?;
        self.recv(within).await
    }

    fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(2), self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.kill().await;
        }
    }
}

async fn stop_all(children: Vec<Child>) {
    futures::future::join_all(children.into_iter().map(Child::stop)).await;
}

/// Sends `command` to every child, then collects every answer.
async fn ask_all(children: &mut [Child], command: &Value, within: Duration) -> Res<Vec<Value>> {
    for child in children.iter_mut() {
        child.send(command).await?;
    }
    let mut answers = Vec::with_capacity(children.len());
    for child in children.iter_mut() {
        answers.push(child.recv(within).await?);
    }
    Ok(answers)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

fn u64_of(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or(0)
}

pub async fn run(opts: Opts) -> ExitCode {
    let load_before = loadavg();
    progress(&format!(
        "{} cores, load average {load_before}; phases {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        opts.only.iter().collect::<String>()
    ));
    let mut results = Results::default();
    let mut failed = false;
    if opts.has('a') || opts.has('b') || opts.has('c') {
        if let Err(err) = invoke_phases(&opts, &mut results).await {
            progress(&format!("invoke phases failed: {err}"));
            failed = true;
        }
    }
    if opts.has('f') {
        for idempotent in [false, true] {
            if let Err(err) = failover_phase(&opts, &mut results, Leave::Killed, idempotent).await {
                progress(&format!("failover phase failed: {err}"));
            }
        }
    }
    if opts.has('g') {
        if let Err(err) = failover_phase(&opts, &mut results, Leave::Terminated, false).await {
            progress(&format!("handover phase failed: {err}"));
        }
    }
    if opts.has('h') {
        if let Err(err) = late_subscriber_phase(&opts, &mut results).await {
            progress(&format!("late-subscriber phase failed: {err}"));
        }
    }
    if opts.has('d') || opts.has('e') {
        if let Err(err) = fanout_phases(&opts, &mut results).await {
            progress(&format!("fan-out/memory phases failed: {err}"));
            failed = true;
        }
    }
    let load_after = loadavg();
    println!();
    print!("{}", table(&results.figures));
    if !results.costs.is_empty() {
        println!();
        print!("{}", cost_table(&results.costs));
    }
    println!("load average before: {load_before}; after: {load_after}");
    if let Some(path) = &opts.json {
        let machine = json!({
            "cores": std::thread::available_parallelism().map_or(0, usize::from),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        });
        let doc = document(&results, opts.config(), machine);
        match std::fs::write(path, format!("{doc:#}\n")) {
            Ok(()) => println!("figures written to {}", path.display()),
            Err(err) => {
                progress(&format!("could not write {}: {err}", path.display()));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// CPU time and context switches of some processes, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_ns: u64,
    switches: u64,
}

impl Usage {
    fn of(pids: &[u32]) -> Usage {
        pids.iter().fold(Usage::default(), |sum, &pid| {
            let one = Usage::of_one(pid);
            Usage {
                cpu_ns: sum.cpu_ns + one.cpu_ns,
                switches: sum.switches + one.switches,
            }
        })
    }

    fn of_one(pid: u32) -> Usage {
        // utime and stime are fields 14 and 15 of /proc/PID/stat, in ticks of 10 ms (USER_HZ = 100).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        // Context switches are counted per thread.
        let switches = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum();
        Usage {
            cpu_ns: ticks * 10_000_000,
            switches,
        }
    }

    fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            switches: self.switches.saturating_sub(before.switches),
        }
    }
}

/// What a measurement cost: the server side (leader or raw server) and the client side.
#[derive(Debug, Clone, Copy, Default)]
struct Spent {
    server: Usage,
    clients: Usage,
}

impl Spent {
    fn per_call(self, calls: f64) -> Cost {
        let calls = calls.max(1.0);
        Cost {
            calls: calls as u64,
            server_cpu_us: self.server.cpu_ns as f64 / 1e3 / calls,
            clients_cpu_us: self.clients.cpu_ns as f64 / 1e3 / calls,
            server_switches: self.server.switches as f64 / calls,
            clients_switches: self.clients.switches as f64 / calls,
        }
    }
}

/// Sends `command` to every one of `clients`, collects the answers, and what the processes spent
/// meanwhile.
async fn measured(
    server: u32,
    clients: &mut [Child],
    command: &Value,
    within: Duration,
) -> Res<(Vec<Value>, Spent)> {
    let pids: Vec<u32> = clients.iter().map(|c| c.pid).collect();
    let before = (Usage::of(&[server]), Usage::of(&pids));
    let answers = ask_all(clients, command, within).await?;
    let spent = Spent {
        server: Usage::of(&[server]).since(before.0),
        clients: Usage::of(&pids).since(before.1),
    };
    Ok((answers, spent))
}

impl std::ops::AddAssign for Spent {
    fn add_assign(&mut self, other: Spent) {
        self.server.cpu_ns += other.server.cpu_ns;
        self.server.switches += other.server.switches;
        self.clients.cpu_ns += other.clients.cpu_ns;
        self.clients.switches += other.clients.switches;
    }
}

/// Latency samples gathered over several turns.
#[derive(Default)]
struct Sampled {
    samples: Vec<u64>,
    errors: u64,
    spent: Spent,
}

impl Sampled {
    fn add(&mut self, answer: &Value, spent: Spent) {
        let samples = answer["samples"].as_array().into_iter().flatten();
        self.samples.extend(samples.filter_map(Value::as_u64));
        self.errors += u64_of(answer, "errors");
        self.spent += spent;
    }

    fn summary(&mut self) -> Summary {
        Summary::of(&mut self.samples)
    }
}

/// Calls counted over several turns.
#[derive(Default)]
struct Counted {
    calls: u64,
    errors: u64,
    elapsed_ns: u64,
    spent: Spent,
}

impl Counted {
    /// Adds one turn of every client (they ran at the same time).
    fn add(&mut self, answers: &[Value], spent: Spent) {
        self.calls += answers.iter().map(|a| u64_of(a, "n")).sum::<u64>();
        self.errors += answers.iter().map(|a| u64_of(a, "errors")).sum::<u64>();
        self.elapsed_ns += answers
            .iter()
            .map(|a| u64_of(a, "elapsed_ns"))
            .max()
            .unwrap_or(0);
        self.spent += spent;
    }

    fn rate(&self) -> f64 {
        self.calls as f64 / (self.elapsed_ns.max(1) as f64 / 1e9)
    }
}

/// a (sequential), b (throughput) and c (oneway): one leader, F followers, one echo server, F echo
/// clients.
async fn invoke_phases(opts: &Opts, results: &mut Results) -> Res<()> {
    let port = try_free_port()?.to_string();
    let port_args = [
        "--port".to_owned(),
        port,
        "--transport".to_owned(),
        opts.transport.clone(),
    ];
    let mut leader = Child::spawn("leader".into(), "leader", &port_args).await?;
    let mut followers =
        Child::spawn_many("follower", "follower", &port_args, opts.followers).await?;
    let server = Child::spawn("echo-server".into(), "echo-server", &[]).await?;
    let echo_args = ["--port".to_owned(), server.ready["port"].to_string()];
    let mut clients =
        Child::spawn_many("echo-client", "echo-client", &echo_args, opts.followers).await?;
    progress(&format!(
        "leader pid {}, follower pids {:?}, echo server pid {}, echo client pids {:?}",
        leader.pid,
        followers.iter().map(|c| c.pid).collect::<Vec<_>>(),
        server.pid,
        clients.iter().map(|c| c.pid).collect::<Vec<_>>()
    ));
    let phase = Duration::from_millis(opts.duration_ms + opts.warmup_ms) + SLACK;
    // Calls made over the whole window, warm-up included, from those counted in the measured part.
    let whole = (opts.duration_ms + opts.warmup_ms) as f64 / opts.duration_ms.max(1) as f64;
    let base = json!({
        "ms": opts.duration_ms,
        "warmup_ms": opts.warmup_ms,
        "concurrency": opts.concurrency,
        "on_worker": !opts.main_thread,
    });
    let with = |extra: Value| {
        let mut command = base.clone();
        for (k, v) in extra.as_object().into_iter().flatten() {
            command[k] = v.clone();
        }
        command
    };
    let mut points = vec![1];
    if opts.followers > 1 {
        points.push(opts.followers);
    }

    // The machine is shared and its latency comes in regimes: cluster-client and its baseline take
    // turns, `rounds` slices each, so that both see the same conditions.
    let rounds = opts.rounds.max(1);
    let slice = (opts.duration_ms / rounds as u64).max(1);
    let sliced = |command: &Value, round: usize| {
        let mut command = command.clone();
        command["ms"] = json!(slice);
        if round > 0 {
            command["warmup_ms"] = json!(0);
        }
        command
    };

    if opts.has('a') {
        for (size, name) in [
            (opts.small, format!("{} B", opts.small)),
            (LARGE, "4 KiB".to_owned()),
        ] {
            progress(&format!(
                "a: sequential round trips, {name}: follower {} and raw echo client {} (plain, then with a timer armed) in {rounds} turns",
                followers[0].pid, clients[0].pid
            ));
            let command = with(json!({ "cmd": "seq", "size": size }));
            let timed_command = with(json!({ "cmd": "seq", "size": size, "timer": true }));
            let (mut ours, mut raw, mut timed) =
                (Sampled::default(), Sampled::default(), Sampled::default());
            for round in 0..rounds {
                let command = sliced(&command, round);
                let (answer, spent) =
                    measured(leader.pid, &mut followers[..1], &command, phase).await?;
                ours.add(&answer[0], spent);
                let (answer, spent) =
                    measured(server.pid, &mut clients[..1], &command, phase).await?;
                raw.add(&answer[0], spent);
                let timed_command = sliced(&timed_command, round);
                let (answer, spent) =
                    measured(server.pid, &mut clients[..1], &timed_command, phase).await?;
                timed.add(&answer[0], spent);
            }
            let (ours_s, raw_s, timed_s) = (ours.summary(), raw.summary(), timed.summary());
            results.costs.push(CostRow {
                label: format!("a. sequential, {name}"),
                ours: ours.spent.per_call(ours_s.n as f64 * whole),
                raw: raw.spent.per_call(raw_s.n as f64 * whole),
            });
            let note = (ours.errors > 0).then(|| format!("{} calls failed", ours.errors));
            results.figures.push(
                Figure::new(
                    &format!("a.seq_p50_{size}"),
                    &format!("a. sequential invoke p50, {name}"),
                    Unit::Nanos,
                    ours_s.p50_ns as f64,
                    Some(raw_s.p50_ns as f64),
                )
                .target(Target::RatioAtMost { value: 1.3 })
                .note(note),
            );
            results.figures.push(Figure::new(
                &format!("a.seq_p99_{size}"),
                &format!("a. sequential invoke p99, {name}"),
                Unit::Nanos,
                ours_s.p99_ns as f64,
                Some(raw_s.p99_ns as f64),
            ));
            results.figures.push(Figure::new(
                &format!("a.seq_p50_timed_{size}"),
                &format!("a. sequential invoke p50, {name}, against an echo with a timer armed"),
                Unit::Nanos,
                ours_s.p50_ns as f64,
                Some(timed_s.p50_ns as f64),
            ));
        }
    }

    if opts.has('b') {
        for &f in &points {
            let c = opts.concurrency;
            progress(&format!(
                "b: invoke throughput, F = {f}, C = {c}: cluster-client, raw echo and coalescing raw echo in {rounds} turns"
            ));
            let plain = with(json!({ "cmd": "tput", "size": opts.small }));
            let coalescing = with(json!({ "cmd": "tput", "size": opts.small, "coalesce": true }));
            let (mut ours, mut raw, mut coalesced) =
                (Counted::default(), Counted::default(), Counted::default());
            for round in 0..rounds {
                let (answers, spent) = measured(
                    leader.pid,
                    &mut followers[..f],
                    &sliced(&plain, round),
                    phase,
                )
                .await?;
                ours.add(&answers, spent);
                let (answers, spent) =
                    measured(server.pid, &mut clients[..f], &sliced(&plain, round), phase).await?;
                raw.add(&answers, spent);
                let (answers, spent) = measured(
                    server.pid,
                    &mut clients[..f],
                    &sliced(&coalescing, round),
                    phase,
                )
                .await?;
                coalesced.add(&answers, spent);
            }
            let per_call = |counted: &Counted| counted.spent.per_call(counted.calls as f64 * whole);
            results.costs.push(CostRow {
                label: format!("b. invoke, F={f} C={c}"),
                ours: per_call(&ours),
                raw: per_call(&raw),
            });
            results.costs.push(CostRow {
                label: format!("b. invoke, F={f} C={c}, vs coalescing"),
                ours: per_call(&ours),
                raw: per_call(&coalesced),
            });
            results.figures.push(
                Figure::new(
                    &format!("b.invoke_tput_f{f}_c{c}"),
                    &format!("b. invoke throughput, F={f} C={c}"),
                    Unit::PerSecond,
                    ours.rate(),
                    Some(raw.rate()),
                )
                .note((ours.errors > 0).then(|| format!("{} calls failed", ours.errors))),
            );
            // The target's baseline: the echo at its best, batching as the targets assume.
            let target = if f == 1 { 0.4 } else { 0.15 };
            results.figures.push(
                Figure::new(
                    &format!("b.invoke_tput_f{f}_c{c}_vs_coalescing"),
                    &format!("b. invoke throughput, F={f} C={c}, vs coalescing echo"),
                    Unit::PerSecond,
                    ours.rate(),
                    Some(coalesced.rate()),
                )
                .target(Target::RatioAtLeast { value: target }),
            );
        }
    }

    if opts.has('c') {
        // Frames the server side handled, over the span between the first and the last.
        let stream = |answers: &[Value]| {
            let count: u64 = answers.iter().map(|a| u64_of(a, "count")).sum();
            let first = answers
                .iter()
                .map(|a| u64_of(a, "first_ns"))
                .min()
                .unwrap_or(0);
            let last = answers
                .iter()
                .map(|a| u64_of(a, "last_ns"))
                .max()
                .unwrap_or(0);
            (
                count,
                count as f64 / (last.saturating_sub(first).max(1) as f64 / 1e9),
            )
        };
        for &f in &points {
            let c = opts.concurrency;
            progress(&format!("c: oneway throughput, F = {f}, C = {c}"));
            leader.ask(json!({ "cmd": "reset" }), SLACK).await?;
            let command = with(json!({ "cmd": "oneway", "size": opts.small }));
            let usage_before = (
                Usage::of(&[leader.pid]),
                Usage::of(&followers[..f].iter().map(|c| c.pid).collect::<Vec<_>>()),
            );
            let sent: u64 = ask_all(&mut followers[..f], &command, phase)
                .await?
                .iter()
                .map(|a| u64_of(a, "n"))
                .sum();
            // The leader may still be running queued calls: wait until its count stops moving.
            let mut stats = leader.ask(json!({ "cmd": "stats" }), SLACK).await?;
            for _ in 0..50 {
                if u64_of(&stats, "count") >= sent {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                let next = leader.ask(json!({ "cmd": "stats" }), SLACK).await?;
                let moved = u64_of(&next, "count") != u64_of(&stats, "count");
                stats = next;
                if !moved {
                    break;
                }
            }
            let ours_spent = Spent {
                server: Usage::of(&[leader.pid]).since(usage_before.0),
                clients: Usage::of(&followers[..f].iter().map(|c| c.pid).collect::<Vec<_>>())
                    .since(usage_before.1),
            };
            let (ran, ours) = stream(&[stats.clone()]);
            progress(&format!(
                "c: oneway throughput, F = {f}, C = {c}, raw stream"
            ));
            let (raw, raw_spent) = measured(server.pid, &mut clients[..f], &command, phase).await?;
            let (raw_count, raw_rate) = stream(&raw);
            progress(&format!(
                "c: oneway throughput, F = {f}, C = {c}, coalescing raw stream"
            ));
            let coalescing = with(json!({ "cmd": "oneway", "size": opts.small, "coalesce": true }));
            let (coalesced, _) =
                measured(server.pid, &mut clients[..f], &coalescing, phase).await?;
            let (_, coalesced_rate) = stream(&coalesced);
            results.costs.push(CostRow {
                label: format!("c. oneway, F={f} C={c}"),
                ours: ours_spent.per_call(ran as f64),
                raw: raw_spent.per_call(raw_count as f64),
            });
            let lost = sent.saturating_sub(ran);
            results.figures.push(
                Figure::new(
                    &format!("c.oneway_tput_f{f}_c{c}"),
                    &format!("c. oneway throughput, F={f} C={c}"),
                    Unit::PerSecond,
                    ours,
                    Some(raw_rate),
                )
                .note(
                    (lost > 0)
                        .then(|| format!("{lost} of {sent} oneway calls not run by the leader")),
                ),
            );
            results.figures.push(Figure::new(
                &format!("c.oneway_tput_f{f}_c{c}_vs_coalescing"),
                &format!("c. oneway throughput, F={f} C={c}, vs coalescing stream"),
                Unit::PerSecond,
                ours,
                Some(coalesced_rate),
            ));
        }
    }

    stop_all(followers).await;
    stop_all(clients).await;
    leader.stop().await;
    server.stop().await;
    Ok(())
}

/// What fan-out measurements gave, added up over turns.
#[derive(Default)]
struct Fanout {
    samples: Vec<u64>,
    delivered: u64,
    expected: u64,
    window_ns: u64,
    /// What the pusher and the subscribers spent, warm-up and bookkeeping included.
    spent: Spent,
}

impl Fanout {
    fn per_second(&self) -> f64 {
        self.delivered as f64 / (self.window_ns.max(1) as f64 / 1e9)
    }

    fn lost(&self) -> Option<String> {
        (self.delivered < self.expected)
            .then(|| format!("{} of {} items delivered", self.delivered, self.expected))
    }
}

/// Pushes `items` items through `pusher` to `n` of `subs` (the first `n` subscribe; a raw push
/// server picks its first `n` connections), after a warm-up that proves `n` of them receive.
/// Statistics come from every one of `subs`: those not pushed to have none.
async fn fanout(
    opts: &Opts,
    pusher: &mut Child,
    subs: &mut [Child],
    n: usize,
    items: u64,
    into: &mut Fanout,
) -> Res<()> {
    let pids: Vec<u32> = subs[..n].iter().map(|c| c.pid).collect();
    let before = (Usage::of(&[pusher.pid]), Usage::of(&pids));
    ask_all(&mut subs[..n], &json!({ "cmd": "subscribe" }), SLACK).await?;
    let warm = json!({ "cmd": "push", "count": 1, "warm": true, "clients": n, "size": opts.small, "on_worker": !opts.main_thread });
    let mut all_warm = false;
    for _ in 0..200 {
        pusher.ask(warm.clone(), SLACK).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stats = ask_all(subs, &json!({ "cmd": "feed_stats" }), SLACK).await?;
        if stats.iter().filter(|s| s["warm"] == true).count() >= n {
            all_warm = true;
            break;
        }
    }
    if !all_warm {
        return Err(format!("not every one of {n} subscribers received the warm-up items").into());
    }
    ask_all(subs, &json!({ "cmd": "feed_reset" }), SLACK).await?;
    let push = json!({ "cmd": "push", "count": items, "rate": opts.fanout_rate, "clients": n, "size": opts.small, "on_worker": !opts.main_thread });
    let within = Duration::from_secs_f64(items as f64 / opts.fanout_rate) + SLACK;
    let pushed = pusher.ask(push, within).await?;
    let expected = items * n as u64;
    // Wait for stragglers, while the count grows.
    let mut delivered = 0;
    for _ in 0..30 {
        let stats = ask_all(subs, &json!({ "cmd": "feed_stats" }), SLACK).await?;
        let now: u64 = stats.iter().map(|s| u64_of(s, "count")).sum();
        if now >= expected || (now == delivered && now > 0) {
            break;
        }
        delivered = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = ask_all(
        subs,
        &json!({ "cmd": "feed_stats", "samples": true }),
        SLACK,
    )
    .await?;
    into.spent += Spent {
        server: Usage::of(&[pusher.pid]).since(before.0),
        clients: Usage::of(&pids).since(before.1),
    };
    let before = into.samples.len();
    for stat in &stats {
        let samples = stat["samples"].as_array().into_iter().flatten();
        into.samples.extend(samples.filter_map(Value::as_u64));
    }
    let last = stats
        .iter()
        .map(|s| u64_of(s, "last_recv_ns"))
        .max()
        .unwrap_or(0);
    into.window_ns += last.saturating_sub(u64_of(&pushed, "start_ns"));
    // Sorting this turn's samples in place is harmless: the pooled summary sorts them all again.
    let turn = Summary::of(&mut into.samples[before..]);
    progress(&format!(
        "d: {} turn, {n} subscribers: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        pusher.name,
        turn.p50_ns as f64 / 1e3,
        turn.p99_ns as f64 / 1e3,
        turn.max_ns as f64 / 1e3
    ));
    into.delivered += (into.samples.len() - before) as u64;
    into.expected += expected;
    Ok(())
}

/// d (fan-out) and e (memory): one fresh leader and 64 followers (memory is read now), then one push
/// server and 64 push clients; the fan-out of each takes turns with the other's.
async fn fanout_phases(opts: &Opts, results: &mut Results) -> Res<()> {
    let most = opts.fanout.iter().copied().max().unwrap_or(64).max(64);
    let port = try_free_port()?.to_string();
    let port_args = [
        "--port".to_owned(),
        port,
        "--transport".to_owned(),
        opts.transport.clone(),
    ];
    let mut leader = Child::spawn("leader".into(), "leader", &port_args).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leader_idle = leader.rss_kib().unwrap_or(0);
    progress(&format!(
        "e: leader pid {} alone: {leader_idle} KiB; starting {most} followers",
        leader.pid
    ));
    let mut followers = Child::spawn_many("follower", "follower", &port_args, most).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leader_full = leader.rss_kib().unwrap_or(0);
    let follower_rss = |followers: &[Child]| {
        followers
            .iter()
            .filter_map(Child::rss_kib)
            .max()
            .unwrap_or(0)
    };
    let idle_follower = follower_rss(&followers);
    progress(&format!(
        "e: leader with {most} followers: {leader_full} KiB; largest follower {idle_follower} KiB"
    ));

    if opts.has('d') {
        let mut server = Child::spawn("push-server".into(), "push-server", &[]).await?;
        let push_args = ["--port".to_owned(), server.ready["port"].to_string()];
        let mut clients = Child::spawn_many("push-client", "push-client", &push_args, most).await?;
        while u64_of(
            &server.ask(json!({ "cmd": "clients" }), SLACK).await?,
            "clients",
        ) < most as u64
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rounds = opts.rounds.max(1);
        let items = (opts.fanout_items / rounds as u64).max(1);
        for &n in &opts.fanout {
            progress(&format!(
                "d: fan-out to {n} followers and to {n} raw push clients, {rounds} turns of {items} items"
            ));
            let (mut ours, mut raw) = (Fanout::default(), Fanout::default());
            for _ in 0..rounds {
                fanout(opts, &mut leader, &mut followers, n, items, &mut ours).await?;
                fanout(opts, &mut server, &mut clients, n, items, &mut raw).await?;
            }
            let (ours_s, raw_s) = (
                Summary::of(&mut ours.samples),
                Summary::of(&mut raw.samples),
            );
            results.costs.push(CostRow {
                label: format!("d. fan-out to {n}, per delivered item"),
                ours: ours.spent.per_call(ours.delivered as f64),
                raw: raw.spent.per_call(raw.delivered as f64),
            });
            let p50 = Figure::new(
                &format!("d.fanout_p50_{n}"),
                &format!("d. fan-out latency p50, {n} followers"),
                Unit::Nanos,
                ours_s.p50_ns as f64,
                Some(raw_s.p50_ns as f64),
            );
            let mut p99 = Figure::new(
                &format!("d.fanout_p99_{n}"),
                &format!("d. fan-out latency p99, {n} followers"),
                Unit::Nanos,
                ours_s.p99_ns as f64,
                Some(raw_s.p99_ns as f64),
            );
            if n == 64 {
                p99 = p99.target(Target::RatioAtMost { value: 1.5 });
            }
            let rate = Figure::new(
                &format!("d.fanout_rate_{n}"),
                &format!(
                    "d. items delivered/s, {n} followers @ {}/s",
                    opts.fanout_rate
                ),
                Unit::PerSecond,
                ours.per_second(),
                Some(raw.per_second()),
            )
            .note(
                ours.lost()
                    .or_else(|| raw.lost().map(|l| format!("raw: {l}"))),
            );
            results.figures.extend([p50, p99, rate]);
        }
        stop_all(clients).await;
        server.stop().await;
    }
    let busy_follower = follower_rss(&followers);
    let leader_busy = leader.rss_kib().unwrap_or(0);
    stop_all(followers).await;
    leader.stop().await;

    if opts.has('e') {
        let per_follower = leader_full.saturating_sub(leader_idle) as f64 / most as f64;
        results.figures.push(Figure::new(
            "e.leader_rss_idle",
            "e. leader RSS, no follower",
            Unit::KiB,
            leader_idle as f64,
            None,
        ));
        results.figures.push(Figure::new(
            "e.leader_rss_followers",
            &format!("e. leader RSS, {most} idle followers"),
            Unit::KiB,
            leader_full as f64,
            None,
        ));
        if opts.has('d') {
            results.figures.push(Figure::new(
                "e.leader_rss_after_fanout",
                &format!("e. leader RSS, {most} subscribed followers"),
                Unit::KiB,
                leader_busy as f64,
                None,
            ));
        }
        results.figures.push(
            Figure::new(
                "e.leader_per_follower",
                "e. leader memory per follower",
                Unit::KiB,
                per_follower,
                None,
            )
            .target(Target::AtMost { value: 64.0 }),
        );
        results.figures.push(
            Figure::new(
                "e.follower_rss",
                "e. follower RSS (largest)",
                Unit::KiB,
                idle_follower.max(busy_follower) as f64,
                None,
            )
            .target(Target::AtMost {
                value: 8.0 * 1024.0,
            }),
        );
    }
    Ok(())
}

/// The arguments of a cluster process: the port and the transport.
fn cluster_args(opts: &Opts) -> Res<Vec<String>> {
    Ok(vec![
        "--port".to_owned(),
        try_free_port()?.to_string(),
        "--transport".to_owned(),
        opts.transport.clone(),
    ])
}

/// How the leader leaves in phases f and g.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// `kill -9`: failover (f).
    Killed,
    /// SIGTERM: the member closes its client, and the leader hands over (g).
    Terminated,
}

/// f (failover) and g (handover): per rep, a leader and four followers on a fresh port, four lanes
/// each calling `pid()` (or, `idempotent`, `pid_idempotent()`) with a 1 ms pause; the leader
/// leaves (`kill -9`, or SIGTERM); then what the survivors saw.
async fn failover_phase(
    opts: &Opts,
    results: &mut Results,
    how: Leave,
    idempotent: bool,
) -> Res<()> {
    const SURVIVORS: usize = 4;
    let (mut elected, mut recovered, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    // The figures' id prefix, and their label's.
    let (phase, what) = match (how, idempotent) {
        (Leave::Killed, false) => ("f", "f. failover"),
        (Leave::Killed, true) => ("f.idempotent", "f. failover, pid idempotent"),
        (Leave::Terminated, _) => ("g", "g. handover"),
    };
    let method = if idempotent {
        "pid_idempotent()"
    } else {
        "pid()"
    };
    progress(&format!(
        "{what}, {} reps: 1 leader + {SURVIVORS} followers, 4 lanes each calling {method} every 1 ms, {} of the leader",
        opts.reps,
        if how == Leave::Killed {
            "kill -9"
        } else {
            "SIGTERM"
        }
    ));
    for rep in 0..opts.reps {
        let args = cluster_args(opts)?;
        let mut leader = Child::spawn("member0".into(), "member", &args).await?;
        if leader.ready["leader"] != true {
            return Err("the first member did not lead".into());
        }
        let mut members = Child::spawn_many("member", "member", &args, SURVIVORS).await?;
        let lanes = json!({ "cmd": "lanes", "lanes": 4, "pause_ms": 1, "idempotent": idempotent });
        leader.ask(lanes.clone(), SLACK).await?;
        ask_all(&mut members, &lanes, SLACK).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let old = leader.pid;
        let kill_ns = now_ns();
        match how {
            Leave::Killed => leader.process.start_kill()?,
            Leave::Terminated => {
                let sent = Command::new("kill")
                    .args(["-TERM", &old.to_string()])
                    .status()
                    .await?;
                if !sent.success() {
                    return Err(format!("kill -TERM {old} failed").into());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let reports = ask_all(&mut members, &json!({ "cmd": "report" }), SLACK).await?;
        stop_all(members).await;
        let _ = leader.process.wait().await;
        let Some(figures) = crate::failover::read_rep(&reports, old, kill_ns) else {
            progress(&format!(
                "{what}: rep {rep}: a survivor was never served again: {reports:?}"
            ));
            failed.push(u64::MAX);
            continue;
        };
        elected.push(figures.elected_ns);
        recovered.push(figures.recovered_ns);
        failed.push(figures.failed);
        for (kind, n) in figures.errors {
            *errors.entry(kind).or_default() += n;
        }
    }
    let (elected_s, recovered_s) = (Summary::of(&mut elected), Summary::of(&mut recovered));
    let mut failed_sorted = failed.clone();
    failed_sorted.sort_unstable();
    let median_failed = failed_sorted
        .get(failed_sorted.len() / 2)
        .copied()
        .unwrap_or(0);
    progress(&format!(
        "{what}: failed calls per rep {failed:?}; by kind {errors:?}"
    ));
    let figure = |id: &str, label: &str, unit: Unit, v: u64| {
        Figure::new(
            &format!("{phase}.{id}"),
            &format!("{what}: {label}"),
            unit,
            v as f64,
            None,
        )
    };
    let mut recovered_p50 = figure(
        "recovered_p50",
        "all survivors served again, median",
        Unit::Nanos,
        recovered_s.p50_ns,
    );
    let mut recovered_p99 = figure(
        "recovered_p99",
        "all survivors served again, p99",
        Unit::Nanos,
        recovered_s.p99_ns,
    );
    let mut failed_total = figure(
        "failed_total",
        &format!("failed calls in {} reps", opts.reps),
        Unit::Count,
        failed.iter().filter(|&&f| f != u64::MAX).sum::<u64>(),
    );
    match how {
        Leave::Killed => {
            recovered_p50 = recovered_p50.target(Target::AtMost { value: 3e6 });
            recovered_p99 = recovered_p99.target(Target::AtMost { value: 10e6 });
        }
        Leave::Terminated => failed_total = failed_total.target(Target::AtMost { value: 0.0 }),
    }
    results.figures.extend([
        figure(
            "elected_p50",
            "successor serves, median",
            Unit::Nanos,
            elected_s.p50_ns,
        ),
        figure(
            "elected_p99",
            "successor serves, p99",
            Unit::Nanos,
            elected_s.p99_ns,
        ),
        recovered_p50,
        recovered_p99,
        figure(
            "recovered_max",
            "all survivors served again, max",
            Unit::Nanos,
            recovered_s.max_ns,
        ),
        figure(
            "failed_p50",
            "failed calls per rep, median (of 16 lanes)",
            Unit::Count,
            median_failed,
        ),
        failed_total,
    ]);
    Ok(())
}

/// h (late subscriber): a leader, and a follower subscribed so that the topic is live and its
/// latest item cached; then, per rep, a new process subscribes and times its first item from the
/// start of its `create()`.
async fn late_subscriber_phase(opts: &Opts, results: &mut Results) -> Res<()> {
    let args = cluster_args(opts)?;
    let mut leader = Child::spawn("leader".into(), "leader", &args).await?;
    let mut follower = Child::spawn("follower".into(), "follower", &args).await?;
    follower.ask(json!({ "cmd": "subscribe" }), SLACK).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    leader
        .ask(json!({ "cmd": "push", "count": 1 }), SLACK)
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    progress(&format!(
        "h: late subscriber, {} reps: a new process subscribes to a topic with a cached item",
        opts.reps
    ));
    let (mut first, mut created) = (Vec::new(), Vec::new());
    for rep in 0..opts.reps {
        let late = Child::spawn(format!("late{rep}"), "late", &args).await?;
        first.push(u64_of(&late.ready, "first_item_ns"));
        created.push(u64_of(&late.ready, "create_ns"));
        late.stop().await;
    }
    follower.stop().await;
    leader.stop().await;
    let (first_s, created_s) = (Summary::of(&mut first), Summary::of(&mut created));
    results.figures.extend([
        Figure::new(
            "h.create_p50",
            "h. late subscriber: create(), median",
            Unit::Nanos,
            created_s.p50_ns as f64,
            None,
        ),
        Figure::new(
            "h.first_item_p50",
            "h. late subscriber: create() to the cached item, median",
            Unit::Nanos,
            first_s.p50_ns as f64,
            None,
        ),
        Figure::new(
            "h.first_item_p99",
            "h. late subscriber: create() to the cached item, p99",
            Unit::Nanos,
            first_s.p99_ns as f64,
            None,
        ),
    ]);
    Ok(())
}
