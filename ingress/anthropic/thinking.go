package anthropic

import (
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// UnsignedThinking is the signature given to a thinking block for which Gemini sent no
// thoughtSignature. Anthropic clients require a signature on every thinking block they
// echo back; this constant marks one that carries nothing, and ToGemini drops it.
const UnsignedThinking = "gca-unsigned-thinking"

// minThinkingBudget is Anthropic's lower bound on thinking.budget_tokens.
const minThinkingBudget = 1024

// decodeThinking validates the thinking field.
func decodeThinking(w *wireThinking) (*ThinkingParam, *Error) {
	if w == nil {
		return nil, nil
	}
	switch w.Display {
	case "", "summarized", "omitted":
	default:
		return nil, invalidf("thinking.display: must be \"summarized\" or \"omitted\", got %q", w.Display)
	}
	p := &ThinkingParam{Type: w.Type, Omitted: w.Display == "omitted"}
	switch w.Type {
	case ThinkingEnabled:
		if w.BudgetTokens == nil {
			return nil, invalidf("thinking.budget_tokens: field required when type is \"enabled\"")
		}
		if *w.BudgetTokens < minThinkingBudget {
			return nil, invalidf("thinking.budget_tokens: must be at least %d, got %d", minThinkingBudget, *w.BudgetTokens)
		}
		p.BudgetTokens = *w.BudgetTokens
	case ThinkingDisabled, ThinkingAdaptive:
	default:
		return nil, invalidf("thinking.type: must be \"enabled\", \"disabled\" or \"adaptive\", got %q", w.Type)
	}
	return p, nil
}

// thinkingLimits is what a Gemini model family allows for thinkingBudget.
type thinkingLimits struct {
	// supported is false for models without thinking (1.x, 2.0): they get no
	// thinkingConfig at all.
	supported bool
	// canDisable says whether thinkingBudget 0 turns thinking off.
	canDisable bool
	// min and max bound the budget when known (max 0: unknown, no clamping).
	min, max int64
}

// limitsFor returns the thinking limits of a Gemini model, from the published model
// documentation. Unknown models are assumed to think, not to be able to stop, and to
// take any budget.
func limitsFor(model string) thinkingLimits {
	m := strings.TrimPrefix(model, "models/")
	switch {
	case strings.HasPrefix(m, "gemini-1.") || strings.HasPrefix(m, "gemini-2.0"):
		return thinkingLimits{}
	case strings.HasPrefix(m, "gemini-2.5-flash-lite"):
		return thinkingLimits{supported: true, canDisable: true, min: 512, max: 24576}
	case strings.HasPrefix(m, "gemini-2.5-flash"):
		return thinkingLimits{supported: true, canDisable: true, min: 1, max: 24576}
	case strings.HasPrefix(m, "gemini-2.5-pro"):
		return thinkingLimits{supported: true, min: 128, max: 32768}
	}
	return thinkingLimits{supported: true}
}

// geminiThinking maps the thinking field for the target model:
//
//   - absent → nil (the model's default);
//   - enabled → thinkingBudget = budget_tokens clamped to the model's range,
//     includeThoughts unless display is "omitted";
//   - adaptive → thinkingBudget -1 (dynamic), includeThoughts likewise;
//   - disabled → thinkingBudget 0 where the model can stop thinking, else nil.
func geminiThinking(p *ThinkingParam, model string) *gemini.ThinkingConfig {
	lim := limitsFor(model)
	if p == nil || !lim.supported {
		return nil
	}
	var budget int64
	switch p.Type {
	case ThinkingEnabled:
		budget = p.BudgetTokens
		if lim.max > 0 {
			budget = max(lim.min, min(budget, lim.max))
		}
	case ThinkingAdaptive:
		budget = -1
	default:
		if !lim.canDisable {
			return nil
		}
		zero := 0
		return &gemini.ThinkingConfig{ThinkingBudget: &zero}
	}
	b := int(budget)
	return &gemini.ThinkingConfig{ThinkingBudget: &b, IncludeThoughts: !p.Omitted}
}
