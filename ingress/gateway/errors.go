package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/anthropic"
	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/ingress/openai"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

func stack() string { return string(debug.Stack()) }

// writeError answers with a gateway-made error in the client's protocol shape.
func writeError(c *gin.Context, status int, msg string) {
	writeErrorRetry(c, status, msg, 0)
}

// writeErrorRetry is writeError with a Retry-After header when retryAfter > 0.
func writeErrorRetry(c *gin.Context, status int, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		c.Header("Retry-After", retryAfterValue(retryAfter))
	}
	var body []byte
	switch clientTypeOf(c) {
	case schemas.ClientOpenAI:
		body = openai.NewError(status, openAIType(status), openAICode(status), "", msg).Body()
	case schemas.ClientClaude:
		e := anthropic.NewError(anthropicType(status), "%s", msg)
		e.RequestID = c.GetString(ctxRequestID)
		body = e.Body()
		status = e.Status()
	default:
		body = geminiErrorRetry(status, msg, retryAfter)
	}
	if x := exchangeOf(c); x != nil && x.ev.Status == 0 {
		x.fail(status, errorTypeForStatus(status), msg)
		x.emit(status, int64(len(body)))
	}
	c.Data(status, "application/json", body)
}

// retryAfterValue is whole seconds, rounded up, at least 1.
func retryAfterValue(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

func geminiError(status int, msg string) []byte {
	return geminiErrorRetry(status, msg, 0)
}

// geminiErrorRetry is geminiError with a google.rpc.RetryInfo detail when retryAfter > 0:
// Gemini's own clients read the wait from retryDelay, not from Retry-After, so the
// detail says the same whole seconds as the header.
func geminiErrorRetry(status int, msg string, retryAfter time.Duration) []byte {
	st := gemini.Status{Code: status, Message: msg, Status: rpcStatus(status)}
	if retryAfter > 0 {
		st.Details = []gemini.ErrorDetail{{Type: gemini.TypeRetryInfo, RetryDelay: retryAfterValue(retryAfter) + "s"}}
	}
	b, _ := json.Marshal(gemini.ErrorBody{Error: st})
	return b
}

// rpcStatus is the google.rpc status name Gemini pairs with an HTTP status.
func rpcStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed:
		return "UNIMPLEMENTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	case 499:
		return "CANCELLED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

func openAIType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return openai.TypeAuthentication
	case http.StatusForbidden:
		return openai.TypePermission
	case http.StatusNotFound:
		return openai.TypeNotFound
	case http.StatusTooManyRequests:
		return openai.TypeRateLimit
	}
	if status >= 500 {
		return openai.TypeServer
	}
	return openai.TypeInvalidRequest
}

func openAICode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return openai.CodeInvalidAPIKey
	case http.StatusTooManyRequests:
		return openai.CodeRateLimitExceeded
	case http.StatusServiceUnavailable:
		return openai.CodeOverloaded
	}
	return ""
}

func anthropicType(status int) anthropic.ErrorType {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return anthropic.InvalidRequestError
	case http.StatusUnauthorized:
		return anthropic.AuthenticationError
	case http.StatusForbidden:
		return anthropic.PermissionError
	case http.StatusNotFound:
		return anthropic.NotFoundError
	case http.StatusRequestEntityTooLarge:
		return anthropic.RequestTooLarge
	case http.StatusTooManyRequests:
		return anthropic.RateLimitError
	case http.StatusGatewayTimeout:
		return anthropic.TimeoutError
	case http.StatusServiceUnavailable:
		return anthropic.OverloadedError
	}
	if status >= 400 && status < 500 {
		return anthropic.InvalidRequestError
	}
	return anthropic.APIError
}

// writeExhausted answers when no key could take the request: 429 when quota (or
// cool-downs, which are quota) is what is missing, 503 when keys are disabled or the
// upstream is failing, with Retry-After = the earliest moment a key frees up.
func (g *Gateway) writeExhausted(c *gin.Context, ex *keypool.ExhaustedError) {
	status := http.StatusServiceUnavailable
	errType := schemas.ErrUpstream
	msg := "no Gemini key can serve this request now: " + ex.Reason
	switch ex.Reason {
	case keypool.ExhaustedQuota, keypool.ExhaustedCooldown:
		status = http.StatusTooManyRequests
		errType = schemas.ErrQuotaExhausted
		msg = "every Gemini key's quota for this model is used up; retry after the Retry-After delay"
	case keypool.ExhaustedModelNotAllowed:
		status = http.StatusForbidden
		errType = schemas.ErrAuth
		msg = "no key of this gateway may use this model"
	}
	var wait time.Duration
	if !ex.RetryAt.IsZero() {
		wait = ex.RetryAt.Sub(g.now())
	}
	if x := exchangeOf(c); x != nil {
		x.fail(status, errType, msg)
	}
	writeErrorRetry(c, status, msg, max(wait, time.Second))
}

// writeUpstreamFailure answers with the last attempt's failure when failover ended
// without success.
func (g *Gateway) writeUpstreamFailure(c *gin.Context, r *upstream.Response, passthrough bool) {
	x := exchangeOf(c)
	if r.Exhausted != nil && r.Failure.Retryable() {
		// Every key was tried or is unusable; say when to come back.
		g.writeExhausted(c, r.Exhausted)
		return
	}
	status, body := r.Status, r.Body
	switch {
	case r.Status == 0 && r.TimedOut:
		status, body = http.StatusGatewayTimeout, geminiError(http.StatusGatewayTimeout, "the Gemini API did not answer in time")
	case r.Status == 0:
		status, body = http.StatusBadGateway, geminiError(http.StatusBadGateway, "the Gemini API could not be reached")
	case !passthrough && (r.Failure == gemini.FailureKeyInvalid || r.Failure == gemini.FailureForbidden):
		// The gateway's own key failed: that is the operator's problem, not the
		// client's credentials.
		status, body = http.StatusServiceUnavailable, geminiError(http.StatusServiceUnavailable, "no usable Gemini key: the gateway's keys were refused by the upstream")
	}
	cl := gemini.Classify(status, body)
	errType := errorTypeForStatus(status)
	switch {
	case r.TimedOut:
		errType = schemas.ErrTimeout
	case cl.Failure == gemini.FailureMinuteQuota || cl.Failure == gemini.FailureDayQuota || cl.Failure == gemini.FailureQuotaUnknown:
		// The attempt budget ran out on spent quotas before the pool did: the same
		// condition writeExhausted records, so the same error type.
		errType = schemas.ErrQuotaExhausted
	}
	var out []byte
	var retry time.Duration
	switch clientTypeOf(c) {
	case schemas.ClientOpenAI:
		e := openai.FromGeminiError(status, body)
		status, out, retry = e.Status(), e.Body(), e.RetryAfter
	case schemas.ClientClaude:
		e := anthropic.FromGeminiError(status, body)
		e.RequestID = c.GetString(ctxRequestID)
		status, out, retry = e.Status(), e.Body(), e.RetryAfter
	default:
		out = []byte(redact(string(body)))
		retry = cl.RetryDelay
	}
	if retry > 0 {
		c.Header("Retry-After", retryAfterValue(retry))
	}
	if x != nil {
		x.fail(status, errType, cl.Message)
		x.emit(status, int64(len(out)))
	}
	c.Data(status, "application/json", out)
}

func asExhausted(err error) *keypool.ExhaustedError {
	var ex *keypool.ExhaustedError
	if errors.As(err, &ex) {
		return ex
	}
	return nil
}
