package chsink

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/schemas"
)

// column is one column of an insert: its name in the INSERT's column list and the slice
// of values appended to it.
type column struct {
	name string
	data any
}

func names(cols []column) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name)
	}
	return b.String()
}

// eventTime is the stored form of an event time: UTC with milliseconds (18.16 keeps
// whole seconds of it). The dedupe lookup uses the same conversion, so a stored row and
// a redelivered event compare equal.
func eventTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func u32(v int64) uint32 {
	switch {
	case v < 0:
		return 0
	case v > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(v)
}

func u64(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

func b8(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// TotalTokens is request_logs.total_tokens: Gemini's totalTokenCount, or input + output
// when the upstream reported no total (a cut stream, an estimate).
func TotalTokens(u schemas.Usage) int64 {
	if u.Total > 0 {
		return u.Total
	}
	return u.Input() + u.Output()
}

// requestRows holds request_logs columns for one insert. The attempts' arrays are
// sub-slices of flat per-batch buffers, so a batch costs a handful of allocations
// however many attempts it holds; all buffers are reused across batches.
type requestRows struct {
	id, clientType, clientIP, userAgent, keyHash, model, originalModel, endpoint []string
	timestamp                                                                    []time.Time
	responseTime, ttfb                                                           []uint32
	status                                                                       []uint16
	input, output, total, reqSize, respSize                                      []uint64
	prompt, candidates, thoughts, cached, toolUse, estInput                      []uint64
	stream, hasError, cacheHit                                                   []uint8
	errMsg, project, tokenHash, requestID, instance, method, referer, errType    []string
	interrupted                                                                  []string

	aKey, aProject, aFailure [][]string
	aTs                      [][]time.Time
	aStatus                  [][]uint16
	aLatency, aRetry         [][]uint32
	aInput                   [][]uint64
	aCounted                 [][]uint8

	fKey, fProject, fFailure []string
	fTs                      []time.Time
	fStatus                  []uint16
	fLatency, fRetry         []uint32
	fInput                   []uint64
	fCounted                 []uint8
}

func (r *requestRows) reset() {
	*r = requestRows{
		id: r.id[:0], clientType: r.clientType[:0], clientIP: r.clientIP[:0], userAgent: r.userAgent[:0],
		keyHash: r.keyHash[:0], model: r.model[:0], originalModel: r.originalModel[:0], endpoint: r.endpoint[:0],
		timestamp: r.timestamp[:0], responseTime: r.responseTime[:0], ttfb: r.ttfb[:0], status: r.status[:0],
		input: r.input[:0], output: r.output[:0], total: r.total[:0], reqSize: r.reqSize[:0], respSize: r.respSize[:0],
		prompt: r.prompt[:0], candidates: r.candidates[:0], thoughts: r.thoughts[:0], cached: r.cached[:0],
		toolUse: r.toolUse[:0], estInput: r.estInput[:0], stream: r.stream[:0], hasError: r.hasError[:0],
		cacheHit: r.cacheHit[:0], errMsg: r.errMsg[:0], project: r.project[:0], tokenHash: r.tokenHash[:0],
		requestID: r.requestID[:0], instance: r.instance[:0], method: r.method[:0], referer: r.referer[:0],
		errType: r.errType[:0], interrupted: r.interrupted[:0],
		aKey: r.aKey[:0], aProject: r.aProject[:0], aFailure: r.aFailure[:0], aTs: r.aTs[:0],
		aStatus: r.aStatus[:0], aLatency: r.aLatency[:0], aRetry: r.aRetry[:0], aInput: r.aInput[:0],
		aCounted: r.aCounted[:0],
		fKey:     r.fKey[:0], fProject: r.fProject[:0], fFailure: r.fFailure[:0], fTs: r.fTs[:0],
		fStatus: r.fStatus[:0], fLatency: r.fLatency[:0], fRetry: r.fRetry[:0], fInput: r.fInput[:0],
		fCounted: r.fCounted[:0],
	}
}

// add appends one event as a row. See migrations/0001_request_logs.sql for what each
// column means.
func (r *requestRows) add(e *schemas.RequestEvent) {
	r.id = append(r.id, e.EventID)
	r.timestamp = append(r.timestamp, eventTime(e.TimeMs))
	r.clientType = append(r.clientType, e.ClientType)
	r.clientIP = append(r.clientIP, e.ClientIP)
	r.userAgent = append(r.userAgent, e.UserAgent)
	r.keyHash = append(r.keyHash, e.KeyHash)
	r.model = append(r.model, e.Model)
	r.originalModel = append(r.originalModel, e.OriginalModel)
	r.endpoint = append(r.endpoint, e.Endpoint)
	r.responseTime = append(r.responseTime, u32(e.LatencyMs))
	r.status = append(r.status, uint16(e.Status))
	r.input = append(r.input, u64(e.Usage.Input()))
	r.output = append(r.output, u64(e.Usage.Output()))
	r.total = append(r.total, u64(TotalTokens(e.Usage)))
	r.stream = append(r.stream, b8(e.Stream))
	r.hasError = append(r.hasError, b8(e.HasError()))
	r.errMsg = append(r.errMsg, e.ErrorMessage)
	r.reqSize = append(r.reqSize, u64(e.RequestBytes))
	r.respSize = append(r.respSize, u64(e.ResponseBytes))
	r.project = append(r.project, e.Project)
	r.tokenHash = append(r.tokenHash, e.TokenHash)
	r.requestID = append(r.requestID, e.RequestID)
	r.instance = append(r.instance, e.Instance)
	r.method = append(r.method, e.Method)
	r.referer = append(r.referer, e.Referer)
	r.errType = append(r.errType, e.ErrorType)
	r.ttfb = append(r.ttfb, u32(e.TTFBMs))
	r.prompt = append(r.prompt, u64(e.Usage.Prompt))
	r.candidates = append(r.candidates, u64(e.Usage.Candidates))
	r.thoughts = append(r.thoughts, u64(e.Usage.Thoughts))
	r.cached = append(r.cached, u64(e.Usage.Cached))
	r.toolUse = append(r.toolUse, u64(e.Usage.ToolUsePrompt))
	r.estInput = append(r.estInput, u64(e.EstimatedInputTokens))
	r.interrupted = append(r.interrupted, e.Interrupted)
	r.cacheHit = append(r.cacheHit, b8(e.CacheHit))

	start := len(r.fKey)
	for i := range e.Attempts {
		a := &e.Attempts[i]
		r.fKey = append(r.fKey, a.KeyHash)
		r.fProject = append(r.fProject, a.Project)
		r.fTs = append(r.fTs, eventTime(a.TimeMs))
		r.fStatus = append(r.fStatus, uint16(a.Status))
		r.fFailure = append(r.fFailure, a.Failure)
		r.fLatency = append(r.fLatency, u32(a.LatencyMs))
		r.fInput = append(r.fInput, u64(a.InputTokens))
		r.fCounted = append(r.fCounted, b8(a.Counted))
		r.fRetry = append(r.fRetry, u32(a.RetryAfterMs))
	}
	end := len(r.fKey)
	// Full slice expressions: a later append to a flat buffer never writes into a row's
	// sub-slice (it reallocates, leaving earlier rows on the old array).
	r.aKey = append(r.aKey, r.fKey[start:end:end])
	r.aProject = append(r.aProject, r.fProject[start:end:end])
	r.aTs = append(r.aTs, r.fTs[start:end:end])
	r.aStatus = append(r.aStatus, r.fStatus[start:end:end])
	r.aFailure = append(r.aFailure, r.fFailure[start:end:end])
	r.aLatency = append(r.aLatency, r.fLatency[start:end:end])
	r.aInput = append(r.aInput, r.fInput[start:end:end])
	r.aCounted = append(r.aCounted, r.fCounted[start:end:end])
	r.aRetry = append(r.aRetry, r.fRetry[start:end:end])
}

func (r *requestRows) len() int { return len(r.id) }

func (r *requestRows) columns() []column {
	return []column{
		{"id", r.id}, {"timestamp", r.timestamp}, {"client_type", r.clientType},
		{"client_ip", r.clientIP}, {"user_agent", r.userAgent}, {"api_key_hash", r.keyHash},
		{"model", r.model}, {"original_model", r.originalModel}, {"endpoint", r.endpoint},
		{"response_time", r.responseTime}, {"status_code", r.status},
		{"input_tokens", r.input}, {"output_tokens", r.output}, {"total_tokens", r.total},
		{"is_stream", r.stream}, {"has_error", r.hasError}, {"error_message", r.errMsg},
		{"request_size", r.reqSize}, {"response_size", r.respSize},
		{"project", r.project}, {"token_hash", r.tokenHash}, {"request_id", r.requestID},
		{"instance", r.instance}, {"method", r.method}, {"referer", r.referer},
		{"error_type", r.errType}, {"ttfb_ms", r.ttfb},
		{"prompt_tokens", r.prompt}, {"candidates_tokens", r.candidates},
		{"thoughts_tokens", r.thoughts}, {"cached_tokens", r.cached},
		{"tool_use_prompt_tokens", r.toolUse}, {"est_input_tokens", r.estInput},
		{"interrupted", r.interrupted}, {"cache_hit", r.cacheHit},
		{"attempts.key_hash", r.aKey}, {"attempts.project", r.aProject}, {"attempts.ts", r.aTs},
		{"attempts.status", r.aStatus}, {"attempts.failure", r.aFailure},
		{"attempts.latency_ms", r.aLatency}, {"attempts.input_tokens", r.aInput},
		{"attempts.counted", r.aCounted}, {"attempts.retry_after_ms", r.aRetry},
	}
}

// keyStateRows holds key_state_log columns.
type keyStateRows struct {
	id, instance, kind, keyHash, project, model, reason, source, quotaID, requestID, message []string
	timestamp, until                                                                         []time.Time
	rpm, tpm, rpd                                                                            []uint8
	retryDelay                                                                               []uint32
	status                                                                                   []uint16
}

func (r *keyStateRows) reset() {
	*r = keyStateRows{
		id: r.id[:0], instance: r.instance[:0], kind: r.kind[:0], keyHash: r.keyHash[:0], project: r.project[:0],
		model: r.model[:0], reason: r.reason[:0], source: r.source[:0], quotaID: r.quotaID[:0],
		requestID: r.requestID[:0], message: r.message[:0], timestamp: r.timestamp[:0], until: r.until[:0],
		rpm: r.rpm[:0], tpm: r.tpm[:0], rpd: r.rpd[:0], retryDelay: r.retryDelay[:0], status: r.status[:0],
	}
}

func (r *keyStateRows) add(e *schemas.KeyStateEvent) {
	r.id = append(r.id, e.EventID)
	r.timestamp = append(r.timestamp, eventTime(e.TimeMs))
	r.instance = append(r.instance, e.Instance)
	r.kind = append(r.kind, e.Kind)
	r.keyHash = append(r.keyHash, e.KeyHash)
	r.project = append(r.project, e.Project)
	r.model = append(r.model, e.Model)
	r.reason = append(r.reason, e.Reason)
	r.source = append(r.source, e.Source)
	r.quotaID = append(r.quotaID, e.QuotaID)
	r.rpm = append(r.rpm, b8(e.QuotaExceeded.RPM))
	r.tpm = append(r.tpm, b8(e.QuotaExceeded.TPM))
	r.rpd = append(r.rpd, b8(e.QuotaExceeded.RPD))
	r.until = append(r.until, eventTime(max(e.UntilMs, 0)))
	r.retryDelay = append(r.retryDelay, u32(e.RetryDelayMs))
	r.requestID = append(r.requestID, e.RequestID)
	r.status = append(r.status, uint16(max(e.Status, 0)))
	r.message = append(r.message, e.Message)
}

func (r *keyStateRows) len() int { return len(r.id) }

func (r *keyStateRows) columns() []column {
	return []column{
		{"id", r.id}, {"timestamp", r.timestamp}, {"instance", r.instance}, {"kind", r.kind},
		{"key_hash", r.keyHash}, {"project", r.project}, {"model", r.model}, {"reason", r.reason},
		{"source", r.source}, {"quota_id", r.quotaID}, {"rpm_exceeded", r.rpm},
		{"tpm_exceeded", r.tpm}, {"rpd_exceeded", r.rpd}, {"until", r.until},
		{"retry_delay_ms", r.retryDelay}, {"request_id", r.requestID}, {"status", r.status},
		{"message", r.message},
	}
}

// auditRows holds audit_log columns. params are stored sorted by key, so the same event
// always gives the same row.
type auditRows struct {
	id, instance, actor, action, target, result []string
	timestamp                                   []time.Time
	pKey, pValue                                [][]string
}

func (r *auditRows) reset() {
	*r = auditRows{
		id: r.id[:0], instance: r.instance[:0], actor: r.actor[:0], action: r.action[:0],
		target: r.target[:0], result: r.result[:0], timestamp: r.timestamp[:0],
		pKey: r.pKey[:0], pValue: r.pValue[:0],
	}
}

func (r *auditRows) add(e *schemas.AuditEvent) {
	r.id = append(r.id, e.EventID)
	r.timestamp = append(r.timestamp, eventTime(e.TimeMs))
	r.instance = append(r.instance, e.Instance)
	r.actor = append(r.actor, e.Actor)
	r.action = append(r.action, e.Action)
	r.target = append(r.target, e.Target)
	r.result = append(r.result, e.Result)
	keys := make([]string, 0, len(e.Params))
	for k := range e.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = e.Params[k]
	}
	r.pKey = append(r.pKey, keys)
	r.pValue = append(r.pValue, values)
}

func (r *auditRows) len() int { return len(r.id) }

func (r *auditRows) columns() []column {
	return []column{
		{"id", r.id}, {"timestamp", r.timestamp}, {"instance", r.instance}, {"actor", r.actor},
		{"action", r.action}, {"target", r.target}, {"params.key", r.pKey},
		{"params.value", r.pValue}, {"result", r.result},
	}
}
