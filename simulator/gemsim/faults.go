package gemsim

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Fault overrides one response. Delay may accompany any other field; of Status, Reset,
// MalformedJSON, ErrorIn200 and CutStreamAfter at most one is set.
type Fault struct {
	// Status answers with this HTTP code and the real API's body for it: 500 INTERNAL,
	// 503 UNAVAILABLE "The model is overloaded...", 429 without details, 400
	// API_KEY_INVALID, 403 PERMISSION_DENIED, 504 DEADLINE_EXCEEDED.
	Status int `json:"status,omitempty"`
	// Message replaces the body's message; with Status 400 it also drops the
	// API_KEY_INVALID detail, making an ordinary bad-request error.
	Message string `json:"message,omitempty"`
	// Quota, with Status 429, sends the full quota body of "rpm", "tpm" or "rpd" instead
	// of a bare 429.
	Quota string `json:"quota,omitempty"`
	// Delay hangs this long (or until the client leaves) before answering; alone it
	// delays an otherwise normal response.
	Delay Duration `json:"delay,omitempty"`
	// CutStreamAfter closes the connection after that many stream chunks, without the
	// final chunk; a non-streamed answer is cut halfway through its body.
	CutStreamAfter *int `json:"cut_stream_after,omitempty"`
	// Reset closes the TCP connection at once, with an RST where the platform allows.
	Reset bool `json:"reset,omitempty"`
	// MalformedJSON answers 200 with a body that is not valid JSON.
	MalformedJSON bool `json:"malformed_json,omitempty"`
	// ErrorIn200 answers 200 with a google.rpc error body (500 INTERNAL).
	ErrorIn200 bool `json:"error_in_200,omitempty"`
}

// FaultRule queues a fault for the next Count matching calls. With Key set it applies to
// that key's calls only, with Project to the project's keys, with neither to every key.
// Key rules are used before project rules, and those before global ones.
type FaultRule struct {
	Key     string `json:"key,omitempty"`
	Project string `json:"project,omitempty"`
	// Method restricts the rule to one route: generateContent, streamGenerateContent,
	// countTokens, embedContent, batchEmbedContents, listModels or getModel. Empty: any.
	Method string `json:"method,omitempty"`
	Fault  Fault  `json:"fault"`
	// Count is how many calls the fault applies to. Default 1.
	Count int `json:"count,omitempty"`
}

// validate checks a rule on its own; the key and project are checked against the pool
// when the rule is queued.
func (r FaultRule) validate() error {
	var errs []error
	f := r.Fault
	outcomes := 0
	for _, set := range []bool{f.Status != 0, f.Reset, f.MalformedJSON, f.ErrorIn200, f.CutStreamAfter != nil} {
		if set {
			outcomes++
		}
	}
	if outcomes > 1 {
		errs = append(errs, errors.New("set at most one of status, reset, malformed_json, error_in_200, cut_stream_after"))
	}
	if outcomes == 0 && f.Delay == 0 {
		errs = append(errs, errors.New("empty fault"))
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		errs = append(errs, fmt.Errorf("status %d: want 400 to 599", f.Status))
	}
	switch f.Quota {
	case "":
	case "rpm", "tpm", "rpd":
		if f.Status != http.StatusTooManyRequests {
			errs = append(errs, errors.New("quota needs status 429"))
		}
	default:
		errs = append(errs, fmt.Errorf("quota %q: want rpm, tpm or rpd", f.Quota))
	}
	if f.Delay < 0 {
		errs = append(errs, errors.New("negative delay"))
	}
	if f.CutStreamAfter != nil && *f.CutStreamAfter < 0 {
		errs = append(errs, errors.New("negative cut_stream_after"))
	}
	if r.Key != "" && r.Project != "" {
		errs = append(errs, errors.New("set key or project, not both"))
	}
	if r.Count < 0 {
		errs = append(errs, fmt.Errorf("count %d: want 1 or more (0 means 1)", r.Count))
	}
	switch r.Method {
	case "", methodGenerate, methodStream, methodCountTokens, methodEmbed, methodBatchEmbed, methodListModels, methodGetModel:
	default:
		errs = append(errs, fmt.Errorf("method %q is not a route of the simulator", r.Method))
	}
	return errors.Join(errs...)
}

// queuedFault is a rule with the number of calls it still applies to.
type queuedFault struct {
	rule FaultRule
	left int
}

// faultBook holds the queued faults. pending lets the hot path skip the lock when the
// book is empty, which is always the case in benchmarks.
type faultBook struct {
	pending atomic.Int64

	mu        sync.Mutex
	byKey     map[string][]*queuedFault
	byProject map[string][]*queuedFault
	global    []*queuedFault
}

