// Registered with `node --import`: appends every module specifier resolved in this process (and its
// loader thread) to the file named by DBPRUNE_RECORD_IMPORTS, one a line.
import { register } from 'node:module';

register(new URL('./record-imports-hooks.mjs', import.meta.url), { data: { file: process.env.DBPRUNE_RECORD_IMPORTS } });
