import { defineConfig } from 'vitest/config';

/** `npm run test:cluster`: the scale-out tests, on a whole cluster started by scripts/cluster.sh
 *  (ZooKeeper, 2 shards × 2 replicas of clickhouse-server, PostgreSQL, two engine nodes). One file
 *  at a time: each file owns a cluster, and the machine has two cores. */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.cluster.ts'],
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 240_000,
  },
});
