'use strict';
// A Node member of a mixed cluster (tests/interop.rs), on the pinned npm package cluster-client.
// It speaks the same stdin/stdout lines as the Rust test worker (`cc-worker`), for the commands
// the Node package can do, so that one test drives both languages alike.
//
//   node worker.js --port P --upstream HOST:PORT [--role any|leader|follower]
//                  [--name CHANNEL] [--heartbeat-ms N] [--response-ms N]
//
// When it leads, its real client is a connection to the toy upstream registry (`upstream.js`),
// as a Rust leader's is. It prints `{"event":"ready","leader","pid"}`, then one line per answer
// (`{"id","ok"}` or `{"id","err","kind"}`), per subscription item (`{"sub","item"}`) and per
// warning or error the package logs or emits (`{"event":"log"|"error",...}`). It exits when its
// stdin closes.
const EventEmitter = require('events');
const readline = require('readline');
const cluster = require('cluster-client');
const Upstream = require('./upstream');

function print(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

function parseArgs(argv) {
  const opts = { name: 'registry', role: 'any', heartbeatMs: 20000, responseMs: 3000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [ flag, value ] = [ argv[i], argv[i + 1] ];
    if (flag === '--port') opts.port = Number(value);
    else if (flag === '--upstream') opts.upstream = value;
    else if (flag === '--name') opts.name = value;
    else if (flag === '--role') opts.role = value;
    else if (flag === '--heartbeat-ms') opts.heartbeatMs = Number(value);
    else if (flag === '--response-ms') opts.responseMs = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!opts.port || !opts.upstream) {
    throw new Error('--port and --upstream are required');
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// The real client, built only in the process that leads: the same registry as the Rust trait
// `Registry` (src/registry_service.rs), under the same method names.
class Registry extends EventEmitter {
  constructor() {
    super();
    this.upstream = new Upstream(opts.upstream);
  }
  async lookup(service) {
    return this.upstream.request('lookup', { service });
  }
  async echo(payload) {
    return this.upstream.request('echo', { payload });
  }
  // A Node leader does not pause: the JavaScript error its Rust followers cannot hold.
  async pause() {
    throw Object.assign(new Error('a Node leader does not pause'), { name: 'NotSupported', code: 'not_supported' });
  }
  // Not a method of the Rust trait: a Rust leader answers it as unknown.
  async nope() {
    throw new Error('nope is not served');
  }
  async report(note) {
    await this.upstream.request('register', { service: 'reports', endpoint: { host: note, port: 0 } });
  }
  async register(registration) {
    await this.upstream.request('register', registration);
  }
  subscribe(service, listener) {
    this.upstream.watch(service, listener);
  }
  unSubscribe() {}
  close() {
    this.upstream.close();
  }
}

// Warnings and errors the package logs, as lines the test can count.
const logger = {
  debug() {},
  info() {},
  warn(...args) { print({ event: 'log', level: 'warn', message: require('util').format(...args) }); },
  error(err) { print({ event: 'log', level: 'error', message: String(err && (err.stack || err)) }); },
};

const client = cluster(Registry, {
  port: opts.port,
  name: opts.name,
  isLeader: { any: undefined, leader: true, follower: false }[opts.role],
  heartbeatInterval: opts.heartbeatMs,
  responseTimeout: opts.responseMs,
  maxWaitTime: 10000,
  logger,
})
  .delegate('lookup', 'invoke')
  .delegate('echo', 'invoke')
  .delegate('pause', 'invoke')
  .delegate('nope', 'invoke')
  .delegate('report', 'invokeOneway')
  .delegate('register', 'publish')
  .create();

client.on('error', err => print({ event: 'error', name: err.name, message: err.message }));

// The listener of each subscription, by its `sub` name.
const subs = new Map();

function answer(id, promise) {
  promise.then(
    ok => print({ id, ok: ok === undefined ? null : ok }),
    err => print({ id, err: err.message, kind: err.name, code: err.code }));
}

function run(command) {
  const { id } = command;
  switch (command.cmd) {
    case 'status':
      print({ id, leader: client.isClusterClientLeader, epoch: 0, pid: process.pid });
      break;
    case 'echo':
      answer(id, client.echo(command.payload));
      break;
    case 'lookup':
      answer(id, client.lookup(command.service));
      break;
    case 'pause':
      answer(id, client.pause(command.ms));
      break;
    case 'nope':
      answer(id, client.nope());
      break;
    case 'report':
      client.report(command.note);
      print({ id, ok: null });
      break;
    case 'register':
      client.register({ service: command.service, endpoint: { host: command.host, port: command.port } });
      print({ id, ok: null });
      break;
    case 'watch': {
      const listener = item => print({ sub: command.sub, item });
      subs.set(command.sub, { service: command.service, listener });
      client.subscribe(command.service, listener);
      break;
    }
    case 'unwatch': {
      const sub = subs.get(command.sub);
      if (sub) {
        subs.delete(command.sub);
        client.unSubscribe(sub.service, sub.listener);
      }
      print({ sub: command.sub, unwatched: true });
      break;
    }
    default:
      print({ id, err: `unknown command ${command.cmd}`, kind: 'bad_command' });
  }
}

async function main() {
  await client.ready();
  print({ event: 'ready', leader: client.isClusterClientLeader, pid: process.pid });
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', line => {
    if (line.trim()) {
      run(JSON.parse(line));
    }
  });
  lines.on('close', async () => {
    await client.close();
    process.exit(0);
  });
}

main().catch(err => {
  print({ event: 'failed', name: err && err.name, message: err && err.message, code: err && err.code });
  process.exit(1);
});
