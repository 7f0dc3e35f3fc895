/**
 * The `gatehouse` command (server/bin.js runs this file, or its compiled dist/server/cli.js): `gatehouse --help` lists
 * the commands; each lives in server/cli/ with its help text (server/cli/main.ts finds the one to run).
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid configuration.
 */
import { KEEP_RUNNING } from './cli/command.js';
import { main } from './cli/main.js';

const code = await main(process.argv.slice(2));
if (code !== KEEP_RUNNING) process.exitCode = code;
