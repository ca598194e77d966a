import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config.js';

/** The ConfigError `loadConfig` throws for `env`; fails the test when it loads. */
export function configError(env: Record<string, string>, readFile?: (file: string) => string): ConfigError {
  try {
    loadConfig(env, readFile);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}
