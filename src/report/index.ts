/** The run report: the data collected while rows stream to the sink, and the self-contained report.html. */
export {
  ReportCollector, writeReportThumbnails, type ReportCollectorOptions, type ReportHistograms,
  type ReportSection, type ReportThumbnail, type ReportThumbnails, type ReportTimeline
} from './report-data.js';
export { renderReportHtml, writeReport, type WriteReportOptions } from './report-html.js';
