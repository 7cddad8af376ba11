/**
 * For crash tests: transpiles store adapters (and their relative imports) to plain ESM in `outDir`,
 * so a bare `node` child process can load them; `outDir/node_modules` links to the project's packages.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function transpileForChild(outDir: string, entries: string[]): void {
  const pending = [...entries];
  const done = new Set<string>();
  while (pending.length > 0) {
    const rel = pending.pop()!;
    if (done.has(rel)) continue;
    done.add(rel);
    const source = readFileSync(join(projectRoot, rel), 'utf8');
    const js = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    }).outputText;
    const out = join(outDir, rel.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, js);
    for (const m of js.matchAll(/from\s+'(\.{1,2}\/[^']+)\.js'/g)) {
      pending.push(join(dirname(rel), `${m[1]}.ts`));
    }
  }
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(projectRoot, 'node_modules'), join(outDir, 'node_modules'), 'dir');
}
