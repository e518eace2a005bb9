// Per test file: drop the PostgreSQL databases it created (test/control-db.ts).
import { afterAll } from 'vitest';
import { dropTestDatabases } from './control-db.js';

afterAll(dropTestDatabases);
