package openai

import "github.com/geminicodeapi/gca/schemas/gemini"

// Thinking budgets for reasoning_effort, the ones Gemini's own OpenAI-compatible
// endpoint uses (low 1K, medium 8K, high 24K tokens). "none" and "minimal" map to
// ToGeminiOptions.MinThinkingBudget: 0 turns thinking off on models that allow it.
//
//	reasoning_effort  thinkingBudget
//	none              MinThinkingBudget (default 0)
//	minimal           MinThinkingBudget (default 0)
//	low               1024
//	medium            8192
//	high              24576
const (
	BudgetLow    = 1024
	BudgetMedium = 8192
	BudgetHigh   = 24576
)

// thinkingConfig builds the thinkingConfig for a request, or nil when the request asks
// for nothing about thinking.
func thinkingConfig(effort string, opts ToGeminiOptions) *gemini.ThinkingConfig {
	budget, set := 0, true
	switch effort {
	case EffortNone, EffortMinimal:
		budget = opts.MinThinkingBudget
	case EffortLow:
		budget = BudgetLow
	case EffortMedium:
		budget = BudgetMedium
	case EffortHigh:
		budget = BudgetHigh
	default:
		set = false
	}
	if !set && !opts.IncludeThoughts {
		return nil
	}
	tc := &gemini.ThinkingConfig{}
	if set {
		tc.ThinkingBudget = &budget
	}
	// Thought summaries are only worth asking for when thinking is on.
	tc.IncludeThoughts = opts.IncludeThoughts && !(set && budget == 0)
	if tc.ThinkingBudget == nil && !tc.IncludeThoughts {
		return nil
	}
	return tc
}
