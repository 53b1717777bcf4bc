/** The layering the design promises, checked on the source itself. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.[cm]?[jt]s$/.test(f))
    .map((f) => join(dir, f));
}

const QUOTED = String.raw`['"\x60]([^'"\x60]+)['"\x60]`;
/** Every way a module can load another: static, side-effect, re-export, dynamic, require, require.resolve. */
const LOADS = new RegExp(
  [
    String.raw`\b(?:import|export)\b[^'"\x60;]*?\bfrom\s*${QUOTED}`, // import x from 'm', export { y } from 'm'
    String.raw`\bimport\s*${QUOTED}`, // import 'm'
    String.raw`\bimport\s*\(\s*${QUOTED}`, // import('m')
    String.raw`\brequire(?:\s*\.\s*resolve)?\s*\(\s*${QUOTED}`, // require('m'), require.resolve('m')
  ].join('|'),
  'g',
);

/** The module specifiers a source text loads, in order. */
function importsOf(text: string): string[] {
  return [...text.matchAll(LOADS)].map((m) => m.slice(1).find((spec) => spec !== undefined) as string);
}

function imports(file: string): string[] {
  return importsOf(readFileSync(file, 'utf8'));
}

const FRAMEWORK = /^(?:@types\/)?(?:express|koa|fastify|hono)(?:[-/]|$)|^@(?:koa|fastify|hono)\//;

describe('the import checker', () => {
  it.each([
    [`import express from 'express';`, ['express']],
    [`import type { Request } from "express";`, ['express']],
    [`import * as K from 'koa'`, ['koa']],
    [`import {\n  a,\n  b,\n} from '@koa/router';`, ['@koa/router']],
    [`export { x } from './flow.js';`, ['./flow.js']],
    [`export * from '../src/index.js'`, ['../src/index.js']],
    [`import 'express';`, ['express']],
    [`import"koa"`, ['koa']],
    [`const koa = require('koa');`, ['koa']],
    [`const k = require ( "koa-compose" )`, ['koa-compose']],
    [`const p = require.resolve('express');`, ['express']],
    [`const e = await import('express');`, ['express']],
    [`const e = await import( \`koa\` );`, ['koa']],
    [`import a from 'a'; import 'b'; const c = require('c'); void import('d');`, ['a', 'b', 'c', 'd']],
    [`const note = 'imports nothing'; fromage('x'); required('y');`, []],
  ])('finds what %j loads', (text, expected) => {
    expect(importsOf(text)).toEqual(expected);
  });

  it.each([
    ['express', true],
    ['express/lib/router', true],
    ['express-session', true],
    ['koa', true],
    ['koa-compose', true],
    ['@koa/router', true],
    ['@types/express', true],
    ['fastify', true],
    ['hono/factory', true],
    ['@hono/node-server', true],
    ['expressive', false],
    ['koalas', false],
    ['openid-client', false],
    ['./express-like.js', false],
  ])('classifies %j as a framework: %s', (spec, expected) => {
    expect(FRAMEWORK.test(spec)).toBe(expected);
  });
});

describe('boundaries', () => {
  // The adapters sit at the top of src/, as the package's entry points do (dist/express.js).
  const ADAPTERS = ['src/express.ts', 'src/koa.ts', 'src/fastify.ts', 'src/fetch.ts'];

  it('the core imports no framework', () => {
    const files = sources('src').filter((file) => !ADAPTERS.includes(file));
    expect(files.length).toBeGreaterThan(10);
    const offenders = files.flatMap((file) =>
      imports(file)
        .filter((spec) => FRAMEWORK.test(spec))
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it('adapters import only the adapter entry of the core (oauth-middleware/adapter), as a third party would', () => {
    const files = ADAPTERS.filter((file) => sources('src').includes(file));
    expect(files).toEqual(ADAPTERS);
    const offenders = files.flatMap((file) =>
      imports(file)
        .filter((spec) => spec.startsWith('.') && spec !== './adapter.js')
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it('provider files know nothing of sessions, stores or the flow', () => {
    const files = sources('src/providers');
    expect(files.length).toBeGreaterThan(3);
    const offenders = files.flatMap((file) =>
      imports(file)
        .filter((spec) => /(session|stores|flow|tokens|request-session)(\.js|\/)/.test(spec))
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offenders).toEqual([]);
  });
});
