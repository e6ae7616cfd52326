// Package anthropic translates the Anthropic Messages API (POST /v1/messages and
// POST /v1/messages/count_tokens) to the Gemini REST API and back, so that clients keep
// their Anthropic SDKs and only change the base URL. It is pure translation: no HTTP
// server, no key selection, no retries; the ingress wires these functions into its
// handlers.
//
// The flow of one request is
//
//	req, err := DecodeMessagesRequest(body)           // 400 *Error on anything invalid
//	g, err := req.ToGemini(ToGeminiOptions{Model: m}) // gemini.GenerateContentRequest
//	// non-streaming
//	msg := FromGemini(resp, ResponseMeta{ID: id, Model: req.Model})
//	// streaming
//	t := NewStreamTranslator(ResponseMeta{ID: id, Model: req.Model})
//	out, err := t.Chunk(chunk) // for each Gemini SSE chunk
//	out = t.Finish()
//	// upstream failure
//	e := FromGeminiError(status, body)
//
// # Decisions
//
// These are the places where the two APIs do not line up, and what this package does.
//
//   - Overload: Gemini's 503 UNAVAILABLE ("The model is overloaded") becomes Anthropic's
//     529 overloaded_error, the status Anthropic clients already know as "transient
//     overload, retry later" (the SDKs retry every status ≥ 500, Claude Code reports 529
//     as overload). An exhausted key pool is the gateway's own condition; it should answer
//     it with rate_limit_error (429 with Retry-After), which every SDK also retries.
//   - Stop sequences: Gemini ends a generation that hit a stop sequence with STOP and
//     does not say which sequence (or whether one did). This package reports end_turn with
//     stop_sequence null rather than guessing: a false "stop_sequence" would make clients
//     that parse up to a sentinel treat a natural end as a hit. At most 5 stop sequences
//     are accepted (Gemini's limit); more is a 400.
//   - message_start timing: the stream translator emits message_start together with the
//     first Gemini chunk, because only then is the prompt's token count known. Start may
//     be called earlier when the gateway must commit the response before Gemini answers;
//     message_delta always repeats the input and cache token counts, so the final usage is
//     right either way. Anthropic SDKs skip ping events, so pings may precede
//     message_start.
//   - Thinking signatures: Gemini attaches thoughtSignature to a thought part, or more
//     often to the text or functionCall part that follows the thoughts (Gemini 3 rejects a
//     tool-call turn whose first functionCall lost its signature). Anthropic carries
//     signatures only on thinking blocks, which clients echo back verbatim. So a
//     signature on a thought part, or on a non-thought part right after an open thinking
//     block, becomes that thinking block's signature; a signature on a part with no open
//     thinking block becomes an empty thinking block placed just before that part's block.
//     On the way back a thinking block's signature is put on the first text or tool_use
//     part that follows it in the turn (before any other thinking block), else on its own
//     thought part, else on the closest earlier unsigned part. A thinking block Gemini
//     gave no signature gets the constant placeholder UnsignedThinking, which is dropped
//     again on the way back. redacted_thinking blocks (which only a real Claude produces)
//     are dropped.
//   - First message: Anthropic no longer requires the first message to be a user turn,
//     and Gemini accepts a leading model turn, so an assistant-first conversation is
//     passed through. Consecutive messages of one role are merged into one turn, as
//     Anthropic does.
//   - URL sources: image and document sources of type url (and file ids) are refused
//     with a 400. The gateway never fetches remote URLs on a client's behalf: that would
//     make it an open proxy into its own network and put an unbounded download on the
//     request path. Clients send base64 instead.
//   - Documents: base64 application/pdf becomes inlineData; a plain-text source becomes a
//     text part; anything else is a 400.
//   - Tool results: the content's text blocks are joined with "\n" into
//     {"result": text} (or {"error": text} when is_error); images and PDFs in a result
//     become inlineData parts after the turn's function responses. Every tool_use of an
//     assistant turn must be answered by a tool_result in the next user turn and every
//     tool_result must answer a tool_use of the previous assistant turn, as on Anthropic.
//   - Thinking off: {"type":"disabled"} sets thinkingBudget 0 on models that allow it
//     (gemini-2.5-flash and -flash-lite); models that cannot stop thinking
//     (gemini-2.5-pro, gemini-3) and models without thinking (1.x, 2.0) get no
//     thinkingConfig, so thoughts are neither shown nor billed differently. A request with
//     no thinking field keeps the model's default.
//   - A stream cut before Gemini sent a finishReason ends, on Finish, with every open
//     block closed and stop_reason max_tokens: the only Anthropic stop reason that tells
//     the client the answer is incomplete. A blocked prompt ends with refusal.
//   - Usage: input_tokens = promptTokenCount − cachedContentTokenCount +
//     toolUsePromptTokenCount; cache_read_input_tokens = cachedContentTokenCount;
//     output_tokens = candidatesTokenCount + thoughtsTokenCount. In a stream the last
//     chunk that carried usageMetadata counts; chunks are never summed.
package anthropic
