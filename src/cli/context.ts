/** What every `dbprune` command's action receives from main.ts (its own module, so commands import no registry). */
export interface CommandContext {
  /** Aborted by SIGINT/SIGTERM or a closed stdout. */
  signal: AbortSignal;
}
