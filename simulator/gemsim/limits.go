package gemsim

// DefaultLimits returns the published limits of a tier (RPM / input TPM / RPD), the ones
// a project gets for a model that Config.Limits does not override. Models missing from
// the table are unlimited.
//
// Free tier: gemini-2.5-pro 5/250k/100, gemini-2.5-flash 10/250k/250,
// gemini-2.5-flash-lite 15/250k/1000, gemini-2.0-flash 15/1M/200,
// gemini-embedding-001 100/–/1000. Tier 1: 2.5-pro 150/2M/10k, 2.5-flash 1000/1M/10k,
// 2.5-flash-lite 4000/4M/–, 2.0-flash 2000/4M/–. The embedding rows of tier 1 and the
// text-embedding-004 rows are the simulator's own choice.
func DefaultLimits(tier string) map[string]Limits {
	if tier == TierOne {
		return map[string]Limits{
			"gemini-2.5-pro":        {RPM: 150, TPM: 2_000_000, RPD: 10_000},
			"gemini-2.5-flash":      {RPM: 1000, TPM: 1_000_000, RPD: 10_000},
			"gemini-2.5-flash-lite": {RPM: 4000, TPM: 4_000_000},
			"gemini-2.0-flash":      {RPM: 2000, TPM: 4_000_000},
			"gemini-embedding-001":  {RPM: 3000, RPD: 0},
			"text-embedding-004":    {RPM: 3000, RPD: 0},
		}
	}
	return map[string]Limits{
		"gemini-2.5-pro":        {RPM: 5, TPM: 250_000, RPD: 100},
		"gemini-2.5-flash":      {RPM: 10, TPM: 250_000, RPD: 250},
		"gemini-2.5-flash-lite": {RPM: 15, TPM: 250_000, RPD: 1000},
		"gemini-2.0-flash":      {RPM: 15, TPM: 1_000_000, RPD: 200},
		"gemini-embedding-001":  {RPM: 100, RPD: 1000},
		"text-embedding-004":    {RPM: 100, RPD: 1000},
	}
}

// projectLimits resolves the limits of every model for a project of the given tier:
// the tier's defaults, overridden model by model by the configured limits.
func projectLimits(tier string, overrides map[string]Limits) map[string]Limits {
	limits := DefaultLimits(tier)
	for model, l := range overrides {
		limits[modelID(model)] = l
	}
	return limits
}
