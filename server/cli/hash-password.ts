/** `gatehouse hash-password [PASSWORD]`: a PHC string for accounts[].passwordHash in a configuration file. */
import { hashPassword } from '../provider/passwords.js';
import type { Command } from './command.js';
import { commandConfig } from './config.js';
import { UsageError } from './errors.js';
import { readStdin } from './stdin.js';

export const HASH_PASSWORD_USAGE = `Usage: gatehouse hash-password [PASSWORD] [--config FILE]

Prints a PHC string for accounts[].passwordHash with the configured passwordHashing (argon2id m=19456,t=2,p=1 by
default: $argon2id$v=19$m=19456,t=2,p=1$...). Without an argument the password is read from standard input (safer: an
argument shows in the process list).`;

export const hashPasswordCommand: Command = {
  name: 'hash-password',
  usage: HASH_PASSWORD_USAGE,
  async run(args, values) {
    const password = args[0] ?? (await readStdin());
    if (!password) throw new UsageError('hash-password: give a password as an argument or on standard input');
    const config = commandConfig(values);
    console.log(await hashPassword(password, config.passwordHashing));
    return 0;
  },
};
