package gemsim

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Limits of generation requests, as the real API enforces them.
const (
	maxCandidates   = 8
	promptEchoRunes = 80
	thoughtEchoRune = 60
)

// fillerWords make up the configured extra answer words, in a fixed cycle.
const fillerWords = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua"

// candidateOut is one generated candidate: text or a function call.
type candidateOut struct {
	text   string
	call   *gemini.FunctionCall
	finish string
	tokens int
}

// reply is a generated answer, before it is shaped as one response or stream chunks.
type reply struct {
	cands     []candidateOut
	thought   string
	signature string
	prompt    int
	cached    int
	thoughts  int
}

// usage returns usageMetadata with candidates tokens so far; the stream passes the
// running count, a full response the final one.
func (r *reply) usage(candidates int) *gemini.UsageMetadata {
	return &gemini.UsageMetadata{
		PromptTokenCount:        int64(r.prompt),
		CandidatesTokenCount:    int64(candidates),
		CachedContentTokenCount: int64(r.cached),
		ThoughtsTokenCount:      int64(r.thoughts),
		TotalTokenCount:         int64(r.prompt + candidates + r.thoughts),
	}
}

// candidateTokens is the sum over candidates.
func (r *reply) candidateTokens() int {
	n := 0
	for _, c := range r.cands {
		n += c.tokens
	}
	return n
}

// parts returns the parts of candidate i carrying text: the thought summary (when asked
// for and withThought) and then the text, or the function call.
func (r *reply) parts(i int, text string, withThought bool) []gemini.Part {
	parts := make([]gemini.Part, 0, 2)
	if withThought && r.thought != "" {
		parts = append(parts, gemini.Part{Text: r.thought, Thought: true})
	}
	switch {
	case r.cands[i].call != nil:
		parts = append(parts, gemini.Part{FunctionCall: r.cands[i].call, ThoughtSignature: r.signature})
	case text != "":
		parts = append(parts, gemini.Part{Text: text})
	}
	return parts
}

// response shapes the whole reply as one generateContent response.
func (r *reply) response(modelVersion, responseID string) *gemini.GenerateContentResponse {
	cands := make([]gemini.Candidate, len(r.cands))
	for i, c := range r.cands {
		cands[i] = gemini.Candidate{
			Content:      gemini.Content{Role: "model", Parts: r.parts(i, c.text, true)},
			FinishReason: c.finish,
			Index:        i,
		}
	}
	return &gemini.GenerateContentResponse{
		Candidates:    cands,
		UsageMetadata: r.usage(r.candidateTokens()),
		ModelVersion:  modelVersion,
		ResponseID:    responseID,
	}
}

// compose generates the reply to a validated request. The returned error body is a 400
// for options the model rejects.
func (c *call) compose(req *gemini.GenerateContentRequest, prompt int) (*reply, *gemini.ErrorBody) {
	gc := req.GenerationConfig
	if gc == nil {
		gc = &gemini.GenerationConfig{}
	}
	n := 1
	if gc.CandidateCount != nil {
		n = *gc.CandidateCount
	}
	if n < 1 || n > maxCandidates {
		return nil, errInvalidArgument(fmt.Sprintf("* GenerateContentRequest.generation_config.candidate_count: must be between 1 and %d, got %d\n", maxCandidates, n))
	}
	r := &reply{prompt: prompt, cached: cachedTokens(req, prompt), cands: make([]candidateOut, n)}
	if errBody := c.think(r, gc, prompt, lastUserText(req.Contents)); errBody != nil {
		return nil, errBody
	}
	last := &req.Contents[len(req.Contents)-1]
	results := functionResults(last)
	decl := chooseFunction(req, last, len(results) > 0)
	for i := range r.cands {
		if decl != nil {
			r.cands[i] = c.functionCall(decl)
			continue
		}
		text := c.answerText(req.Contents, results, i)
		if gc.ResponseMimeType == "application/json" {
			text = jsonAnswer(gc, text)
		}
		r.cands[i] = finishText(text, gc)
	}
	if decl != nil && r.thoughts > 0 {
		r.signature = c.signature()
	}
	return r, nil
}

// think fills in the thinking of 2.5-series models: they think by default, unless
// thinkingBudget is 0, which gemini-2.5-pro refuses as the real API does.
func (c *call) think(r *reply, gc *gemini.GenerationConfig, prompt int, userText string) *gemini.ErrorBody {
	if !c.model.info.Thinking {
		return nil
	}
	tc := gc.ThinkingConfig
	if tc == nil {
		tc = &gemini.ThinkingConfig{}
	}
	if tc.ThinkingBudget != nil && *tc.ThinkingBudget == 0 {
		if strings.Contains(c.model.id, "pro") {
			return errInvalidArgument("Budget 0 is invalid. This model only works in thinking mode.")
		}
		return nil
	}
	r.thoughts = 32 + prompt/8
	if tc.ThinkingBudget != nil && *tc.ThinkingBudget > 0 {
		r.thoughts = min(r.thoughts, *tc.ThinkingBudget)
	}
	if tc.IncludeThoughts {
		r.thought = "**Considering the request**\n\nThe user asks: " + firstRunes(userText, thoughtEchoRune) + ". A short, direct answer fits."
	}
	return nil
}

