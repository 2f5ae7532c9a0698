'use strict';
// A Node leader for Rust followers (tests/interop.rs): leads the channel `registry` on the port
// given with an in-memory real client, prints `{"event":"ready"}`, and serves until its stdin
// closes.
const EventEmitter = require('events');
const cluster = require('cluster-client');

class Registry extends EventEmitter {
  async echo(payload) {
    return payload;
  }
  async lookup(service) {
    if (service === 'missing') {
      const err = new Error(`no service ${service}`);
      err.name = 'NotFound';
      err.code = 'not_found';
      throw err;
    }
    return [{ host: '10.0.0.9', port: 7000 }];
  }
  subscribe(reg, listener) {
    listener([{ host: 'sub.' + reg, port: 1 }]);
  }
  unSubscribe() {}
}

function print(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function main() {
  const port = Number(process.argv[2]);
  const client = cluster(Registry, { port, name: 'registry', isLeader: true })
    .delegate('echo', 'invoke')
    .delegate('lookup', 'invoke')
    .create();
  await client.ready();
  print({ event: 'ready' });
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await client.close();
    process.exit(0);
  });
}

main().catch(err => {
  print({ fatal: String(err && err.stack) });
  process.exit(1);
});
