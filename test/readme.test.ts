// The README must stay true: every setting the engine reads is documented there.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config.js';

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  it('documents every setting with its flag', () => {
    const missing = Object.values(SETTINGS).filter((s) => !readme.includes(`\`${s.env}\``) || !readme.includes(`\`--${s.flag}\``));
    expect(missing.map((s) => s.env)).toEqual([]);
  });
  it('shows the two set-up commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
