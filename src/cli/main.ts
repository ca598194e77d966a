#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { openAccountServices } from './account-services.js';
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
  readFile: (file) => readFileSync(file, 'utf8'),
  openServices: (options) =>
    openAccountServices({ env: process.env, stderr: process.stderr, readFile: (file) => readFileSync(file, 'utf8') }, options),
  serve: async (options) => {
    if (options.dataDir !== undefined) process.env.DATA_DIR = path.resolve(options.dataDir);
    // As NOTIFY_CONFIG, which the server reads; `--config` wins over one already set.
    if (options.configFile !== undefined) process.env.NOTIFY_CONFIG = path.resolve(options.configFile);
    // The server's own entry point: it reads the environment, listens, and exits on SIGTERM/SIGINT.
    await import('../main.js');
  },
});
