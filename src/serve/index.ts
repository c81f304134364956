/** The OpenAI-compatible server over the inference engine. */
export { WeftServer, createServer, apiKeyMatches, SERVER_DEFAULTS, type ServerOptions } from './server.js';
export { WorkerHost, InProcessHost, DEFAULT_FACTORY_MODULE, type EngineHost, type EngineBundle, type EngineFactory, type EngineFactoryOptions, type ServedModelInfo } from './host.js';
export { ServerMetrics } from './metrics.js';
export { ApiError } from './errors.js';
