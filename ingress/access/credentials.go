package access

import (
	"net/http"
	"strings"
)

// Credential locations, as Credential.Source names them.
const (
	SourceAuthorization = "authorization"
	SourceXAPIKey       = "x-api-key"
	SourceXGoogAPIKey   = "x-goog-api-key"
	SourceQuery         = "query"
)

// maxCredentialLen bounds a credential: a token is 36 bytes, a pass-through list of 16
// Gemini keys about 640.
const maxCredentialLen = 4096

// Credential is what a client presented.
type Credential struct {
	Value string
	// Source is where it was found; with several identical copies, the first in the
	// order Authorization, x-api-key, x-goog-api-key, ?key=.
	Source string
}

// Extract finds the request's credential. The places, and what each client sends:
//
//	Authorization: Bearer <cred>   OpenAI SDKs, most HTTP clients (the scheme is
//	                               case-insensitive; any other scheme is refused with
//	                               ErrUnsupportedScheme, never ignored)
//	x-api-key: <cred>              Anthropic SDKs
//	x-goog-api-key: <cred>         Google's genai SDKs
//	?key=<cred>                    Gemini REST examples and curl
//
// Exactly one credential: it may appear in several places (some clients send the same
// value twice), but different values are refused with ErrAmbiguousCredential rather
// than guessing which one the client meant. None at all is ErrNoCredential. A value
// longer than 4096 bytes or holding control characters or spaces is
// ErrMalformedCredential. No error message contains the credential.
func Extract(r *http.Request) (Credential, error) {
	var found []Credential
	for _, h := range r.Header.Values("Authorization") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		scheme, value, ok := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Credential{}, ErrUnsupportedScheme.with("unsupported Authorization scheme %q: use Bearer", printableScheme(scheme))
		}
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			return Credential{}, ErrMalformedCredential.with("Authorization: Bearer without a credential")
		}
		found = append(found, Credential{Value: value, Source: SourceAuthorization})
	}
	for _, name := range []string{SourceXAPIKey, SourceXGoogAPIKey} {
		for _, v := range r.Header.Values(name) {
			if v = strings.TrimSpace(v); v != "" {
				found = append(found, Credential{Value: v, Source: name})
			}
		}
	}
	if r.URL != nil {
		for _, v := range r.URL.Query()["key"] {
			if v = strings.TrimSpace(v); v != "" {
				found = append(found, Credential{Value: v, Source: SourceQuery})
			}
		}
	}
	if len(found) == 0 {
		return Credential{}, ErrNoCredential
	}
	for _, c := range found[1:] {
		if c.Value != found[0].Value {
			return Credential{}, ErrAmbiguousCredential.with("different credentials in %s and %s: send one", found[0].Source, c.Source)
		}
	}
	c := found[0]
	if len(c.Value) > maxCredentialLen {
		return Credential{}, ErrMalformedCredential.with("credential in %s longer than %d bytes", c.Source, maxCredentialLen)
	}
	for i := 0; i < len(c.Value); i++ {
		if b := c.Value[i]; b <= ' ' || b >= 0x7f {
			return Credential{}, ErrMalformedCredential.with("credential in %s holds spaces, control or non-ASCII characters", c.Source)
		}
	}
	return c, nil
}

// knownSchemes are the schemes an error message may name. Anything else may be a
// credential sent without a scheme ("Authorization: gca_..."), never to be echoed.
var knownSchemes = []string{"Basic", "Digest", "Negotiate", "NTLM", "Token", "ApiKey", "Api-Key", "Key", "HOBA", "Mutual", "AWS4-HMAC-SHA256", "DPoP"}

func printableScheme(s string) string {
	for _, k := range knownSchemes {
		if strings.EqualFold(s, k) {
			return k
		}
	}
	return "(not a known scheme)"
}
