package keypool

import (
	"fmt"
	"regexp"
	"strings"
)

// Limits are the quotas of one (project, model) pair. Zero means unlimited.
type Limits struct {
	// RPM is requests per minute.
	RPM int64 `json:"rpm"`
	// TPM is input tokens per minute.
	TPM int64 `json:"tpm"`
	// RPD is requests per Pacific day.
	RPD int64 `json:"rpd"`
}

func (l Limits) validate() error {
	if l.RPM < 0 || l.TPM < 0 || l.RPD < 0 {
		return fmt.Errorf("limits must not be negative (rpm %d, tpm %d, rpd %d)", l.RPM, l.TPM, l.RPD)
	}
	return nil
}

// Tiers with built-in limits.
const (
	TierFree = "free"
	TierOne  = "tier1"
)

// AnyModel is the model name, in a tier's limit table, of the limits that apply to a
// model the table does not name.
const AnyModel = "*"

// DefaultLimits returns the built-in limit table of a tier (nil for a tier without
// one). The rows are Google's last published snapshot:
//
//	free:  gemini-2.5-pro 5/250k/100, gemini-2.5-flash 10/250k/250,
//	       gemini-2.5-flash-lite 15/250k/1000, gemini-2.0-flash 15/1M/200,
//	       gemini-embedding-001 100/–/1000
//	tier1: gemini-2.5-pro 150/2M/10k, gemini-2.5-flash 1000/1M/10k,
//	       gemini-2.5-flash-lite 4000/4M/–, gemini-2.0-flash 2000/4M/–
//
// Our own choices, where Google published nothing in that snapshot: tier 1's
// gemini-embedding-001 is 3000 RPM / 1M TPM / unlimited RPD (the simulator uses 3000/–/–;
// the TPM bound only makes this gateway more careful); text-embedding-004 mirrors
// gemini-embedding-001. A model missing from the table gets the tier's "*" row: free
// 10/250k/250 (2.5-flash's, the most common free model), tier1 1000/1M/10k — cautious
// enough for a new preview model, generous enough not to starve it. Every row can be
// overridden in the config.
func DefaultLimits(tier string) map[string]Limits {
	switch tier {
	case TierFree:
		return map[string]Limits{
			"gemini-2.5-pro":        {RPM: 5, TPM: 250_000, RPD: 100},
			"gemini-2.5-flash":      {RPM: 10, TPM: 250_000, RPD: 250},
			"gemini-2.5-flash-lite": {RPM: 15, TPM: 250_000, RPD: 1000},
			"gemini-2.0-flash":      {RPM: 15, TPM: 1_000_000, RPD: 200},
			"gemini-embedding-001":  {RPM: 100, RPD: 1000},
			"text-embedding-004":    {RPM: 100, RPD: 1000},
			AnyModel:                {RPM: 10, TPM: 250_000, RPD: 250},
		}
	case TierOne:
		return map[string]Limits{
			"gemini-2.5-pro":        {RPM: 150, TPM: 2_000_000, RPD: 10_000},
			"gemini-2.5-flash":      {RPM: 1000, TPM: 1_000_000, RPD: 10_000},
			"gemini-2.5-flash-lite": {RPM: 4000, TPM: 4_000_000},
			"gemini-2.0-flash":      {RPM: 2000, TPM: 4_000_000},
			"gemini-embedding-001":  {RPM: 3000, TPM: 1_000_000},
			"text-embedding-004":    {RPM: 3000, TPM: 1_000_000},
			AnyModel:                {RPM: 1000, TPM: 1_000_000, RPD: 10_000},
		}
	}
	return nil
}

// limitTable resolves the limits of one project: its tier's table, overridden by the
// config's tier table and then by the project's own overrides.
type limitTable map[string]Limits

func (t limitTable) get(model string) Limits {
	if l, ok := t[model]; ok {
		return l
	}
	return t[AnyModel]
}

func buildLimitTable(tier string, tierOverrides, projectOverrides map[string]Limits) limitTable {
	t := limitTable{}
	for m, l := range DefaultLimits(tier) {
		t[m] = l
	}
	for m, l := range tierOverrides {
		t[NormalizeModel(m)] = l
	}
	for m, l := range projectOverrides {
		t[NormalizeModel(m)] = l
	}
	return t
}

// modelPattern is what a model name may look like: it becomes part of Valkey keys, so
// braces, colons, slashes and spaces are out.
var modelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// NormalizeModel strips the "models/" prefix Gemini's API puts on model names.
func NormalizeModel(m string) string { return strings.TrimPrefix(m, "models/") }

// ValidateModel reports whether a model name can be used in Valkey keys.
func ValidateModel(m string) error {
	if !modelPattern.MatchString(m) {
		return fmt.Errorf("model %q must match %s", m, modelPattern)
	}
	return nil
}
