import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLIENT_CONFIG = path.join(ROOT, 'tsconfig.client.json');

/** Declarations of one file by qualified name (`Class.member` for members), with their modifiers. */
function declarations(sourceFile: ts.SourceFile): Map<string, ts.Declaration> {
  const found = new Map<string, ts.Declaration>();
  const visit = (node: ts.Node, parent: string | undefined) => {
    const name = (node as ts.NamedDeclaration).name;
    const named = name !== undefined && (ts.isIdentifier(name) || ts.isPrivateIdentifier(name) || ts.isStringLiteral(name));
    const qualified = named ? (parent === undefined ? name.text : `${parent}.${name.text}`) : undefined;
    if (qualified !== undefined && !ts.isParameter(node)) found.set(qualified, node as ts.Declaration);
    if (ts.isVariableStatement(node) || ts.isVariableDeclarationList(node)) {
      ts.forEachChild(node, (child) => visit(child, parent));
    } else if (ts.isClassLike(node) || ts.isInterfaceDeclaration(node) || ts.isTypeLiteralNode(node) || ts.isModuleBlock(node)) {
      ts.forEachChild(node, (child) => visit(child, qualified ?? parent));
    } else if (ts.isTypeAliasDeclaration(node) || ts.isModuleDeclaration(node)) {
      ts.forEachChild(node, (child) => visit(child, qualified));
    }
  };
  ts.forEachChild(sourceFile, (node) => visit(node, undefined));
  return found;
}

const isInternal = (node: ts.Node) => ts.getJSDocTags(node).some((tag) => tag.tagName.text === 'internal');

/**
 * The published client declarations (`tsc -p tsconfig.client.json`, as `npm run build` makes them)
 * are the package's public surface: nothing marked `@internal` in the sources, and no private
 * member's name, may reach them (issue 9, section 5).
 */
describe('the client package declarations (tsconfig.client.json)', function () {
  this.timeout(120_000);
  let outDir: string;
  let emitted: Map<string, ts.SourceFile>;
  let sources: readonly ts.SourceFile[];

  before(() => {
    outDir = mkdtempSync(path.join(os.tmpdir(), 'notify-client-dts-'));
    const parsed = ts.getParsedCommandLineOfConfigFile(
      CLIENT_CONFIG,
      { outDir, sourceMap: false },
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
          throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
        },
      },
    );
    if (parsed === undefined) throw new Error('tsconfig.client.json could not be read');
    const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
    const result = program.emit();
    const problems = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics];
    expect(problems.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).to.deep.equal([]);
    sources = program.getSourceFiles().filter((file) => file.fileName.startsWith(path.join(ROOT, 'src', 'client')));
    emitted = new Map();
    const clientOut = path.join(outDir, 'client');
    for (const name of readdirSync(clientOut).filter((file) => file.endsWith('.d.ts'))) {
      const file = path.join(clientOut, name);
      emitted.set(name, ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true));
    }
  });
  after(() => rmSync(outDir, { recursive: true, force: true }));

  it('emits one declaration file per client source file', () => {
    expect([...emitted.keys()].sort()).to.deep.equal(sources.map((file) => path.basename(file.fileName).replace(/\.ts$/, '.d.ts')).sort());
  });

  it('ships no declaration that the sources mark @internal', () => {
    const internal: string[] = [];
    const leaked: string[] = [];
    for (const source of sources) {
      const dts = emitted.get(path.basename(source.fileName).replace(/\.ts$/, '.d.ts'))!;
      const shipped = declarations(dts);
      for (const [name, node] of declarations(source)) {
        if (!isInternal(node)) continue;
        internal.push(name);
        if (shipped.has(name)) leaked.push(`${path.basename(source.fileName)}: ${name}`);
      }
    }
    // The stream's host interface and the worker protocol are internal: a test that found none would prove nothing.
    expect(internal).to.include.members(['StreamConnection', 'StreamHost', 'TabMessage']);
    expect(leaked).to.deep.equal([]);
    for (const [name, dts] of emitted) expect(dts.text, name).to.not.contain('@internal');
  });

  it('keeps the state of every class in #private fields, so no private member name ships', () => {
    const named: string[] = [];
    for (const [file, dts] of emitted) {
      for (const [name, node] of declarations(dts)) {
        const flags = ts.getCombinedModifierFlags(node);
        if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) named.push(`${file}: ${name}`);
      }
    }
    expect(named).to.deep.equal([]);
  });

  it('type-checks on its own, as a consumer without Node types compiles it', () => {
    const program = ts.createProgram({
      rootNames: [path.join(outDir, 'client', 'index.d.ts')],
      options: {
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
        types: [],
      },
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).to.deep.equal([]);
  });
});
