package openai

import (
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// ResponseMeta is what a response says about itself that Gemini does not supply.
type ResponseMeta struct {
	// ID is the completion id, "chatcmpl-..."; every chunk of a stream repeats it.
	ID string
	// Created is the Unix time in seconds.
	Created int64
	// Model is the model name the client asked for (an alias stays an alias).
	Model string
}

// ChatCompletion is the non-streaming response of /v1/chat/completions. Marshal it with
// encoding/json.
type ChatCompletion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   Usage    `json:"usage"`
}

// Choice is one entry of choices.
type Choice struct {
	Index        int              `json:"index"`
	Message      AssistantMessage `json:"message"`
	FinishReason string           `json:"finish_reason"`
	// Logprobs is always null: logprobs are refused at decoding.
	Logprobs *struct{} `json:"logprobs"`
}

// AssistantMessage is a choice's message.
type AssistantMessage struct {
	Role string `json:"role"`
	// Content is null when the model only called tools, as with OpenAI.
	Content *string `json:"content"`
	// ReasoningContent holds Gemini's thought summaries (parts marked thought), the
	// field other OpenAI-compatible gateways use; omitted when there are none.
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	Refusal          *string    `json:"refusal"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
}

// FromGemini translates a generateContent response. Every Gemini candidate becomes a
// choice with the candidate's index. A response without candidates (Gemini blocked the
// prompt) becomes one empty choice with finish_reason content_filter, so that clients
// reading choices[0] find it.
func FromGemini(resp *gemini.GenerateContentResponse, meta ResponseMeta) *ChatCompletion {
	if resp == nil {
		resp = &gemini.GenerateContentResponse{}
	}
	c := &ChatCompletion{
		ID:      meta.ID,
		Object:  "chat.completion",
		Created: meta.Created,
		Model:   meta.Model,
		Usage:   usageFrom(resp.UsageMetadata),
	}
	if len(resp.Candidates) == 0 {
		empty := ""
		ch := Choice{Message: AssistantMessage{Role: RoleAssistant, Content: &empty}, FinishReason: FinishStop}
		if reason := blockReason(resp.PromptFeedback); reason != "" {
			refusal := blockedRefusal(reason)
			ch.Message.Refusal = &refusal
			ch.FinishReason = FinishContentFilter
		}
		c.Choices = []Choice{ch}
		return c
	}
	c.Choices = make([]Choice, len(resp.Candidates))
	for i := range resp.Candidates {
		c.Choices[i] = choiceFrom(&resp.Candidates[i], meta.ID)
	}
	return c
}

// choiceFrom translates one candidate.
func choiceFrom(cand *gemini.Candidate, completionID string) Choice {
	var text, thoughts joiner
	var calls []ToolCall
	for i := range cand.Content.Parts {
		p := &cand.Content.Parts[i]
		switch {
		case p.FunctionCall != nil:
			calls = append(calls, ToolCall{
				ID:   toolCallID(p.FunctionCall.ID, completionID, cand.Index, len(calls)),
				Type: "function",
				Function: FunctionCall{
					Name:      p.FunctionCall.Name,
					Arguments: compactArgs(p.FunctionCall.Args),
				},
				ExtraContent: signatureExtra(p.ThoughtSignature),
			})
		case p.Thought:
			thoughts.add(p.Text)
		default:
			text.add(p.Text)
		}
	}
	msg := AssistantMessage{Role: RoleAssistant, ReasoningContent: thoughts.String(), ToolCalls: calls}
	if s := text.String(); s != "" || len(calls) == 0 {
		msg.Content = &s
	}
	return Choice{
		Index:        cand.Index,
		Message:      msg,
		FinishReason: finishReason(cand.FinishReason, len(calls) > 0),
	}
}

// joiner concatenates strings, copying only when there is more than one.
type joiner struct {
	first string
	more  *strings.Builder
}

func (j *joiner) add(s string) {
	switch {
	case s == "":
	case j.more != nil:
		j.more.WriteString(s)
	case j.first == "":
		j.first = s
	default:
		j.more = &strings.Builder{}
		j.more.WriteString(j.first)
		j.more.WriteString(s)
	}
}

func (j *joiner) String() string {
	if j.more != nil {
		return j.more.String()
	}
	return j.first
}
