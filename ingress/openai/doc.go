// Package openai translates the OpenAI API that clients' SDKs speak into the Gemini
// REST API and back: chat completions (plain and streamed), the model list and
// embeddings. It is pure translation: it makes no HTTP calls, picks no keys and keeps
// no state between requests; the ingress wires it into its handlers.
//
// A chat request flows through DecodeChatRequest (parse and validate, errors name the
// offending field as OpenAI does, e.g. "messages[2].content"), ChatRequest.ToGemini
// (build the generateContent body), then FromGemini or a StreamTranslator for the
// answer. Upstream failures become OpenAI errors with FromGeminiError. Every error is
// an *Error carrying its HTTP status and the OpenAI error body.
//
// # Images
//
// An image_url must be a data: URL (data:image/png;base64,...); it is sent to Gemini as
// inlineData. http and https URLs are refused with a 400 ("image_url must be a data:
// URL; remote URLs are not fetched by this gateway"): fetching URLs named by clients
// would let anyone make the gateway request internal addresses (SSRF) and would spend
// download time on the request path. The detail field has no Gemini counterpart and is
// ignored. input_audio and file parts are refused as unsupported.
//
// # Reasoning
//
// reasoning_effort becomes Gemini's thinkingConfig.thinkingBudget with the budgets
// Gemini's own OpenAI-compatible endpoint uses:
//
//	none, minimal  ToGeminiOptions.MinThinkingBudget (0: thinking off)
//	low            1024
//	medium         8192
//	high           24576
//
// Thought summaries (parts marked thought, requested with
// ToGeminiOptions.IncludeThoughts) are returned in reasoning_content, never in content.
//
// # Tools
//
// Tool parameters are sent as parametersJsonSchema, which takes full JSON Schema, so
// schemas pass unchanged. tool_choice none, auto, required and a named function become
// function calling modes NONE, AUTO, ANY and ANY with allowedFunctionNames. An
// assistant's tool_calls become functionCall parts with the call id kept and the
// arguments parsed; tool messages become functionResponse parts (the response is the
// tool's output when it is a JSON object, else {"result": output}), consecutive ones
// in one user turn. Gemini's thought signatures travel with tool calls as
// extra_content.google.thought_signature, as on Gemini's own OpenAI endpoint, so
// clients that echo tool calls back keep Gemini 3's function calling working. Clients
// that drop it (the Go SDK's ToParam does) can be covered with
// ToGeminiOptions.MissingThoughtSignature.
//
// # Finish reasons
//
// STOP is "stop" ("tool_calls" when the choice called tools), MAX_TOKENS is "length",
// the safety family (SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*)
// is "content_filter", and MALFORMED_FUNCTION_CALL is "stop": the model failed to make
// a call, which is neither a filter nor a limit, and "tool_calls" without tool calls
// would break agent loops. A prompt Gemini blocks (no candidates, a
// promptFeedback.blockReason) is one empty choice with a refusal and "content_filter".
//
// # Embeddings
//
// One input is an embedContent call; several are batchEmbedContents calls of at most
// 100 requests each (Gemini's limit; OpenAI allows 2048 inputs). Token-array inputs are
// refused: they are tiktoken ids. Vectors are returned with unit length, as OpenAI's
// are; Gemini normalises only full-size ones. Usage is the caller's estimate, since
// Gemini's embed responses carry none.
//
// # Not translated
//
// logprobs, audio output, the deprecated functions/function_call fields and the
// function role are refused with a 400. user, name, metadata, store, strict and
// parallel_tool_calls are accepted and ignored (Gemini cannot be held to one call per
// turn).
package openai
