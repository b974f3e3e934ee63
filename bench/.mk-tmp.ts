import { synthEmbeddings } from './synth.js';
const [n, dim, k] = process.argv.slice(2).map(Number);
console.log(JSON.stringify(await synthEmbeddings(n, dim, k, 1)));