// finishText applies stop sequences (cut at the earliest, finish STOP) and then
// maxOutputTokens (cut to the budget, finish MAX_TOKENS).
func finishText(text string, gc *gemini.GenerationConfig) candidateOut {
	cut := -1
	for _, s := range gc.StopSequences {
		if i := strings.Index(text, s); s != "" && i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		text = text[:cut]
	}
	out := candidateOut{text: text, finish: gemini.FinishStop, tokens: CountTokens(text)}
	if gc.MaxOutputTokens != nil && *gc.MaxOutputTokens > 0 && out.tokens > *gc.MaxOutputTokens {
		out.text = truncateBytes(text, *gc.MaxOutputTokens*4)
		out.finish = gemini.FinishMaxTokens
		out.tokens = CountTokens(out.text)
	}
	return out
}

// answerText is the deterministic answer: it names the model and echoes the start of
// the last user text, or the function results it was given; candidate i > 0 says which
// it is; AnswerWords filler words follow.
func (c *call) answerText(contents []gemini.Content, results []*gemini.FunctionResponse, i int) string {
	var b strings.Builder
	b.Grow(160 + c.s.cfg.AnswerWords*8)
	b.WriteString("Simulated answer from ")
	b.WriteString(c.model.id)
	if len(results) > 0 {
		b.WriteString(" using function results: ")
		for j, fr := range results {
			if j > 0 {
				b.WriteString("; ")
			}
			b.WriteString(fr.Name)
			b.WriteByte('=')
			b.WriteString(compactJSON(fr.Response))
		}
	} else {
		b.WriteString(" to: ")
		b.WriteString(firstRunes(lastUserText(contents), promptEchoRunes))
	}
	if i > 0 {
		b.WriteString(" (candidate ")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteByte(')')
	}
	words := fillerWords
	for w := 0; w < c.s.cfg.AnswerWords; w++ {
		if words == "" {
			words = fillerWords
		}
		var word string
		word, words, _ = strings.Cut(words, " ")
		b.WriteByte(' ')
		b.WriteString(word)
	}
	return b.String()
}

// jsonAnswer is the JSON-mode text: an example of the response schema, or
// {"answer": text} without one.
func jsonAnswer(gc *gemini.GenerationConfig, text string) string {
	schema := gc.ResponseJSONSchema
	if len(schema) == 0 {
		schema = gc.ResponseSchema
	}
	if len(schema) > 0 {
		if b, err := exampleJSON(schema, true); err == nil {
			return string(b)
		}
	}
	b, err := json.Marshal(map[string]string{"answer": text})
	if err != nil {
		return `{"answer":""}`
	}
	return string(b)
}

// functionCall builds the call of a declared function with example arguments.
func (c *call) functionCall(fd *gemini.FunctionDeclaration) candidateOut {
	schema := fd.ParametersJSONSchema
	if len(schema) == 0 {
		schema = fd.Parameters
	}
	args, err := exampleJSON(schema, false)
	if err != nil || len(args) == 0 || args[0] != '{' {
		args = []byte("{}")
	}
	fc := &gemini.FunctionCall{ID: "call_" + strconv.FormatUint(c.s.callIDs.count(), 10), Name: fd.Name, Args: args}
	return candidateOut{call: fc, finish: gemini.FinishStop, tokens: tokensForBytes(len(fc.Name) + len(args))}
}

// signature returns an opaque base64 thought signature, as 2.5 models attach to the
// first function call when they thought.
func (c *call) signature() string {
	var b [24]byte
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], c.s.signatures.next())
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// chooseFunction returns the function to call: the first declared (and allowed) one,
// when tools are declared, function calling is not NONE and the last turn is a user
// turn that does not carry function results.
func chooseFunction(req *gemini.GenerateContentRequest, last *gemini.Content, hasResults bool) *gemini.FunctionDeclaration {
	if hasResults || (last.Role != "" && last.Role != "user") {
		return nil
	}
	var allowed []string
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		if strings.EqualFold(tc.FunctionCallingConfig.Mode, "NONE") {
			return nil
		}
		allowed = tc.FunctionCallingConfig.AllowedFunctionNames
	}
	for i := range req.Tools {
		for j := range req.Tools[i].FunctionDeclarations {
			fd := &req.Tools[i].FunctionDeclarations[j]
			if len(allowed) == 0 || slices.Contains(allowed, fd.Name) {
				return fd
			}
		}
	}
	return nil
}

// functionResults returns the function responses of a turn.
func functionResults(c *gemini.Content) []*gemini.FunctionResponse {
	var out []*gemini.FunctionResponse
	for i := range c.Parts {
		if fr := c.Parts[i].FunctionResponse; fr != nil {
			out = append(out, fr)
		}
	}
	return out
}

// lastUserText joins the non-thought text parts of the last user turn.
func lastUserText(contents []gemini.Content) string {
	for i := len(contents) - 1; i >= 0; i-- {
		c := &contents[i]
		if c.Role != "" && c.Role != "user" {
			continue
		}
		var texts []string
		for _, p := range c.Parts {
			if p.Text != "" && !p.Thought {
				texts = append(texts, p.Text)
			}
		}
		if len(texts) > 0 {
			return strings.Join(texts, " ")
		}
	}
	return "(no text)"
}

// firstRunes returns at most n runes of s.
func firstRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// truncateBytes cuts s to at most n bytes without splitting a rune.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// compactJSON renders raw JSON without insignificant spaces, so tests can find it.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
