// Lists the mutated source files whose text differs from the one the committed mutation report
// scored (stale), or that it has not scored yet (unscored): what `npm run mutate` must test before
// the report speaks for the code on this branch. Exit code 1 when any is listed, so CI or a hook can ask.
import { readdirSync, readFileSync } from 'node:fs';

const reportPath = 'reports/mutation/mutation.json';
let report: { files: Record<string, { source: string }> };
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch {
  console.log(`No mutation report at ${reportPath}: run npm run mutate.`);
  process.exit(1);
}
const scored = new Map(Object.entries(report.files).map(([path, file]) => [path.replaceAll('\\', '/'), file.source]));
// As stryker.config.mjs mutates them: every .ts under src/ but those with nothing to mutate.
const notMutated: string[] = JSON.parse(readFileSync('scripts/not-mutated.json', 'utf8')).sources;
const sources = ['src']
  .flatMap((dir) => readdirSync(dir, { recursive: true }).map((name) => `${dir}/${String(name).replaceAll('\\', '/')}`))
  .filter((path) => path.endsWith('.ts') && !notMutated.includes(path));
const unscored = sources.filter((path) => !scored.has(path)).sort();
const stale = sources.filter((path) => scored.has(path) && scored.get(path) !== readFileSync(path, 'utf8')).sort();
const gone = [...scored.keys()].filter((path) => !sources.includes(path)).sort();
for (const path of stale) console.log(`stale    ${path}`);
for (const path of unscored) console.log(`unscored ${path}`);
for (const path of gone) console.log(`removed  ${path}`);
if (stale.length + unscored.length + gone.length === 0) console.log('The mutation report scores the code as it is.');
process.exit(stale.length + unscored.length + gone.length > 0 ? 1 : 0);
