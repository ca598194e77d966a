import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Copies what a fresh clone would hold (the files git tracks, and new ones it does not ignore)
 * to `dest`: no node_modules, no dist/, no data/.
 */
export function copyCheckout(dest: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((file) => file !== '' && existsSync(path.join(ROOT, file)));
  for (const file of files) {
    mkdirSync(path.dirname(path.join(dest, file)), { recursive: true });
    cpSync(path.join(ROOT, file), path.join(dest, file));
  }
}

/**
 * The environment for a nested npm or node process: ours without the `npm_*` variables that
 * `npm test` sets (they would point the nested npm at this project's configuration).
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.toLowerCase().startsWith('npm_')) env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * better-sqlite3 compiles SQLite on every fresh install (about 50 CPU-seconds, minutes on a busy
 * machine). The installs these tests make use this checkout's compiled module instead: packed in
 * `dir` as the prebuilt binary that the package's own install step (prebuild-install) looks for
 * in a local folder before anything else. The same install path, without the compiler and
 * without a download; the checkout's own `npm ci` is what compiled it. Returns the environment
 * that points an install at it.
 */
export function nativePrebuildEnv(dir: string): Record<string, string> {
  const module = path.join(ROOT, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(readFileSync(path.join(module, 'package.json'), 'utf8')) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-czf', path.join(dir, name), '-C', module, 'build/Release/better_sqlite3.node']);
  return { npm_config_build_from_source: 'false', npm_config_better_sqlite3_local_prebuilds: dir };
}

/** Runs a command to completion; throws with its output when it fails. */
export function run(command: string, args: readonly string[], options: { cwd: string; env?: Record<string, string> }): string {
  try {
    return execFileSync(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${options.cwd}:\n${stdout ?? ''}${stderr ?? ''}`, { cause: error });
  }
}

/** A started server process, its output so far, and its exit. */
export interface ServerProcess {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
  /** Resolves with the port once the server logged `listening`. */
  listening(timeoutMs?: number): Promise<number>;
  /** Sends `signal` to the whole process group. */
  stop(signal?: NodeJS.Signals): void;
}

/**
 * Starts a command in a process group of its own (`detached`), so `stop` reaches the server
 * behind a launcher such as npx, which does not pass signals on to its child.
 */
export function startProcess(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string> },
): ServerProcess {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    output: () => output,
    exited,
    stop(signal = 'SIGTERM') {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // the group is gone already
      }
    },
    async listening(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const match = /"address":"https?:\/\/[^"]+:(\d+)","alg"/.exec(output);
        if (match) return Number(match[1]);
        if (done) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`the server did not start:\n${output}`);
    },
  };
}
