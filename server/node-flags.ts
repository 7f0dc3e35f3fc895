/**
 * Node flags Gatehouse's server runs with (`gatehouse start` through server/bin.js, `npm start`, the benchmark).
 *
 * V8 sizes the young generation from the machine's memory: on a machine with much memory a busy Gatehouse lets its RSS
 * climb far above what it uses. Semi-spaces of 8 MiB keep RSS near the working set with no measurable loss of
 * throughput (the figures: bench/README.md, "Node flags of the server"). The same flag is written out where TypeScript
 * cannot be imported: server/bin.js, which replaces its process with one that has the flag (process.execve: same PID,
 * so signals reach the server; Node 22.15+, not Windows, where the server runs without it) for `gatehouse start` and
 * `npm start`.
 */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=8'] as const;
