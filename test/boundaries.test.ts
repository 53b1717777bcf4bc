/** The layering the design promises, checked on the source itself. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
    (m) => (m[1] ?? m[2]) as string,
  );
}

describe('boundaries', () => {
  it('the core imports neither express nor koa', () => {
    const offenders = sources('src').flatMap((file) =>
      imports(file)
        .filter((spec) => /^(express|koa)(\/|$)|^@koa\//.test(spec))
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it('adapters import only the public entry of the core', () => {
    const offenders = sources('adapters').flatMap((file) =>
      imports(file)
        .filter((spec) => spec.startsWith('.') && !spec.endsWith('/src/index.js'))
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it('provider files know nothing of sessions, stores or the flow', () => {
    const offenders = sources('src/providers').flatMap((file) =>
      imports(file)
        .filter((spec) => /(session|stores|flow|tokens|request-session)(\.js|\/)/.test(spec))
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offenders).toEqual([]);
  });
});
