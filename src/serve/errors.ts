/**
 * Errors in OpenAI's shape: `{"error":{"message","type","param","code"}}` with the HTTP status that
 * OpenAI (and vLLM) use, so SDKs raise their usual exception classes (BadRequestError, NotFoundError,
 * RateLimitError…).
 */

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'timeout_error'
  | 'service_unavailable';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (Retry-After on 429/503). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }

  toJSON(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null): ApiError =>
  new ApiError(400, message, 'invalid_request_error', param, code);

export const modelNotFound = (model: string, served: string): ApiError =>
  new ApiError(404, `The model '${model}' does not exist; this server serves '${served}' (GET /v1/models lists it).`, 'not_found_error', 'model', 'model_not_found');

export const unauthorized = (message: string): ApiError => new ApiError(401, message, 'authentication_error', null, 'invalid_api_key');

export const overloaded = (retryAfterS: number): ApiError =>
  new ApiError(
    429,
    `The server is at capacity (running and queued requests are at their limit); retry after ${retryAfterS} s.`,
    'rate_limit_error',
    null,
    'rate_limit_exceeded',
    { 'retry-after': String(retryAfterS) },
  );

export const unavailable = (message: string, code: string): ApiError =>
  new ApiError(503, message, 'service_unavailable', null, code, { 'retry-after': '1' });

export const requestTimeout = (seconds: number): ApiError =>
  new ApiError(408, `The request did not finish within the server's timeout of ${seconds} s; its generation was cancelled.`, 'timeout_error', null, 'timeout');

export const serverError = (message: string): ApiError => new ApiError(500, message, 'server_error', null, 'internal_error');
