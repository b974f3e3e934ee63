#!/usr/bin/env node
/**
 * The `dbprune` command. Exit code 0 on success, 2 on usage errors, 1 on other failures, with a
 * one-line message on stderr (set DBPRUNE_DEBUG=1 for the stack). Stopped by SIGINT/SIGTERM: 130/143
 * (128 + the signal, as a shell reports a process killed by it), after saying what was (not)
 * written. stdout closed by its reader (`dbprune run … | head`): 141 (128 + SIGPIPE), silently, as
 * a Unix tool killed by SIGPIPE.
 */
import { constants } from 'node:os';
import { Command, CommanderError } from 'commander';
import { DbpruneError, ErrorCodes, isDbpruneError } from '../core/errors.js';
import { removeTempFilesSync } from '../io/output-set.js';
import { exitCodeFor, oneLine } from './errors.js';
import { registerCommands } from './commands.js';
import { abortPendingWrites } from '../io/storage/index.js';
import { addStorageOptions } from './storage-options.js';

const EXIT_BROKEN_PIPE = 128 + constants.signals.SIGPIPE;

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(128 + constants.signals[sig]); // the 'exit' handler removes temp files
    stoppedBy = sig;
    process.stderr.write(`\ndbprune: ${sig}, stopping (again to force)\n`);
    controller.abort(new Error(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', removeTempFilesSync);
  let brokenPipe = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') return; // other stdout errors fail the writer that hit them
    brokenPipe = true;
    if (!controller.signal.aborted) controller.abort(new Error('stdout closed by its reader'));
  });

  const program = new Command('dbprune')
    .description('Density-Based Pruning (Abbas et al., ICLR 2024) of image-text datasets, as a stream')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError(false);
  addStorageOptions(program);
  registerCommands(program, { signal: controller.signal });
  try {
    await program.parseAsync(argv);
    return brokenPipe ? EXIT_BROKEN_PIPE : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      return 2; // commander already printed its one-line message
    }
    if (process.env.DBPRUNE_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    if (brokenPipe && !stoppedBy) return EXIT_BROKEN_PIPE;
    if (stoppedBy) {
      // A pipeline that had outputs open says what it left; a plain abort came before any output was
      // opened; any other error (a failure while stopping) is reported as it is.
      const plainAbort = !isDbpruneError(e) || (e.code === ErrorCodes.ABORTED && e.context.stopped !== true);
      const err = plainAbort ? new DbpruneError(ErrorCodes.ABORTED, `stopped (${stoppedBy}) before any output was written`, {}, { cause: e }) : e;
      process.stderr.write(`${oneLine(err)}\n`);
      return 128 + constants.signals[stoppedBy];
    }
    process.stderr.write(`${oneLine(e)}\n`);
    // A failed run leaves no partial output: temp files removed, multipart uploads aborted.
    await abortPendingWrites();
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
