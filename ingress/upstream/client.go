// Package upstream calls the Gemini API for the ingress: it asks the key pool for a key,
// sends the request, reads what the answer means for the key (gemini.Classify), and on a
// quota, key or upstream failure tries another key within an attempt budget and a
// deadline. Each attempt is recorded for the request event, and what an attempt taught
// about a key (a cool-down, a disabled key) is published as a key-state event.
//
// A stream is handed to the caller only after its first event arrived, so a stream
// whose upstream fails before that fails over like any other request; after it, a cut
// is reported to the client and recorded, never retried.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// DefaultBaseURL is the real Gemini API. The simulator is used only when configured.
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// Picker chooses keys and takes back what an attempt taught; keypool.Pool is one.
type Picker interface {
	Select(ctx context.Context, req keypool.SelectRequest) (*keypool.Lease, error)
	Release(ctx context.Context, l *keypool.Lease, o keypool.Outcome) error
}

// KeyStateSink receives the key-state events attempts produce (the publisher).
type KeyStateSink func(e *schemas.KeyStateEvent)

// Options configure a Client. Zero values take the documented defaults.
type Options struct {
	BaseURL    string // default DefaultBaseURL
	APIVersion string // default "v1beta"
	// MaxAttempts is the attempt budget per request, the first included. Default 3.
	MaxAttempts int
	// Deadline bounds a request's attempts together (not the streaming that follows
	// the first event). Default 120 s.
	Deadline time.Duration
	// AttemptTimeout bounds one non-streaming attempt. Default 90 s.
	AttemptTimeout time.Duration
	// FirstEventTimeout bounds the wait for a stream's first event. Default 60 s.
	FirstEventTimeout time.Duration
	// StreamIdleTimeout bounds the silence between two stream events. Default 120 s.
	StreamIdleTimeout time.Duration
	// MaxResponseBytes bounds a non-streaming upstream body. Default 64 MiB.
	MaxResponseBytes int64
	Transport        http.RoundTripper
	Now              func() time.Time
	Instance         string
	OnKeyState       KeyStateSink
	Logger           *slog.Logger
}

// Client sends requests to Gemini with failover across keys.
type Client struct {
	opts   Options
	http   *http.Client
	picker Picker
	log    *slog.Logger
}

