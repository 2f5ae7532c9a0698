'use strict';
// A client of the toy upstream registry (crate `cluster-client-registry-fixture`), for a Node
// process that leads: one TCP connection, one JSON object per line each way. Requests carry an
// `id` and an `op`; answers carry the same `id` and `ok` or `error`; a watched service's changes
// arrive as `{"event":"update","service","endpoints","version"}`.
const net = require('net');

class Upstream {
  constructor(addr) {
    const [ host, port ] = splitAddr(addr);
    this._nextId = 1;
    this._waiting = new Map();
    this._watchers = new Map();
    this._buffered = '';
    this._socket = net.connect({ host, port });
    this._socket.setEncoding('utf8');
    this._connected = new Promise((resolve, reject) => {
      this._socket.once('connect', resolve);
      this._socket.once('error', reject);
    });
    this._socket.on('data', chunk => this._onData(chunk));
    this._socket.on('error', () => {});
    this._socket.on('close', () => {
      for (const { reject } of this._waiting.values()) {
        reject(new Error('the upstream connection closed'));
      }
      this._waiting.clear();
    });
  }

  // Sends `op` with `fields`; resolves with `ok`, rejects with `error`.
  async request(op, fields) {
    await this._connected;
    const id = this._nextId++;
    const answer = new Promise((resolve, reject) => this._waiting.set(id, { resolve, reject }));
    this._socket.write(JSON.stringify(Object.assign({ id, op }, fields)) + '\n');
    return answer;
  }

  // Calls `listener` with the endpoints of `service` now and on every change.
  watch(service, listener) {
    const listeners = this._watchers.get(service) || [];
    listeners.push(listener);
    this._watchers.set(service, listeners);
    if (listeners.length === 1) {
      this.request('watch', { service }).catch(() => {});
    }
  }

  close() {
    this._socket.end();
  }

  _onData(chunk) {
    this._buffered += chunk;
    let newline;
    while ((newline = this._buffered.indexOf('\n')) >= 0) {
      const line = this._buffered.slice(0, newline);
      this._buffered = this._buffered.slice(newline + 1);
      if (line.trim()) {
        this._onMessage(JSON.parse(line));
      }
    }
  }

  _onMessage(message) {
    if (message.event === 'update') {
      for (const listener of this._watchers.get(message.service) || []) {
        listener(message.endpoints);
      }
      return;
    }
    const waiting = this._waiting.get(message.id);
    if (!waiting) {
      return;
    }
    this._waiting.delete(message.id);
    if ('error' in message) {
      waiting.reject(Object.assign(new Error(message.error), { name: 'Upstream' }));
    } else {
      waiting.resolve(message.ok === undefined ? null : message.ok);
    }
  }
}

function splitAddr(addr) {
  const colon = addr.lastIndexOf(':');
  return [ addr.slice(0, colon), Number(addr.slice(colon + 1)) ];
}

module.exports = Upstream;
