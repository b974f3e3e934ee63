/** The run report: the data collected while rows stream to the sink, and the self-contained report.html. */
export * from './report-data.js';
export * from './report-html.js';