// NewTransport returns the HTTP transport for upstream calls: many idle connections
// per host (every request goes to one host), HTTP/2 when the upstream offers it.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// New returns a Client.
func New(picker Picker, opts Options) *Client {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	if opts.APIVersion == "" {
		opts.APIVersion = "v1beta"
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.Deadline <= 0 {
		opts.Deadline = 120 * time.Second
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 90 * time.Second
	}
	if opts.FirstEventTimeout <= 0 {
		opts.FirstEventTimeout = 60 * time.Second
	}
	if opts.StreamIdleTimeout <= 0 {
		opts.StreamIdleTimeout = 120 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 20
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnKeyState == nil {
		opts.OnKeyState = func(*schemas.KeyStateEvent) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{opts: opts, http: &http.Client{Transport: opts.Transport}, picker: picker, log: opts.Logger}
}

// Call is one client request to send upstream.
type Call struct {
	Model string
	// Method is the Gemini method: generateContent, streamGenerateContent, countTokens,
	// embedContent or batchEmbedContents.
	Method string
	Body   []byte
	// Stream asks for streamGenerateContent with alt=sse.
	Stream          bool
	EstimatedTokens int64
	// Subset restricts the keys to the client's own (pass-through mode).
	Subset    []*keypool.Key
	RequestID string
}

// Response is the answer of the last attempt.
type Response struct {
	Status int
	Header http.Header
	// Body is the complete body of a non-streaming answer (or of any error answer).
	Body []byte
	// Usage is the usageMetadata of a successful non-streaming answer, read while the
	// body was checked for an embedded error (nil when it has none).
	Usage *schemas.Usage
	// Stream is set for a successful streaming answer.
	Stream *Stream
	// Failure is what the last attempt's answer meant.
	Failure  gemini.Failure
	Attempts []schemas.Attempt
	Lease    *keypool.Lease
	// Exhausted is set when the pool had no key left to try; RetryAt says when one frees.
	Exhausted *keypool.ExhaustedError
	// TimedOut is set when the last attempt ended in a timeout.
	TimedOut bool
}

// ErrNoAttempt is returned when not a single attempt could be made.
var ErrNoAttempt = errors.New("no upstream attempt was possible")

// Do sends the call, failing over to other keys on quota, key and upstream failures.
// It returns an error only when no attempt could be made at all (the error is then a
// *keypool.ExhaustedError, or the context's); otherwise the last attempt's Response,
// successful or not.
func (c *Client) Do(ctx context.Context, call *Call) (*Response, error) {
	deadline := c.opts.Now().Add(c.opts.Deadline)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var last *Response
	var attempts []schemas.Attempt
	var tried []string
	for i := 0; i < c.opts.MaxAttempts; i++ {
		lease, err := c.picker.Select(dctx, keypool.SelectRequest{
			Model: call.Model, EstimatedTokens: call.EstimatedTokens, Exclude: tried, Subset: call.Subset,
		})
		if err != nil {
			var ex *keypool.ExhaustedError
			if errors.As(err, &ex) && last != nil {
				last.Exhausted = ex
				last.Attempts = attempts
				return last, nil
			}
			if last != nil {
				last.Attempts = attempts
				return last, nil
			}
			return nil, err
		}
		tried = append(tried, lease.Key.Hash())
		resp, att := c.attempt(ctx, dctx, lease, call)
		attempts = append(attempts, att)
		resp.Lease = lease
		if resp.Failure == gemini.FailureNone || !resp.Failure.Retryable() || ctx.Err() != nil || dctx.Err() != nil {
			resp.Attempts = attempts
			return resp, nil
		}
		last = resp
	}
	last.Attempts = attempts
	return last, nil
}

// attempt makes one upstream call with the leased key and settles the lease.
func (c *Client) attempt(parent, dctx context.Context, lease *keypool.Lease, call *Call) (*Response, schemas.Attempt) {
	start := c.opts.Now()
	att := schemas.Attempt{
		KeyHash: lease.Key.Hash(), Project: lease.Key.Project(), TimeMs: start.UnixMilli(),
		InputTokens: call.EstimatedTokens, Reservation: lease.Reservation,
	}
	resp := c.send(parent, dctx, lease, call)
	latency := c.opts.Now().Sub(start)
	att.LatencyMs = latency.Milliseconds()
	att.Status = resp.Status

	var cl gemini.Classified
	switch {
	case resp.Status == 0 && resp.TimedOut:
		att.Failure = "timeout"
		resp.Failure = gemini.FailureUpstream
	case resp.Status == 0:
		att.Failure = "network"
		resp.Failure = gemini.FailureUpstream
	default:
		cl = gemini.Classify(resp.Status, resp.Body)
		resp.Failure = cl.Failure
		if cl.Failure != gemini.FailureNone {
			att.Failure = cl.Failure.String()
		}
	}
	canceled := parent.Err() != nil && resp.Failure != gemini.FailureNone
	if canceled {
		// The client went away; that says nothing about the key, so the lease is
		// settled as a client-side failure: no cool-down, no circuit count.
		att.Failure = "canceled"
	}
	att.RetryAfterMs = cl.RetryDelay.Milliseconds()
	att.Counted = resp.Status >= 200 && resp.Status < 300
	if !att.Counted {
		// Nothing reached the quota: the processors will not delete this reservation,
		// so it must not keep holding headroom.
		att.InputTokens = 0
	}
	cl.Failure = resp.Failure
	if canceled {
		cl.Failure = gemini.FailureClient
	}
	outcome := keypool.OutcomeOf(cl, att.Counted, latency)
	outcome.At = start
	if err := c.picker.Release(context.WithoutCancel(parent), lease, outcome); err != nil {
		c.log.Warn("release key lease", "key_id", lease.Key.Hash(), "project", lease.Key.Project(), "err", err)
	}
	if parent.Err() == nil {
		c.emitKeyState(lease, call, cl, outcome, resp.Status, start)
	}
	return resp, att
}

// emitKeyState publishes what a failure means for the key or its project.
func (c *Client) emitKeyState(lease *keypool.Lease, call *Call, cl gemini.Classified, o keypool.Outcome, status int, at time.Time) {
	var kind string
	switch cl.Failure {
	case gemini.FailureMinuteQuota, gemini.FailureDayQuota, gemini.FailureQuotaUnknown:
		kind = schemas.KindCooldown
	case gemini.FailureKeyInvalid, gemini.FailureForbidden:
		kind = schemas.KindDisable
	default:
		return
	}
	id, err := schemas.NewEventID()
	if err != nil {
		c.log.Error("key state event id", "err", err)
		return
	}
	e := &schemas.KeyStateEvent{
		Type: schemas.TypeKeyState, V: schemas.KeyStateVersion, EventID: id, TimeMs: at.UnixMilli(),
		Instance: c.opts.Instance, Kind: kind, KeyHash: lease.Key.Hash(), Project: lease.Key.Project(),
		Model: call.Model, Source: schemas.SourceUpstream, QuotaID: cl.QuotaID,
		RetryDelayMs: cl.RetryDelay.Milliseconds(), RequestID: call.RequestID, Status: status,
		Message: truncate(RedactKeys(cl.Message), 300),
	}
	if kind == schemas.KindCooldown {
		until, reason, qe := keypool.CooldownFor(o, at)
		e.UntilMs, e.Reason, e.QuotaExceeded = until.UnixMilli(), reason, qe
	} else if cl.Failure == gemini.FailureKeyInvalid {
		e.Reason = schemas.ReasonKeyInvalid
	} else {
		e.Reason = schemas.ReasonForbidden
	}
	c.opts.OnKeyState(e)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (c *Client) url(call *Call) string {
	method := call.Method
	q := ""
	if call.Stream {
		method = "streamGenerateContent"
		q = "?alt=sse"
	}
	return c.opts.BaseURL + "/" + c.opts.APIVersion + "/models/" + url.PathEscape(call.Model) + ":" + method + q
}

// send performs the HTTP exchange. A non-streaming body is read whole; a streaming
// answer is read up to its first event.
//
// A stream's body is read after Do returned, and Do's deadline context ends when it
// returns; so the stream's context is detached from dctx: dctx bounds only the wait
// for the first event, after which the stream lives as long as the client's request
// (parent), its idle timeout, or until it is closed.
func (c *Client) send(parent, dctx context.Context, lease *keypool.Lease, call *Call) *Response {
	base := dctx
	if call.Stream {
		base = context.WithoutCancel(dctx)
	}
	actx, cancel := context.WithCancel(base)
	stopDeadline := func() bool { return true }
	if call.Stream {
		stopDeadline = context.AfterFunc(dctx, cancel)
	}
	var timer *time.Timer
	timedOut := make(chan struct{})
	limit := c.opts.AttemptTimeout
	if call.Stream {
		limit = c.opts.FirstEventTimeout
	}
	timer = time.AfterFunc(limit, func() { close(timedOut); cancel() })
	isTimeout := func() bool {
		select {
		case <-timedOut:
			return true
		default:
			return errors.Is(dctx.Err(), context.DeadlineExceeded)
		}
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url(call), bytes.NewReader(call.Body))
	if err != nil {
		timer.Stop()
		cancel()
		return &Response{Body: []byte(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", lease.Key.Secret().Reveal())
	hr, err := c.http.Do(req)
	if err != nil {
		timer.Stop()
		cancel()
		return &Response{TimedOut: isTimeout()}
	}
	if call.Stream && hr.StatusCode == http.StatusOK {
		sse := NewSSEReader(hr.Body)
		first, err := sse.Next()
		if err != nil {
			timer.Stop()
			cancel()
			_ = hr.Body.Close()
			return &Response{TimedOut: isTimeout()}
		}
		if pr, ok := Probe(first); !ok || pr.ErrorCode != 0 {
			// A 200 whose first event is an error or not JSON: treat it as what it is.
			timer.Stop()
			cancel()
			_ = hr.Body.Close()
			return errorIn200(first, pr, ok)
		}
		timer.Stop()
		stopDeadline()
		stopParent := context.AfterFunc(parent, cancel)
		release := func() { stopParent(); cancel() }
		return &Response{Status: hr.StatusCode, Header: hr.Header, Stream: newStream(sse, hr.Body, release, first, c.opts.StreamIdleTimeout)}
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, c.opts.MaxResponseBytes+1))
	timer.Stop()
	_ = hr.Body.Close()
	cancel()
	if err != nil {
		return &Response{TimedOut: isTimeout()}
	}
	if int64(len(body)) > c.opts.MaxResponseBytes {
		return &Response{Status: http.StatusBadGateway, Body: upstreamError(http.StatusBadGateway, "upstream response exceeds the gateway's limit")}
	}
	var usage *schemas.Usage
	if hr.StatusCode == http.StatusOK {
		pr, ok := Probe(body)
		if !ok || pr.ErrorCode != 0 {
			return errorIn200(body, pr, ok)
		}
		usage = pr.Usage
	}
	return &Response{Status: hr.StatusCode, Header: hr.Header, Body: body, Usage: usage}
}

// errorIn200 turns a 200 that carries an error object, or garbage, into the error it is:
// a 502 for garbage (the upstream is broken), the embedded code otherwise.
func errorIn200(body []byte, pr ProbeResult, ok bool) *Response {
	if !ok {
		return &Response{Status: http.StatusBadGateway, Body: upstreamError(http.StatusBadGateway, "upstream returned a malformed response")}
	}
	code := pr.ErrorCode
	if code < 400 || code > 599 {
		code = http.StatusBadGateway
	}
	return &Response{Status: code, Body: append([]byte(nil), body...)}
}

// upstreamError builds a google.rpc error body for failures the gateway detects itself.
func upstreamError(code int, msg string) []byte {
	status := "INTERNAL"
	if code == http.StatusBadGateway {
		status = "UNAVAILABLE"
	}
	return fmt.Appendf(nil, `{"error":{"code":%d,"message":%q,"status":%q}}`, code, msg, status)
}
