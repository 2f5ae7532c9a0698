'use strict';
// A Node follower of a Rust leader (tests/interop.rs): joins the channel `registry` on the port
// given, makes the calls the test names, then subscribes to `svc` until it has seen two items, and
// prints one JSON line per outcome.
const cluster = require('cluster-client');

// The methods the follower delegates to the leader; the bodies never run in a follower.
class Registry {
  async echo() {}
  async lookup() {}
  async nope() {}
  subscribe() {}
  unSubscribe() {}
}

function print(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function main() {
  const port = Number(process.argv[2]);
  const client = cluster(Registry, {
    port,
    name: 'registry',
    isLeader: false,
    responseTimeout: 3000,
    maxWaitTime: 10000,
  })
    .delegate('echo', 'invoke')
    .delegate('lookup', 'invoke')
    .delegate('nope', 'invoke')
    .create();
  await client.ready();
  print({ event: 'ready' });
  const calls = [
    ['echo', ['héllo | wörld ^ 100%']],
    ['lookup', ['svc']],
    ['nope', [1, true, null]],
  ];
  for (const [method, args] of calls) {
    try {
      print({ method, ok: await client[method](...args) });
    } catch (err) {
      print({ method, error: { name: err.name, message: err.message, code: err.code } });
    }
  }
  // Two items of the leader's watch of `svc`: the current endpoints, then the test's change.
  await new Promise(resolve => {
    let seen = 0;
    const listener = endpoints => {
      seen += 1;
      print({ item: endpoints, seen });
      if (seen === 2) {
        client.unSubscribe('svc', listener);
        resolve();
      }
    };
    client.subscribe('svc', listener);
  });
  await client.close();
  print({ event: 'closed' });
}

main().then(() => process.exit(0), err => {
  print({ fatal: String(err && err.stack) });
  process.exit(1);
});
