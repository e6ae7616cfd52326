package gemini

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// ErrorBody is the google.rpc error envelope every Gemini error response carries:
//
//	{"error":{"code":429,"message":"...","status":"RESOURCE_EXHAUSTED","details":[...]}}
type ErrorBody struct {
	Error Status `json:"error"`
}

// Status is google.rpc.Status as JSON.
type Status struct {
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Status  string        `json:"status"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// Type URLs of the details Gemini attaches to errors.
const (
	TypeQuotaFailure = "type.googleapis.com/google.rpc.QuotaFailure"
	TypeRetryInfo    = "type.googleapis.com/google.rpc.RetryInfo"
	TypeHelp         = "type.googleapis.com/google.rpc.Help"
	TypeErrorInfo    = "type.googleapis.com/google.rpc.ErrorInfo"
)

// ErrorDetail is the union of the google.rpc detail messages seen in Gemini errors.
// Type selects which fields are meaningful.
type ErrorDetail struct {
	Type string `json:"@type"`

	// QuotaFailure
	Violations []QuotaViolation `json:"violations,omitempty"`
	// RetryInfo: a duration string such as "26s" or "1.5s".
	RetryDelay string `json:"retryDelay,omitempty"`
	// Help
	Links []HelpLink `json:"links,omitempty"`
	// ErrorInfo: Reason is e.g. API_KEY_INVALID.
	Reason   string            `json:"reason,omitempty"`
	Domain   string            `json:"domain,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// QuotaViolation names the quota a 429 hit.
type QuotaViolation struct {
	QuotaMetric     string            `json:"quotaMetric,omitempty"`
	QuotaID         string            `json:"quotaId,omitempty"`
	QuotaDimensions map[string]string `json:"quotaDimensions,omitempty"`
	QuotaValue      string            `json:"quotaValue,omitempty"`
}

// HelpLink is one link of google.rpc.Help.
type HelpLink struct {
	Description string `json:"description"`
	URL         string `json:"url"`
}

// Quota ids seen in 429 QuotaFailure details (free tier; paid tiers drop the suffix).
const (
	QuotaRequestsPerDay    = "GenerateRequestsPerDayPerProjectPerModel"
	QuotaRequestsPerMinute = "GenerateRequestsPerMinutePerProjectPerModel"
	QuotaInputTokensPerMin = "GenerateContentInputTokensPerModelPerMinute"
	FreeTierSuffix         = "-FreeTier"
)

// Quota metrics that go with the quota ids above.
const (
	MetricRequests    = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
	MetricInputTokens = "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
)

// Failure is what an upstream error means for the key and project that served it.
type Failure int

// The failure kinds, from the point of view of key state.
const (
	// FailureNone: not a failure (2xx).
	FailureNone Failure = iota
	// FailureMinuteQuota: a per-minute quota (requests or input tokens) of the project
	// and model ran out. Cool the pair down for RetryDelay or to the minute's end.
	FailureMinuteQuota
	// FailureDayQuota: the per-day request quota ran out; it resets at midnight
	// America/Los_Angeles.
	FailureDayQuota
	// FailureQuotaUnknown: a 429 without details. Treated like a per-minute quota.
	FailureQuotaUnknown
	// FailureKeyInvalid: 400 API_KEY_INVALID; the key is disabled until revalidated.
	FailureKeyInvalid
	// FailureForbidden: 403 PERMISSION_DENIED; disabled like an invalid key.
	FailureForbidden
	// FailureUpstream: 5xx, overloaded. Not the key's fault: retry elsewhere, never blacklist.
	FailureUpstream
	// FailureClient: another 4xx, caused by the request itself; retrying elsewhere is useless.
	FailureClient
)

func (f Failure) String() string {
	switch f {
	case FailureNone:
		return "none"
	case FailureMinuteQuota:
		return "minute_quota"
	case FailureDayQuota:
		return "day_quota"
	case FailureQuotaUnknown:
		return "quota_unknown"
	case FailureKeyInvalid:
		return "key_invalid"
	case FailureForbidden:
		return "forbidden"
	case FailureUpstream:
		return "upstream"
	case FailureClient:
		return "client"
	}
	return "failure(" + strconv.Itoa(int(f)) + ")"
}

// Retryable reports whether another key may succeed where this one failed.
func (f Failure) Retryable() bool {
	switch f {
	case FailureMinuteQuota, FailureDayQuota, FailureQuotaUnknown, FailureKeyInvalid, FailureForbidden, FailureUpstream:
		return true
	}
	return false
}

// Classified is an upstream error read from its status code and body.
type Classified struct {
	Failure Failure
	// QuotaID is the first violation's quotaId, without interpretation.
	QuotaID string
	// RetryDelay is RetryInfo.retryDelay, or the "Please retry in 24.07s" hint of the
	// message when RetryInfo is absent; zero when neither is present.
	RetryDelay time.Duration
	// RPM, TPM, RPD say which quota was exceeded (the seed's quotaExceeded).
	RPM, TPM, RPD bool
	// Status is google.rpc status, e.g. RESOURCE_EXHAUSTED.
	Status  string
	Message string
}

// Classify reads an upstream error. body may be empty or not JSON (a proxy's HTML page,
// a cut connection); the status code alone then decides.
func Classify(code int, body []byte) Classified {
	var c Classified
	var eb ErrorBody
	if len(body) > 0 && json.Unmarshal(body, &eb) == nil {
		c.Status = eb.Error.Status
		c.Message = eb.Error.Message
	}
	switch {
	case code >= 200 && code < 300:
		c.Failure = FailureNone
		return c
	case code == 429:
		c.Failure = FailureQuotaUnknown
	case code == 400 && hasReason(eb.Error, "API_KEY_INVALID"):
		c.Failure = FailureKeyInvalid
	case code == 400 && strings.Contains(c.Message, "API key not valid"):
		c.Failure = FailureKeyInvalid
	case code == 401:
		c.Failure = FailureKeyInvalid
	case code == 403:
		c.Failure = FailureForbidden
	case code >= 500 || code == 408:
		c.Failure = FailureUpstream
	default:
		c.Failure = FailureClient
	}
	for _, d := range eb.Error.Details {
		switch d.Type {
		case TypeQuotaFailure:
			for _, v := range d.Violations {
				if c.QuotaID == "" {
					c.QuotaID = v.QuotaID
				}
				id := v.QuotaID
				switch {
				case strings.HasPrefix(id, QuotaRequestsPerDay) || strings.Contains(id, "PerDay"):
					c.RPD = true
				case strings.HasPrefix(id, QuotaInputTokensPerMin) || strings.Contains(id, "Tokens"):
					c.TPM = true
				case strings.HasPrefix(id, QuotaRequestsPerMinute) || strings.Contains(id, "PerMinute"):
					c.RPM = true
				}
			}
		case TypeRetryInfo:
			if d, err := time.ParseDuration(d.RetryDelay); err == nil && d > 0 {
				c.RetryDelay = d
			}
		}
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = retryHint(c.Message)
	}
	if code == 429 {
		switch {
		case c.RPD:
			c.Failure = FailureDayQuota
		case c.RPM || c.TPM:
			c.Failure = FailureMinuteQuota
		}
	}
	return c
}

func hasReason(s Status, reason string) bool {
	for _, d := range s.Details {
		if d.Reason == reason {
			return true
		}
	}
	return false
}

// retryHint reads "Please retry in 24.07s." (or "in 350ms") from a 429 message.
func retryHint(msg string) time.Duration {
	const marker = "retry in "
	i := strings.Index(msg, marker)
	if i < 0 {
		return 0
	}
	rest := msg[i+len(marker):]
	end := strings.IndexFunc(rest, func(r rune) bool {
		return !(r == '.' || (r >= '0' && r <= '9') || r == 'm' || r == 's' || r == 'h')
	})
	if end >= 0 {
		rest = rest[:end]
	}
	rest = strings.TrimSuffix(rest, ".")
	d, err := time.ParseDuration(rest)
	if err != nil || d < 0 {
		return 0
	}
	return d
}
