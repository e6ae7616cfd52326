package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Event types and their current versions. A consumer accepts every version up to the
// one it knows; fields added in later versions are optional.
const (
	TypeRequest  = "request"
	TypeKeyState = "key_state"
	TypeAudit    = "audit"

	RequestVersion  = 1
	KeyStateVersion = 1
	AuditVersion    = 1
)

// Client types as the seed names them.
const (
	ClientOpenAI  = "openai"
	ClientClaude  = "claude"
	ClientGemini  = "gemini"
	ClientUnknown = "unknown"
)

// Stream interruption causes.
const (
	InterruptedClient   = "client_disconnect"
	InterruptedUpstream = "upstream_cut"
)

// Error types recorded on a request (error_type in request_logs and error_logs). They are
// what system_stats counts as timeouts, rate limits and auth errors.
const (
	ErrBadRequest     = "bad_request"
	ErrAuth           = "auth_error"
	ErrRateLimited    = "rate_limit"
	ErrQuotaExhausted = "quota_exhausted"
	ErrTimeout        = "timeout"
	ErrUpstream       = "upstream_error"
	ErrInternal       = "internal_error"
	ErrClientGone     = "client_disconnect"
	ErrNotFound       = "not_found"
)

// NewEventID returns a UUIDv7: unique, and sortable by creation time, which keeps
// ClickHouse's event_id index dense. It fails only when the system's random source does.
func NewEventID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new event id: %w", err)
	}
	return id.String(), nil
}

// Usage is Gemini's usageMetadata as the request ended: the last chunk that carried
// usage, never a sum over chunks.
type Usage struct {
	Prompt        int64 `json:"prompt"`
	Candidates    int64 `json:"candidates"`
	Thoughts      int64 `json:"thoughts"`
	Cached        int64 `json:"cached"`
	ToolUsePrompt int64 `json:"tool_use_prompt"`
	Total         int64 `json:"total"`
}

// Input is what the seed calls input tokens: the prompt (cached tokens included) plus
// the tool-use prompt.
func (u Usage) Input() int64 { return u.Prompt + u.ToolUsePrompt }

// Output is what the seed calls output tokens: the candidates plus the thoughts, both
// billed as output.
func (u Usage) Output() int64 { return u.Candidates + u.Thoughts }

// Attempt is one upstream call made for a request. A request with failover has several.
type Attempt struct {
	KeyHash string `json:"key_hash"`
	Project string `json:"project"`
	// TimeMs is when the attempt was sent (Unix ms). Quota windows are taken from it.
	TimeMs int64 `json:"ts_ms"`
	// Status is the upstream HTTP status; 0 when no response came (timeout, reset).
	Status int `json:"status"`
	// Failure is gemini.Failure's name ("minute_quota", "upstream", ...), "timeout" or
	// "network"; empty for a success.
	Failure   string `json:"failure,omitempty"`
	LatencyMs int64  `json:"latency_ms"`
	// InputTokens is what the attempt counts against the project's TPM: the upstream's
	// promptTokenCount when known, else the gateway's estimate.
	InputTokens int64 `json:"input_tokens"`
	// Counted says the attempt consumed the project's quota (the upstream accepted it).
	// Processors count it into the RPM, TPM and RPD windows; nothing else does.
	Counted bool `json:"counted"`
	// RetryAfterMs is the upstream's retryDelay for a 429, if it gave one.
	RetryAfterMs int64 `json:"retry_after_ms,omitempty"`
	// Reservation is the id of the pending entry the ingress made in Valkey when it
	// chose this key (see Keys.Pending). The processor that counts the attempt deletes
	// the entry in the same script, so the quota is never seen twice or not at all.
	// Empty when the ingress chose the key without Valkey (fail-open).
	Reservation string `json:"reservation,omitempty"`
}

// RequestEvent is emitted once per client request, when the request ends (also when the
// client disconnects or the upstream cuts a stream). Version 1.
type RequestEvent struct {
	Type    string `json:"type"`
	V       int    `json:"v"`
	EventID string `json:"event_id"`
	// TimeMs is when the request arrived (Unix ms).
	TimeMs    int64  `json:"ts_ms"`
	Instance  string `json:"instance"`
	RequestID string `json:"request_id"`

	ClientType string `json:"client_type"`
	ClientIP   string `json:"client_ip"`
	UserAgent  string `json:"user_agent,omitempty"`
	Referer    string `json:"referer,omitempty"`
	Method     string `json:"method"`
	// Endpoint is the route, with the model as a placeholder for native Gemini calls
	// ("/v1beta/models/{model}:generateContent").
	Endpoint string `json:"endpoint"`
	// TokenHash identifies the gateway token the client presented (empty in
	// pass-through mode).
	TokenHash string `json:"token_hash,omitempty"`

	// KeyHash and Project are those of the last attempt: the key that answered.
	KeyHash       string `json:"key_hash,omitempty"`
	Project       string `json:"project,omitempty"`
	Model         string `json:"model"`
	OriginalModel string `json:"original_model"`
	Stream        bool   `json:"stream"`

	Status       int    `json:"status"`
	ErrorType    string `json:"error_type,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`

	LatencyMs     int64 `json:"latency_ms"`
	TTFBMs        int64 `json:"ttfb_ms,omitempty"`
	RequestBytes  int64 `json:"request_bytes"`
	ResponseBytes int64 `json:"response_bytes"`

	Usage Usage `json:"usage"`
	// EstimatedInputTokens is the gateway's estimate made before sending, used to check
	// TPM headroom.
	EstimatedInputTokens int64 `json:"est_input_tokens"`
	// Interrupted is set when a stream ended early: InterruptedClient or
	// InterruptedUpstream.
	Interrupted string `json:"interrupted,omitempty"`
	// CacheHit: answered from the gateway's response cache without an upstream call.
	CacheHit bool      `json:"cache_hit,omitempty"`
	Attempts []Attempt `json:"attempts,omitempty"`
}

