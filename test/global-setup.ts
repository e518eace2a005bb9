// Builds the engine once before the suite: process-level tests (kill -9, restart) run the built CLI.
import { execSync } from 'node:child_process';

export default function setup(): void {
  execSync('node scripts/build-if-needed.mjs', { stdio: 'inherit' });
}