// newFaultBook returns an empty book.
func newFaultBook() *faultBook {
	return &faultBook{byKey: map[string][]*queuedFault{}, byProject: map[string][]*queuedFault{}}
}

// add queues a validated rule.
func (b *faultBook) add(r FaultRule) {
	if r.Count == 0 {
		r.Count = 1
	}
	q := &queuedFault{rule: r, left: r.Count}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case r.Key != "":
		b.byKey[r.Key] = append(b.byKey[r.Key], q)
	case r.Project != "":
		b.byProject[r.Project] = append(b.byProject[r.Project], q)
	default:
		b.global = append(b.global, q)
	}
	b.pending.Add(int64(r.Count))
}

// take returns the fault for a call, consuming one use of the first matching rule.
func (b *faultBook) take(key, projectID, method string) (Fault, bool) {
	if b.pending.Load() == 0 {
		return Fault{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if f, ok := b.takeFrom(b.byKey, key, method); ok {
		return f, true
	}
	if f, ok := b.takeFrom(b.byProject, projectID, method); ok {
		return f, true
	}
	list, f, ok := b.pop(b.global, method)
	b.global = list
	return f, ok
}

// takeFrom pops from one keyed queue, dropping the queue when it empties.
func (b *faultBook) takeFrom(queues map[string][]*queuedFault, name, method string) (Fault, bool) {
	list, ok := queues[name]
	if !ok {
		return Fault{}, false
	}
	list, f, ok := b.pop(list, method)
	if len(list) == 0 {
		delete(queues, name)
	} else {
		queues[name] = list
	}
	return f, ok
}

// pop uses the first rule of list that matches method and returns the list without the
// rule once it is spent.
func (b *faultBook) pop(list []*queuedFault, method string) ([]*queuedFault, Fault, bool) {
	for i, q := range list {
		if q.rule.Method != "" && q.rule.Method != method {
			continue
		}
		q.left--
		b.pending.Add(-1)
		if q.left == 0 {
			list = append(list[:i:i], list[i+1:]...)
		}
		return list, q.rule.Fault, true
	}
	return list, Fault{}, false
}

// list returns the queued rules with Count set to the uses left.
func (b *faultBook) list() []FaultRule {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []FaultRule
	appendAll := func(list []*queuedFault) {
		for _, q := range list {
			r := q.rule
			r.Count = q.left
			out = append(out, r)
		}
	}
	for _, l := range b.byKey {
		appendAll(l)
	}
	for _, l := range b.byProject {
		appendAll(l)
	}
	appendAll(b.global)
	return out
}

// clear drops every rule and returns how many uses were left.
func (b *faultBook) clear() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.byKey)
	clear(b.byProject)
	b.global = nil
	return b.pending.Swap(0)
}

// applyFault acts out a fault. It returns true when the response is finished (or the
// client left), false when the call should proceed, possibly with a cut pending.
func (c *call) applyFault(f Fault) bool {
	if f.Delay > 0 && !c.sleep(time.Duration(f.Delay)) {
		return true
	}
	switch {
	case f.Reset:
		c.resetConn()
	case f.MalformedJSON:
		c.writeMalformed()
	case f.ErrorIn200:
		body := errStatus(http.StatusInternalServerError)
		if f.Message != "" {
			body.Error.Message = f.Message
		}
		c.writeErrorIn200(body)
	case f.Status == http.StatusTooManyRequests && f.Quota != "":
		c.writeError(c.faultQuotaError(f.Quota))
	case f.Status != 0:
		body := errStatus(f.Status)
		if f.Message != "" {
			body.Error.Message = f.Message
			body.Error.Details = nil
		}
		c.writeError(body)
	case f.CutStreamAfter != nil:
		c.cutAfter = *f.CutStreamAfter
		return false
	default:
		return false
	}
	return true
}

// faultQuotaError builds the full 429 of a forced quota violation, with the limit in
// force for the call's model (or 1 when the model is unlimited).
func (c *call) faultQuotaError(quota string) *gemini.ErrorBody {
	now := c.s.now()
	w := windowAt(now, c.s.pacific)
	modelName := c.modelName
	l := c.key.project.limits[modelName]
	v := violation{kind: quotaRPM, limit: l.RPM, retry: w.minuteEnd.Sub(now)}
	switch quota {
	case "tpm":
		v = violation{kind: quotaTPM, limit: l.TPM, retry: w.minuteEnd.Sub(now)}
	case "rpd":
		v = violation{kind: quotaRPD, limit: l.RPD, retry: w.dayEnd.Sub(now)}
	}
	v.limit = max(v.limit, 1)
	embedding := c.model != nil && c.model.embedding()
	return errQuota([]violation{v}, modelName, c.key.project.tier, embedding)
}
