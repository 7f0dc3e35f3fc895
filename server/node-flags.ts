/**
 * Node flags Gatehouse's server runs with (`gatehouse start` through server/bin.js, `npm start`, the benchmark).
 *
 * V8 sizes the young generation from the machine's memory: on a 24 GiB machine a busy Gatehouse let its RSS climb
 * about 100 MiB above what it uses (139 → 239 MiB over 470 login flows, with about 50 MiB of heap live after a GC).
 * Semi-spaces of 8 MiB keep RSS near the working set (124 → 166 MiB for the same load) with no measurable loss of
 * throughput (bench/README.md). The same flag is written out where TypeScript cannot be imported: server/bin.js, which
 * replaces its process with one that has the flag (process.execve: same PID, so signals reach the server; Node 22.15+,
 * not Windows, where the server runs without it) for `gatehouse start` and `npm start`.
 */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=8'] as const;
