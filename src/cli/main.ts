#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { FileUserStore } from '../auth/file-user-store.js';
import { loadConfig } from '../config.js';
import { runCli } from './run-cli.js';

/**
 * The `notify` entry point: the only CLI module that reads `process.env`. Everything else is in
 * `run-cli.ts` and the command modules, which tests drive in-process.
 */
process.exitCode = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  openServices: () => {
    const config = loadConfig(process.env, (file) => readFileSync(file, 'utf8'));
    const store = new FileUserStore({ file: config.usersFile });
    return {
      store,
      scryptLogN: config.scryptLogN,
      knownRoles: Object.keys(config.roles),
      close: () => store.close(),
    };
  },
});
