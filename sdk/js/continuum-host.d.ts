// Types of the `continuum:host` interfaces as a JavaScript command imports them
// (componentize-js). `continuum plugin new <name> --lang js` puts this file beside app.js so an
// editor type-checks the imports; the WIT in wit/deps/continuum-host/host.wit is the reference.
//
// Conventions of componentize-js: kebab-case names become camelCase; enums are strings; a
// `result` error arrives as a thrown value (`{ tag, val }` for variant errors) and a function
// returning `result` returns its ok value or throws its error value.

declare module 'continuum:host/log@0.1.0' {
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Writes one log record; control characters are stripped by the host. Needs host:log. */
  export function write(level: Level, message: string): void;
}

declare module 'continuum:host/store@0.1.0' {
  export type StoreError =
    | { tag: 'invalid-key'; val: string }
    | { tag: 'value-too-large'; val: bigint }
    | { tag: 'backend'; val: string };
  /** The value under `key`, if any. Throws a StoreError. Needs host:store. */
  export function get(key: string): Uint8Array | undefined;
  /** Stores `value` under `key`. */
  export function set(key: string, value: Uint8Array): void;
  /** Removes `key`; whether it existed. */
  export function delete_(key: string): boolean;
  export { delete_ as delete };
  /** Keys starting with `prefix`, in byte order, at most `limit`. */
  export function keys(prefix: string, limit: number): string[];
}

declare module 'continuum:host/commands@0.1.0' {
  export type CallError =
    | { tag: 'unknown-command' | 'invalid-params' | 'command-failed' | 'aborted' | 'denied'; val: string };
  /** Calls command `name` with JSON params as the same caller; its JSON result. Needs host:commands. */
  export function call(name: string, paramsJson: string): string;
}

declare module 'continuum:host/events@0.1.0' {
  /** Appends an event (namespaced by the plugin) to the signed log. Needs host:events. */
  export function emit(kind: string, payloadJson: string): void;
}

declare module 'continuum:host/progress@0.1.0' {
  /** Reports that `fraction` (0 to 1) of the work is done; throws the host's message when it is not. */
  export function report(fraction: number, message: string): void;
}

declare module 'continuum:host/inference@0.1.0' {
  export type InferenceError = {
    tag: 'unknown-model' | 'model-not-allowed' | 'invalid-request' | 'prompt-too-long' | 'budget-exceeded' | 'backend';
    val: string;
  };
  export interface Message { role: string; content: string }
  export type Prompt = { tag: 'text'; val: string } | { tag: 'chat'; val: Message[] };
  export interface GenerateRequest {
    model: string;
    prompt: Prompt;
    maxTokens: number;
    temperature: number;
    topP: number;
    seed: bigint;
    stop: string[];
  }
  export interface Chunk { text: string; reasoning: boolean }
  export type FinishReason = 'end-of-text' | 'max-tokens' | 'stop-sequence' | 'context-full' | 'cancelled';
  export interface Completion {
    text: string;
    reasoning: string;
    finish: FinishReason;
    promptTokens: number;
    completionTokens: number;
    tokensPerSecond: number;
  }
  /** A generation in progress; read it with next() or wait for it with finish(). */
  export class Generation {
    next(): Chunk | undefined;
    finish(): Completion;
  }
  export type ModelKind = 'llm' | 'embedding';
  export interface ModelInfo {
    id: string;
    kind: ModelKind;
    contextLength: number;
    dimensions: number;
    sizeBytes: bigint;
    loaded: boolean;
  }
  /** Starts a generation. Needs host:inference. */
  export function generate(request: GenerateRequest): Generation;
  /** L2-normalized embeddings of `texts`; `model` empty for the default. */
  export function embed(model: string, texts: string[]): Float32Array[];
  /** The models this plugin may use. */
  export function models(): ModelInfo[];
}
