// Socket writes made while the event loop handles one round of I/O go out together, once that round is done.
//
// Why: on a loaded proxy, every response to a client and every request to an upstream is one write to a socket whose
// reader (wrk, the app, the next hop) runs on another CPU. Written at once, each write finds that reader asleep again
// and pays to wake it (on the 2-CPU VM the benchmark runs on, a write to an idle reader cost ~24 µs of system time
// against ~13 µs to a busy one). Held until the round's I/O callbacks have all run (a setImmediate), the writes leave
// back to back: the first wakes the reader, the others find it awake. Measured (bench/ab.ts, same run): mesh-hop
// +17 % requests per second, mesh-identity +25 % (docs/performance.md). The hold is bounded by one round of the event
// loop; nothing waits for a timer.
//
// Held writes are Node's own: holdWrites corks the socket before a response or request is written (so write() still
// buffers in order, reports backpressure and emits 'drain'), and the flush uncorks it. end() uncorks by itself; a
// socket about to be destroyed must be flushed first (destroySocket), or the bytes written in this round would be lost
// where they used to be sent.
//
// LOCKGATE_WRITE_BATCH=0 turns it off (a diagnostic switch for comparing; nothing else reads it).
import type { Socket } from 'node:net';

const ENABLED = process.env.LOCKGATE_WRITE_BATCH !== '0';
const held: Socket[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  // Swapped out first: a write made while flushing (a 'drain' listener) starts the next batch.
  const list = held.splice(0);
  for (let i = 0; i < list.length; i++) release(list[i]);
}

function release(s: Socket): void {
  while (s.writableCorked > 0 && !s.destroyed) s.uncork();
}

/**
 * Holds what is written to `socket` from now until the end of this round of I/O, then sends it with the other held
 * sockets' writes (nothing when batching is off, or the socket is corked already: then it is held, or being written).
 */
export function holdWrites(socket: Socket): void {
  if (!ENABLED || socket.writableCorked !== 0 || socket.destroyed) return;
  socket.cork();
  held.push(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

/** Sends what this round wrote to `socket`, then destroys it. */
export function destroySocket(socket: Socket): void {
  release(socket);
  socket.destroy();
}
