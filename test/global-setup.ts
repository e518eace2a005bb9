// Before the suite: build the engine once (process-level tests run the built CLI), and make sure
// the Debian packages some tests drive (Chromium, clickhouse-server) are there.
import { execSync } from 'node:child_process';

export default function setup(): void {
  execSync('node scripts/build-if-needed.mjs', { stdio: 'inherit' });
  execSync('bash scripts/install-system-deps.sh', { stdio: 'inherit' });
}