// HasError is the seed's has_error: any status outside 2xx, or a stream cut short.
func (e *RequestEvent) HasError() bool {
	return e.Status < 200 || e.Status >= 300 || e.Interrupted != ""
}

// RecordKey is the Kafka record key of the event; see TopicRequests.
func (e *RequestEvent) RecordKey() string {
	switch {
	case e.KeyHash != "":
		return e.KeyHash
	case e.TokenHash != "":
		return e.TokenHash
	}
	return e.EventID
}

// Validate checks the invariants processors rely on; a violating event is dead-lettered.
func (e *RequestEvent) Validate() error {
	var errs []error
	if e.Type != TypeRequest {
		errs = append(errs, fmt.Errorf("type %q is not %q", e.Type, TypeRequest))
	}
	if e.V < 1 || e.V > RequestVersion {
		errs = append(errs, fmt.Errorf("version %d not in 1..%d", e.V, RequestVersion))
	}
	errs = append(errs, validateCommon(e.EventID, e.TimeMs))
	switch e.ClientType {
	case ClientOpenAI, ClientClaude, ClientGemini, ClientUnknown:
	default:
		errs = append(errs, fmt.Errorf("client_type %q unknown", e.ClientType))
	}
	if e.Status < 0 || e.Status > 599 {
		errs = append(errs, fmt.Errorf("status %d out of range", e.Status))
	}
	if e.LatencyMs < 0 || e.TTFBMs < 0 || e.RequestBytes < 0 || e.ResponseBytes < 0 {
		errs = append(errs, errors.New("negative latency or size"))
	}
	u := e.Usage
	if u.Prompt < 0 || u.Candidates < 0 || u.Thoughts < 0 || u.Cached < 0 || u.ToolUsePrompt < 0 || u.Total < 0 {
		errs = append(errs, errors.New("negative token count"))
	}
	for i, a := range e.Attempts {
		if a.Project == "" || a.KeyHash == "" {
			errs = append(errs, fmt.Errorf("attempt %d without key or project", i))
		}
		if a.InputTokens < 0 || a.LatencyMs < 0 {
			errs = append(errs, fmt.Errorf("attempt %d has negative numbers", i))
		}
	}
	return errors.Join(errs...)
}

// Key state kinds.
const (
	// KindCooldown: the (project, model) pair may not be used until UntilMs.
	KindCooldown = "cooldown"
	// KindClearCooldown: an operator lifted the pair's cool-down.
	KindClearCooldown = "clear_cooldown"
	// KindDisable: the key may not be used until enabled (invalid, forbidden, operator).
	KindDisable = "disable"
	// KindEnable: the key works again (revalidated, or an operator enabled it).
	KindEnable = "enable"
	// KindKeyAdded and KindKeyRemoved record operator changes to the pool. The secret
	// never travels: the event names the key by hash.
	KindKeyAdded   = "key_added"
	KindKeyRemoved = "key_removed"
)

// Reasons, as the seed's QuotaManager and blacklist name them.
const (
	ReasonRPM             = "rpm_exceeded"
	ReasonTPM             = "tpm_exceeded"
	ReasonRPD             = "rpd_exceeded"
	ReasonQuota           = "quota_exceeded"
	ReasonKeyInvalid      = "api_key_invalid"
	ReasonForbidden       = "permission_denied"
	ReasonOperator        = "operator"
	ReasonRevalidated     = "revalidated"
	ReasonRepair          = "repair"
	ReasonQuotaAvailable  = "quota_available"
	SourceUpstream        = "upstream"
	SourceAdmin           = "admin"
	SourceRevalidation    = "revalidation"
	SourceConsistencyFix  = "consistency_repair"
	SourceGatewayDecision = "gateway"
)

// QuotaExceeded is the seed's blacklist quotaExceeded: which quota ran out.
type QuotaExceeded struct {
	RPM bool `json:"rpm,omitempty"`
	TPM bool `json:"tpm,omitempty"`
	RPD bool `json:"rpd,omitempty"`
}

