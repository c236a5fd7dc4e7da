/** The embedded PostgreSQL moved into the runner (check uses it); the build and the tests import it from here. */
export { type EmbeddedOptions, type EmbeddedPostgres, serveEmbeddedPostgres } from '../runner/scratch/embedded.ts';
