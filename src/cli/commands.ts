/** Registers every `dbprune` sub-command on a commander program: one register function per command, each in its own file. */
// Each command loads its pipeline when it runs (dynamic import), so `dbprune prune` does not pay
// for sharp, undici, hnswlib and the image stages in start-up time or memory.
import type { Command } from 'commander';
import { registerWorker } from './cluster.js';
import type { CommandContext } from './context.js';
import { registerEmbed } from './embed.js';
import { registerFit } from './fit.js';
import { registerIngest } from './ingest.js';
import { registerPrune } from './prune.js';
import { registerRun } from './run.js';

export function registerCommands(program: Command, ctx: CommandContext): void {
  registerPrune(program, ctx);
  registerFit(program, ctx);
  registerRun(program, ctx);
  registerEmbed(program, ctx);
  registerIngest(program, ctx);
  registerWorker(program, ctx);
  registerReport(program, ctx);
}

function registerReport(program: Command, ctx: CommandContext): void {
  program
    .command('report')
    .description('write report.html for an output folder (stats.json, thumbnails.json)')
    .argument('<out-dir>', 'a folder written by prune or run')
    .action(async (outDir: string) => {
      const { writeReport } = await import('../report/report-html.js');
      const path = await writeReport(outDir, { signal: ctx.signal });
      process.stdout.write(`${path}\n`);
    });
}
