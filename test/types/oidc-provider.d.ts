// oidc-provider 8 ships no types (and @types/oidc-provider describes another major version); the
// tests use a small, loosely typed surface of it.
declare module 'oidc-provider' {
  export class Provider {
    constructor(issuer: string, configuration: unknown);
    callback(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
  }
}