// KeyStateEvent records what was learned about a key or a (project, model) pair.
// Version 1.
type KeyStateEvent struct {
	Type     string `json:"type"`
	V        int    `json:"v"`
	EventID  string `json:"event_id"`
	TimeMs   int64  `json:"ts_ms"`
	Instance string `json:"instance"`

	Kind    string `json:"kind"`
	KeyHash string `json:"key_hash,omitempty"`
	Project string `json:"project"`
	Model   string `json:"model,omitempty"`
	Reason  string `json:"reason"`
	// Source says who decided: SourceUpstream, SourceAdmin, SourceRevalidation, ...
	Source        string        `json:"source"`
	QuotaID       string        `json:"quota_id,omitempty"`
	QuotaExceeded QuotaExceeded `json:"quota_exceeded"`
	// UntilMs is the absolute end of a cool-down (Unix ms); the processors set the TTL
	// from it, so a replay reproduces the same expiry.
	UntilMs      int64  `json:"until_ms,omitempty"`
	RetryDelayMs int64  `json:"retry_delay_ms,omitempty"`
	RequestID    string `json:"request_id,omitempty"`
	Status       int    `json:"status,omitempty"`
	Message      string `json:"message,omitempty"`
}

// RecordKey is the Kafka record key of the event; see TopicKeyState.
func (e *KeyStateEvent) RecordKey() string { return e.Project }

// Validate checks the invariants processors rely on.
func (e *KeyStateEvent) Validate() error {
	var errs []error
	if e.Type != TypeKeyState {
		errs = append(errs, fmt.Errorf("type %q is not %q", e.Type, TypeKeyState))
	}
	if e.V < 1 || e.V > KeyStateVersion {
		errs = append(errs, fmt.Errorf("version %d not in 1..%d", e.V, KeyStateVersion))
	}
	errs = append(errs, validateCommon(e.EventID, e.TimeMs))
	// The project becomes part of Valkey keys and their hash tag.
	errs = append(errs, ValidateProject(e.Project))
	switch e.Kind {
	case KindCooldown:
		if e.Model == "" || e.UntilMs <= 0 {
			errs = append(errs, errors.New("cooldown needs model and until_ms"))
		}
	case KindClearCooldown:
		if e.Model == "" {
			errs = append(errs, errors.New("clear_cooldown needs model"))
		}
	case KindDisable, KindEnable, KindKeyAdded, KindKeyRemoved:
		if e.KeyHash == "" {
			errs = append(errs, fmt.Errorf("%s needs key_hash", e.Kind))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q unknown", e.Kind))
	}
	return errors.Join(errs...)
}

// AuditEvent records an operator action that is not key state: a consistency repair, a
// storage optimization, a replay switch. Version 1.
type AuditEvent struct {
	Type     string `json:"type"`
	V        int    `json:"v"`
	EventID  string `json:"event_id"`
	TimeMs   int64  `json:"ts_ms"`
	Instance string `json:"instance"`

	Actor  string            `json:"actor"`
	Action string            `json:"action"`
	Target string            `json:"target"`
	Params map[string]string `json:"params,omitempty"`
	Result string            `json:"result"`
}

// RecordKey is the Kafka record key of the event: the action, so one action's history
// stays in order (the topic has one partition by default anyway).
func (e *AuditEvent) RecordKey() string { return e.Action }

// Validate checks the invariants processors rely on.
func (e *AuditEvent) Validate() error {
	var errs []error
	if e.Type != TypeAudit {
		errs = append(errs, fmt.Errorf("type %q is not %q", e.Type, TypeAudit))
	}
	if e.V < 1 || e.V > AuditVersion {
		errs = append(errs, fmt.Errorf("version %d not in 1..%d", e.V, AuditVersion))
	}
	errs = append(errs, validateCommon(e.EventID, e.TimeMs))
	if e.Action == "" {
		errs = append(errs, errors.New("action is empty"))
	}
	return errors.Join(errs...)
}

func validateCommon(eventID string, tsMs int64) error {
	var errs []error
	if eventID == "" || len(eventID) > 64 || strings.ContainsAny(eventID, " \t\r\n") {
		errs = append(errs, fmt.Errorf("event_id %q invalid", eventID))
	}
	// 2001-09-09 .. 2286-11-20: a timestamp outside is a unit mistake (seconds or ns).
	if tsMs < 1_000_000_000_000 || tsMs > 9_999_999_999_999 {
		errs = append(errs, fmt.Errorf("ts_ms %d is not Unix milliseconds", tsMs))
	}
	return errors.Join(errs...)
}

// DecodeRequest decodes and validates a RequestEvent.
func DecodeRequest(b []byte) (*RequestEvent, error) {
	var e RequestEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode request event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("validate request event %s: %w", e.EventID, err)
	}
	return &e, nil
}

// DecodeKeyState decodes and validates a KeyStateEvent.
func DecodeKeyState(b []byte) (*KeyStateEvent, error) {
	var e KeyStateEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode key state event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("validate key state event %s: %w", e.EventID, err)
	}
	return &e, nil
}

// DecodeAudit decodes and validates an AuditEvent.
func DecodeAudit(b []byte) (*AuditEvent, error) {
	var e AuditEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode audit event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("validate audit event %s: %w", e.EventID, err)
	}
	return &e, nil
}
