package gemsim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Messages of the real API, copied so that clients and the gateway's classifier see
// exactly what they would see from Google.
const (
	msgMissingKey = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
	msgInvalidKey = "API key not valid. Please pass a valid API key."
	msgOverloaded = "The model is overloaded. Please try again later."
	msgInternal   = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
	msgBare429    = "Resource has been exhausted (e.g. check quota)."
	msgDeadline   = "Deadline expired before operation could complete."
	msgQuotaHead  = "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n"
	rateLimitDocs = "https://ai.google.dev/gemini-api/docs/rate-limits"
	apiService    = "generativelanguage.googleapis.com"
)

// statusName maps an HTTP code to the google.rpc status the API pairs with it.
func statusName(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

// rpcError builds a google.rpc error body.
func rpcError(code int, message string, details ...gemini.ErrorDetail) *gemini.ErrorBody {
	return &gemini.ErrorBody{Error: gemini.Status{Code: code, Message: message, Status: statusName(code), Details: details}}
}

// errMissingKey is the 403 of a call without any API key.
func errMissingKey() *gemini.ErrorBody {
	return rpcError(http.StatusForbidden, msgMissingKey)
}

// errInvalidKey is the 400 of an unknown key, with the ErrorInfo the gateway keys on.
func errInvalidKey() *gemini.ErrorBody {
	return rpcError(http.StatusBadRequest, msgInvalidKey, gemini.ErrorDetail{
		Type:     gemini.TypeErrorInfo,
		Reason:   "API_KEY_INVALID",
		Domain:   "googleapis.com",
		Metadata: map[string]string{"service": apiService},
	})
}

// errForbidden is the 403 of a key whose consumer was suspended.
func errForbidden(projectID string) *gemini.ErrorBody {
	return rpcError(http.StatusForbidden,
		fmt.Sprintf("Permission denied: Consumer 'projects/%s' has been suspended.", projectID),
		gemini.ErrorDetail{
			Type:     gemini.TypeErrorInfo,
			Reason:   "CONSUMER_SUSPENDED",
			Domain:   "googleapis.com",
			Metadata: map[string]string{"service": apiService, "consumer": "projects/" + projectID},
		})
}

// errModelNotFound is the 404 of an unknown model or of a method the model lacks.
func errModelNotFound(version, modelName, method string) *gemini.ErrorBody {
	return rpcError(http.StatusNotFound, fmt.Sprintf(
		"models/%s is not found for API version %s, or is not supported for %s. Call ListModels to see the list of available models and their supported methods.",
		modelName, version, method))
}

// errInvalidArgument is a 400 caused by the request itself.
func errInvalidArgument(message string) *gemini.ErrorBody {
	return rpcError(http.StatusBadRequest, message)
}

// errStatus is the body the API sends with a bare status code, for faults.
func errStatus(code int) *gemini.ErrorBody {
	switch code {
	case http.StatusServiceUnavailable:
		return rpcError(code, msgOverloaded)
	case http.StatusTooManyRequests:
		return rpcError(code, msgBare429)
	case http.StatusGatewayTimeout:
		return rpcError(code, msgDeadline)
	case http.StatusBadRequest:
		return errInvalidKey()
	case http.StatusInternalServerError:
		return rpcError(code, msgInternal)
	}
	return rpcError(code, http.StatusText(code))
}

// quotaNames are the metric and quota id of a violated quota, as the real API names them
// for the project's tier and the model's kind.
func quotaNames(kind quotaKind, tier string, embedding bool) (metric, quotaID string) {
	tierWord, suffix := "free_tier", gemini.FreeTierSuffix
	if tier == TierOne {
		tierWord, suffix = "paid_tier", ""
	}
	if embedding {
		metric = "generativelanguage.googleapis.com/embed_content_" + tierWord + "_requests"
		if kind == quotaRPD {
			return metric, "EmbedContentRequestsPerDayPerProjectPerModel" + suffix
		}
		return metric, "EmbedContentRequestsPerMinutePerProjectPerModel" + suffix
	}
	switch kind {
	case quotaTPM:
		return "generativelanguage.googleapis.com/generate_content_" + tierWord + "_input_token_count", gemini.QuotaInputTokensPerMin + suffix
	case quotaRPD:
		return "generativelanguage.googleapis.com/generate_content_" + tierWord + "_requests", gemini.QuotaRequestsPerDay + suffix
	}
	return "generativelanguage.googleapis.com/generate_content_" + tierWord + "_requests", gemini.QuotaRequestsPerMinute + suffix
}

// errQuota is the 429 of violated quotas: the message lists each one and the wait, and
// the details carry QuotaFailure, Help and RetryInfo. The wait is the longest of the
// violations, so a client that honours it finds every quota reset. RetryInfo rounds it
// up to whole seconds (the real API rounds down, which invites one early retry).
func errQuota(vs []violation, modelName, tier string, embedding bool) *gemini.ErrorBody {
	var wait time.Duration
	var msg strings.Builder
	msg.WriteString(msgQuotaHead)
	violations := make([]gemini.QuotaViolation, 0, len(vs))
	for _, v := range vs {
		metric, id := quotaNames(v.kind, tier, embedding)
		limit := strconv.FormatInt(v.limit, 10)
		fmt.Fprintf(&msg, "* Quota exceeded for metric: %s, limit: %s, model: %s\n", metric, limit, modelName)
		violations = append(violations, gemini.QuotaViolation{
			QuotaMetric:     metric,
			QuotaID:         id,
			QuotaDimensions: map[string]string{"location": "global", "model": modelName},
			QuotaValue:      limit,
		})
		wait = max(wait, v.retry)
	}
	fmt.Fprintf(&msg, "Please retry in %.2fs.", wait.Seconds())
	return rpcError(http.StatusTooManyRequests, msg.String(),
		gemini.ErrorDetail{Type: gemini.TypeQuotaFailure, Violations: violations},
		gemini.ErrorDetail{Type: gemini.TypeHelp, Links: []gemini.HelpLink{{Description: "Learn more about Gemini API quotas", URL: rateLimitDocs}}},
		gemini.ErrorDetail{Type: gemini.TypeRetryInfo, RetryDelay: strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10) + "s"},
	)
}
