// `npm start` builds first when the sources are newer than the build, so a fresh clone runs with
// `npm install && npm start` alone.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const stamp = join(root, 'dist', '.built');

function newest(dir) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist') continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const sources = Math.max(newest(join(root, 'src')), newest(join(root, 'web')), newest(join(root, 'bench')),
  newest(join(root, 'client')), statSync(join(root, 'package.json')).mtimeMs, statSync(join(root, 'tsconfig.json')).mtimeMs);
// a build that lost its dashboard (dist/web) is rebuilt too
const built = existsSync(stamp) && existsSync(join(root, 'dist', 'web', 'index.html')) ? statSync(stamp).mtimeMs : 0;
if (sources > built) {
  console.error('building…');
  execSync('npm run build', { cwd: root, stdio: 'inherit' });
  execSync(`touch ${JSON.stringify(stamp)}`);
}
