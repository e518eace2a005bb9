#!/usr/bin/env -S node --max-old-space-size=768
// puraify-monitoring serve | keys | query | tail
import { Command } from 'commander';
import { ConfigError, loadConfig, SETTINGS } from './config.js';
import { addKeysCommand } from './auth/keys-cli.js';
import { addRemoteCommands } from './cli/remote.js';

const program = new Command('puraify-monitoring').description('PURAIFY Monitoring & Logs Engine');

function withSettings(cmd: Command): Command {
  for (const s of Object.values(SETTINGS)) cmd.option(`--${s.flag} <value>`, `${s.describe} [${s.env}]`);
  return cmd;
}

function config(flags: Record<string, string | undefined>) {
  try {
    return loadConfig(flags);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`puraify-monitoring: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
}

withSettings(program.command('serve').description('run the engine (HTTP API, storage, dashboard)')).action(async (opts) => {
  const cfg = config(opts);
  // imported here: `keys` and the other commands do not need storage engines loaded
  const { createEngine } = await import('./engine.js');
  const engine = await createEngine(cfg);
  const address = await engine.app.listen({ host: cfg.host, port: cfg.port });
  // printed whatever the log level: with port 0 this is how the caller learns the port
  console.log(`puraify-monitoring listening on ${address} (data in ${cfg.dataDir})`);
  if (cfg.adminTokenGenerated) {
    console.log(`\nAdmin token (generated now, kept in ${cfg.dataDir}/admin-token; shown once):\n  ${cfg.adminToken}\n`);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    engine.app.log.info({ signal }, 'stopping: loading what the log holds for a few seconds; the rest waits in it');
    // acknowledged events are in the write-ahead log already: stopping never waits on storage for long
    setTimeout(() => {
      engine.app.log.warn({ signal }, 'stopping took 9 s; exiting (the write-ahead log keeps what was not loaded)');
      process.exit(0);
    }, 9000).unref();
    await engine.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
});

addKeysCommand(program);
addRemoteCommands(program);

await program.parseAsync(process.argv);
