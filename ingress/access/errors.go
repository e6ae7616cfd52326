package access

import (
	"fmt"
	"net/http"
	"time"
)

// Error is an access decision the client must hear about. Its Message is safe to send
// to the client: it never contains a credential. Compare with errors.Is against the
// sentinels below; the Code decides.
type Error struct {
	Code    string
	Status  int
	Message string
	// RetryAt is set for 429s: when the client may try again.
	RetryAt time.Time
}

func (e *Error) Error() string { return e.Message }

// Is matches errors of the same Code, so errors.Is(err, ErrInvalidToken) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func (e *Error) with(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

func (e *Error) until(t time.Time) *Error {
	c := *e
	c.RetryAt = t
	return &c
}

// Sentinels, with the status each maps to.
var (
	// ErrNoCredential: no credential in any of the accepted places.
	ErrNoCredential = &Error{Code: "missing_credential", Status: http.StatusUnauthorized,
		Message: "no credential: send Authorization: Bearer <token>, x-api-key, x-goog-api-key or ?key="}
	// ErrUnsupportedScheme: Authorization with a scheme other than Bearer.
	ErrUnsupportedScheme = &Error{Code: "unsupported_scheme", Status: http.StatusUnauthorized,
		Message: "unsupported Authorization scheme: use Bearer"}
	// ErrAmbiguousCredential: different credentials in different places.
	ErrAmbiguousCredential = &Error{Code: "ambiguous_credential", Status: http.StatusBadRequest,
		Message: "different credentials in different places: send one"}
	// ErrMalformedCredential: a credential that cannot be a token or key.
	ErrMalformedCredential = &Error{Code: "malformed_credential", Status: http.StatusUnauthorized,
		Message: "malformed credential"}
	// ErrInvalidToken: no such gateway token.
	ErrInvalidToken = &Error{Code: "invalid_token", Status: http.StatusUnauthorized,
		Message: "invalid token"}
	// ErrTokenDisabled: the token exists but the operator disabled it.
	ErrTokenDisabled = &Error{Code: "token_disabled", Status: http.StatusForbidden,
		Message: "token disabled"}
	// ErrTooManyFailures: the source failed to authenticate too often; wait.
	ErrTooManyFailures = &Error{Code: "too_many_failures", Status: http.StatusTooManyRequests,
		Message: "too many failed authentications from this address; retry later"}
	// ErrModelNotAllowed: the token may not use the model.
	ErrModelNotAllowed = &Error{Code: "model_not_allowed", Status: http.StatusForbidden,
		Message: "model not allowed for this token"}
	// ErrTokenRateLimited: the token's requests per minute are used up.
	ErrTokenRateLimited = &Error{Code: "token_rate_limited", Status: http.StatusTooManyRequests,
		Message: "token request rate limit reached"}
	// ErrTokenDailyLimit: the token's requests per day are used up.
	ErrTokenDailyLimit = &Error{Code: "token_daily_limit", Status: http.StatusTooManyRequests,
		Message: "token daily request limit reached"}
	// ErrAdminUnauthorized: the admin token is missing or wrong.
	ErrAdminUnauthorized = &Error{Code: "admin_unauthorized", Status: http.StatusUnauthorized,
		Message: "admin token required"}
	// ErrAdminDisabled: no admin token is configured, so the admin API is off.
	ErrAdminDisabled = &Error{Code: "admin_disabled", Status: http.StatusForbidden,
		Message: "admin API disabled: no admin token configured"}
)
