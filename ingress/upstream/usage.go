package upstream

import (
	"bytes"
	"encoding/json"

	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// chunkProbe is the part of a generateContent response the gateway reads for
// accounting; decoding into it skips everything else.
type chunkProbe struct {
	UsageMetadata *gemini.UsageMetadata `json:"usageMetadata"`
	Error         *gemini.Status        `json:"error"`
}

// ProbeResult is what a response body or stream chunk says about usage and errors.
type ProbeResult struct {
	Usage    *schemas.Usage
	ErrorMsg string
	// ErrorCode is the google.rpc code of an error carried inside a 200 body.
	ErrorCode int
}

// Probe reads the usage and a possible embedded error from a generateContent body or
// stream chunk. ok is false when the bytes are not a JSON object.
func Probe(b []byte) (ProbeResult, bool) {
	var p chunkProbe
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ProbeResult{}, false
	}
	if err := json.Unmarshal(trimmed, &p); err != nil {
		return ProbeResult{}, false
	}
	var r ProbeResult
	if p.UsageMetadata != nil {
		u := UsageFrom(p.UsageMetadata)
		r.Usage = &u
	}
	if p.Error != nil {
		r.ErrorMsg = p.Error.Message
		r.ErrorCode = p.Error.Code
		if r.ErrorCode == 0 {
			r.ErrorCode = 500
		}
	}
	return r, true
}

// UsageFrom converts Gemini's usageMetadata to the event's usage.
func UsageFrom(u *gemini.UsageMetadata) schemas.Usage {
	return schemas.Usage{
		Prompt:        u.PromptTokenCount,
		Candidates:    u.CandidatesTokenCount,
		Thoughts:      u.ThoughtsTokenCount,
		Cached:        u.CachedContentTokenCount,
		ToolUsePrompt: u.ToolUsePromptTokenCount,
		Total:         u.TotalTokenCount,
	}
}
