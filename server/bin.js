#!/usr/bin/env node
// The `gatehouse` command: runs server/cli.ts through tsx's loader (until the package ships compiled JavaScript).
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
