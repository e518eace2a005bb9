// Settings saved before project patterns ran on RE2 may hold a pattern RE2 cannot compile: the
// engine still starts and the project's other rules still apply.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { SqliteDb } from '../storage/sql-db.js';
import { removeDir, tempDir } from '../../test/helpers.js';
import { migrateControl } from '../storage/control-migrations.js';
import { ProjectSettingsStore } from './project-settings.js';

describe('stored settings from before RE2', () => {
  it('load, leaving out only the pattern RE2 cannot compile', async () => {
    const dir = tempDir();
    const db = new SqliteDb(join(dir, 'control.sqlite'));
    try {
      await migrateControl(db);
      const old = {
        flood_ceiling_per_minute: null, flood_sample_every: 100,
        redaction: { patterns: [{ name: 'behind', regex: '(?<=pin )\\d+' }, { name: 'badge', regex: 'B-[0-9]{4}', flags: 'v' }], secret_keys: ['customer_pin'] },
      };
      await db.run('INSERT INTO project_settings (project_id, settings, updated_at, updated_by) VALUES (?, ?, ?, ?)', ['p_old', JSON.stringify(old), Date.now(), 'test']);
      const store = new ProjectSettingsStore(db);
      await store.init(60_000);
      const r = store.redactorFor('p_old');
      expect(r.redactText('badge B-1234 pin 5678')).toBe('badge [REDACTED:badge] pin 5678');
      expect(r.redactText('customer_pin=9999')).toBe('customer_pin=[REDACTED:customer_pin]');
      store.stop();
    } finally {
      await db.close();
      removeDir(dir);
    }
  });
});
