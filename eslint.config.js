// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'bench/.lib/', 'coverage/', 'node_modules/', '.stryker-tmp/', 'reports/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
    },
  },
  {
    // The core never imports a framework: the adapters (src/express.ts, src/koa.ts, src/fastify.ts) translate.
    files: ['src/**/*.ts'],
    ignores: ['src/express.ts', 'src/koa.ts', 'src/fastify.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(express|koa|@koa/.*|fastify|hono)(/.*)?$', message: 'The core imports no framework.' }] },
      ],
    },
  },
);
