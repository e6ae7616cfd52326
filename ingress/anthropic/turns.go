package anthropic

import (
	"sort"
	"strings"
)

// turn is a run of consecutive messages with one role: Anthropic merges such messages
// into one turn, and so does the translation to Gemini.
type turn struct {
	role string
	// first and end delimit the messages of the turn: messages[first:end].
	first, end int
}

// turnsOf splits messages into turns.
func turnsOf(msgs []MessageParam) []turn {
	out := make([]turn, 0, len(msgs))
	for i, m := range msgs {
		if n := len(out); n > 0 && out[n-1].role == m.Role {
			out[n-1].end = i + 1
			continue
		}
		out = append(out, turn{role: m.Role, first: i, end: i + 1})
	}
	return out
}

// validateTurns checks how tool calls and results pair up, as Anthropic does: tool_use
// ids are unique, every tool_result answers a tool_use of the previous assistant turn,
// and every tool_use is answered in the next user turn (when there is one).
func validateTurns(msgs []MessageParam) *Error {
	seen := make(map[string]bool)
	// open holds the tool_use ids of the previous assistant turn not yet answered.
	var open map[string]bool
	openAt := 0
	for _, t := range turnsOf(msgs) {
		if t.role == RoleAssistant {
			open = nil
			openAt = t.first
			for i := t.first; i < t.end; i++ {
				for j, b := range msgs[i].Content {
					if b.Type != BlockToolUse {
						continue
					}
					if seen[b.ID] {
						return invalidf("messages.%d.content.%d: `tool_use` ids must be unique, %q is repeated", i, j, b.ID)
					}
					seen[b.ID] = true
					if open == nil {
						open = make(map[string]bool)
					}
					open[b.ID] = true
				}
			}
			continue
		}
		for i := t.first; i < t.end; i++ {
			for j, b := range msgs[i].Content {
				if b.Type != BlockToolResult {
					continue
				}
				pending, ok := open[b.ToolUseID]
				if !ok {
					return invalidf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, b.ToolUseID)
				}
				if !pending {
					return invalidf("messages.%d.content.%d: more than one `tool_result` block answers `tool_use` id %s", i, j, b.ToolUseID)
				}
				open[b.ToolUseID] = false
			}
		}
		if missing := unanswered(open); len(missing) > 0 {
			return invalidf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", openAt, strings.Join(missing, ", "))
		}
		open = nil
	}
	return nil
}

// unanswered lists, sorted, the ids still open.
func unanswered(open map[string]bool) []string {
	var out []string
	for id, pending := range open {
		if pending {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
