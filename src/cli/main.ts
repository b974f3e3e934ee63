#!/usr/bin/env node
/**
 * The `dbprune` command. Exit code 0 on success, 2 on usage errors, 1 on other failures, with a
 * one-line message on stderr (set DBPRUNE_DEBUG=1 for the stack).
 */
import { Command, CommanderError } from 'commander';
import { exitCodeFor, oneLine } from './errors.js';
import { registerCommands } from './commands.js';

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\ndbprune: ${sig}, stopping (again to force)\n`);
    controller.abort(new Error(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const program = new Command('dbprune')
    .description('Density-Based Pruning (Abbas et al., ICLR 2024) of image-text datasets, as a stream')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError(false);
  registerCommands(program, { signal: controller.signal });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      return 2; // commander already printed its one-line message
    }
    if (process.env.DBPRUNE_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    process.stderr.write(`${oneLine(e)}\n`);
    return exitCodeFor(e);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`${oneLine(e)}\n`);
    process.exitCode = 1;
  },
);
