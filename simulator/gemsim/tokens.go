package gemsim

import "github.com/geminicodeapi/gca/schemas/gemini"

// imageTokens is what one inline or referenced media part costs, whatever its size; the
// real API charges 258 tokens for an image up to 384 px on both sides.
const imageTokens = 258

// CountTokens is the simulator's tokenizer: one token per four bytes of text, rounded
// up, so every non-empty text counts at least one token. It is deterministic, so tests
// can predict every usageMetadata field.
func CountTokens(text string) int { return tokensForBytes(len(text)) }

// tokensForBytes is CountTokens for a byte count.
func tokensForBytes(n int) int { return (n + 3) / 4 }

// partTokens counts one part. Function calls and responses count their name and JSON
// bytes; media parts count imageTokens.
func partTokens(p *gemini.Part) int {
	switch {
	case p.InlineData != nil || p.FileData != nil:
		return imageTokens
	case p.FunctionCall != nil:
		return tokensForBytes(len(p.FunctionCall.Name) + len(p.FunctionCall.Args))
	case p.FunctionResponse != nil:
		return tokensForBytes(len(p.FunctionResponse.Name) + len(p.FunctionResponse.Response))
	case len(p.ExecutableCode) > 0:
		return tokensForBytes(len(p.ExecutableCode))
	case len(p.CodeExecutionResult) > 0:
		return tokensForBytes(len(p.CodeExecutionResult))
	}
	return CountTokens(p.Text)
}

// contentsTokens counts every part of the contents.
func contentsTokens(contents []gemini.Content) int {
	n := 0
	for i := range contents {
		for j := range contents[i].Parts {
			n += partTokens(&contents[i].Parts[j])
		}
	}
	return n
}

// toolsTokens counts function declarations by the bytes of their name, description and
// parameter schema as sent.
func toolsTokens(tools []gemini.Tool) int {
	n := 0
	for i := range tools {
		for _, fd := range tools[i].FunctionDeclarations {
			n += tokensForBytes(len(fd.Name) + len(fd.Description) + len(fd.Parameters) + len(fd.ParametersJSONSchema))
		}
	}
	return n
}

// promptTokens is the promptTokenCount of a request: contents, system instruction and
// tool declarations.
func promptTokens(req *gemini.GenerateContentRequest) int {
	n := contentsTokens(req.Contents) + toolsTokens(req.Tools)
	if req.SystemInstruction != nil {
		n += contentsTokens([]gemini.Content{*req.SystemInstruction})
	}
	return n
}

// cachedTokens is the cachedContentTokenCount of a request: half the prompt when it
// names a cachedContent, so that cached ⊂ prompt holds as in the real API.
func cachedTokens(req *gemini.GenerateContentRequest, prompt int) int {
	if req.CachedContent == "" {
		return 0
	}
	return prompt / 2
}
