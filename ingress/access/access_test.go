package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func request(mod func(r *http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	if mod != nil {
		mod(r)
	}
	return r
}

func TestExtract(t *testing.T) {
	const cred = "gca_0123456789abcdefghijABCDEFGHIJ01"
	cases := []struct {
		name   string
		mod    func(r *http.Request)
		source string
		err    error
	}{
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+cred) }, SourceAuthorization, nil},
		{"bearer scheme is case-insensitive", func(r *http.Request) { r.Header.Set("Authorization", "bearer   "+cred) }, SourceAuthorization, nil},
		{"x-api-key (Anthropic SDKs)", func(r *http.Request) { r.Header.Set("x-api-key", cred) }, SourceXAPIKey, nil},
		{"x-goog-api-key (genai SDKs)", func(r *http.Request) { r.Header.Set("x-goog-api-key", cred) }, SourceXGoogAPIKey, nil},
		{"?key= (REST examples)", func(r *http.Request) { r.URL.RawQuery = "alt=sse&key=" + cred }, SourceQuery, nil},
		{"same value twice is one credential", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+cred)
			r.Header.Set("x-goog-api-key", cred)
		}, SourceAuthorization, nil},
		{"nothing", nil, "", ErrNoCredential},
		{"basic is refused, not ignored", func(r *http.Request) { r.SetBasicAuth("user", "pass") }, "", ErrUnsupportedScheme},
		{"a bare token in Authorization is refused", func(r *http.Request) { r.Header.Set("Authorization", cred) }, "", ErrUnsupportedScheme},
		{"bearer without value", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, "", ErrMalformedCredential},
		{"two different credentials", func(r *http.Request) {
			r.Header.Set("x-api-key", cred)
			r.URL.RawQuery = "key=other"
		}, "", ErrAmbiguousCredential},
		{"two different Authorization headers", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer a1")
			r.Header.Add("Authorization", "Bearer a2")
		}, "", ErrAmbiguousCredential},
		{"control characters", func(r *http.Request) { r.URL.RawQuery = "key=abc%0Ddef" }, "", ErrMalformedCredential},
		{"oversized", func(r *http.Request) { r.Header.Set("x-api-key", strings.Repeat("a", 5000)) }, "", ErrMalformedCredential},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Extract(request(tc.mod))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.NotContains(t, err.Error(), cred)
				require.NotContains(t, err.Error(), "pass")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.source, c.Source)
			require.Equal(t, cred, c.Value)
		})
	}
	_, err := Extract(request(func(r *http.Request) { r.SetBasicAuth("u", "p") }))
	require.ErrorContains(t, err, `unsupported Authorization scheme "Basic": use Bearer`)
}

// gateway builds an authenticator over a tokens file holding the given tokens.
func gateway(t *testing.T, clk *clock, tokens ...Token) *Authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	b, err := json.Marshal(TokenFile{Tokens: tokens})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	a, err := New(Config{Mode: ModeGateway, TokensFile: path, AdminToken: NewSecret("admin-token-0123456789")}, nil,
		Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return a
}

func bearer(tok string) func(r *http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 10, 0, 5, 0, time.UTC)} }

func TestGatewayTokens(t *testing.T) {
	clk := newClock()
	good, goodEntry, err := NewToken("ci-bot")
	require.NoError(t, err)
	require.Regexp(t, `^gca_[0-9A-Za-z]{32}$`, good)
	require.Equal(t, TokenSHA256(good), goodEntry.SHA256)
	require.Equal(t, schemas.HashToken(good), goodEntry.ID)
	goodEntry.Models = []string{"gemini-2.5-flash", "gemini-2.0-*"}
	off, offEntry, err := NewToken("former")
	require.NoError(t, err)
	offEntry.Disabled = true
	a := gateway(t, clk, goodEntry, offEntry)

	p, err := a.Authenticate(request(bearer(good)), "192.0.2.1")
	require.NoError(t, err)
	require.Equal(t, ModeGateway, p.Mode)
	require.Equal(t, "ci-bot", p.Name)
	require.Equal(t, schemas.HashToken(good), p.TokenHash)
	require.Nil(t, p.Keys)

	for model, ok := range map[string]bool{
		"gemini-2.5-flash": true, "models/gemini-2.5-flash": true, "gemini-2.0-flash-lite": true,
		"gemini-2.5-pro": false, "gemini-2.5-flash-lite": false,
	} {
		err := a.Admit(context.Background(), p, model)
		if ok {
			require.NoError(t, err, model)
		} else {
			require.ErrorIs(t, err, ErrModelNotAllowed, model)
		}
		require.Equal(t, ok, p.Allows(model), model)
	}

	_, err = a.Authenticate(request(bearer(off)), "192.0.2.1")
	require.ErrorIs(t, err, ErrTokenDisabled)

	_, err = a.Authenticate(request(bearer("gca_"+strings.Repeat("x", 32))), "192.0.2.1")
	require.ErrorIs(t, err, ErrInvalidToken)
	require.Equal(t, http.StatusUnauthorized, err.(*Error).Status)

	// A Gemini key is not a token in gateway mode.
	_, err = a.Authenticate(request(bearer("AIzaSyNotAToken0000000000000000000000")), "192.0.2.1")
	require.ErrorIs(t, err, ErrInvalidToken)
}

// TestFailureLimit: a source that keeps presenting bad tokens is refused — also with
// a good token — until its window passes; other sources are unaffected.
func TestFailureLimit(t *testing.T) {
	clk := newClock()
	good, entry, err := NewToken("ci")
	require.NoError(t, err)
	a := gateway(t, clk, entry)
	start := clk.Now()
	for i := 0; i < 10; i++ {
		_, err := a.Authenticate(request(bearer(fmt.Sprintf("gca_guess%02d", i))), "198.51.100.7")
		require.ErrorIs(t, err, ErrInvalidToken, "guess %d", i)
		clk.Add(time.Second)
	}
	_, err = a.Authenticate(request(bearer(good)), "198.51.100.7")
	require.ErrorIs(t, err, ErrTooManyFailures)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusTooManyRequests, e.Status)
	require.Equal(t, start.Add(time.Minute), e.RetryAt)

	_, err = a.Authenticate(request(bearer(good)), "198.51.100.8")
	require.NoError(t, err, "another source is not blocked")

	// IPv6 sources count per /64.
	for i := 0; i < 10; i++ {
		_, _ = a.Authenticate(request(bearer("gca_guess")), fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	_, err = a.Authenticate(request(bearer(good)), "2001:db8:1:2:ffff::1")
	require.ErrorIs(t, err, ErrTooManyFailures)

	clk.Set(start.Add(time.Minute))
	_, err = a.Authenticate(request(bearer(good)), "198.51.100.7")
	require.NoError(t, err, "the window passed")
}

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestTokenLimitsLocal: RPM and daily limits without Valkey (per instance).
func TestTokenLimitsLocal(t *testing.T) {
	clk := newClock()
	tok, entry, err := NewToken("limited")
	require.NoError(t, err)
	entry.RPM, entry.RPD = 3, 5
	a := gateway(t, clk, entry)
	p, err := a.Authenticate(request(bearer(tok)), "192.0.2.1")
	require.NoError(t, err)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		require.NoError(t, a.Admit(ctx, p, "gemini-2.5-flash"))
	}
	err = a.Admit(ctx, p, "gemini-2.5-flash")
	require.ErrorIs(t, err, ErrTokenRateLimited)
	require.Equal(t, schemas.MinuteEnd(clk.Now()), err.(*Error).RetryAt)
	clk.Add(time.Minute)
	for i := 0; i < 2; i++ {
		require.NoError(t, a.Admit(ctx, p, "gemini-2.5-flash"))
	}
	err = a.Admit(ctx, p, "gemini-2.5-flash")
	require.ErrorIs(t, err, ErrTokenDailyLimit)
	require.Equal(t, schemas.NextPacificMidnight(clk.Now()), err.(*Error).RetryAt)
	clk.Set(schemas.NextPacificMidnight(clk.Now()))
	require.NoError(t, a.Admit(ctx, p, "gemini-2.5-flash"))
}

type resolver struct{}

func (resolver) PassthroughKey(s string) *keypool.Key { return keypool.KeyFromSecret(s) }

func TestPassthrough(t *testing.T) {
	a, err := New(Config{Mode: ModePassthrough, MaxPassthroughKeys: 3}, resolver{}, Options{})
	require.NoError(t, err)
	k1, k2 := "AIzaSyPassKey000000000000000000000000001", "AIzaSyPassKey000000000000000000000000002"
	cases := []struct {
		name string
		mod  func(r *http.Request)
		keys []string
		err  error
	}{
		{"one key in x-goog-api-key", func(r *http.Request) { r.Header.Set("x-goog-api-key", k1) }, []string{k1}, nil},
		{"comma-separated keys in ?key=", func(r *http.Request) { r.URL.RawQuery = "key=" + k1 + "," + k2 }, []string{k1, k2}, nil},
		{"duplicates and empty items collapse", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+k1+",,"+k1+","+k2) }, []string{k1, k2}, nil},
		{"too many keys", func(r *http.Request) {
			r.Header.Set("x-api-key", "AIzaSyA00000,AIzaSyA00001,AIzaSyA00002,AIzaSyA00003")
		}, nil, ErrMalformedCredential},
		{"not a key", func(r *http.Request) { r.Header.Set("x-api-key", k1+",x") }, nil, ErrMalformedCredential},
		{"only commas", func(r *http.Request) { r.Header.Set("x-api-key", ",,") }, nil, ErrNoCredential},
		{"bad scheme", func(r *http.Request) { r.Header.Set("Authorization", "Digest abc") }, nil, ErrUnsupportedScheme},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(request(tc.mod), "192.0.2.1")
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.NotContains(t, err.Error(), k1)
				return
			}
			require.NoError(t, err)
			require.Equal(t, ModePassthrough, p.Mode)
			require.Empty(t, p.TokenHash)
			var got []string
			for _, k := range p.Keys {
				got = append(got, k.Secret().Reveal())
				require.Equal(t, k.Hash(), k.Project(), "each key is its own project")
			}
			require.Equal(t, tc.keys, got)
			require.NoError(t, a.Admit(context.Background(), p, "anything"))
		})
	}
}

func TestAdmin(t *testing.T) {
	clk := newClock()
	a := gateway(t, clk)
	require.NoError(t, a.CheckAdmin(request(bearer("admin-token-0123456789")), "192.0.2.9"))
	require.NoError(t, a.CheckAdmin(request(func(r *http.Request) { r.Header.Set("x-api-key", "admin-token-0123456789") }), "192.0.2.9"))
	require.ErrorIs(t, a.CheckAdmin(request(bearer("admin-token-0123456780")), "192.0.2.9"), ErrAdminUnauthorized)
	require.ErrorIs(t, a.CheckAdmin(request(nil), "192.0.2.9"), ErrAdminUnauthorized)
	for i := 0; i < 8; i++ {
		_ = a.CheckAdmin(request(bearer("wrong")), "192.0.2.9")
	}
	require.ErrorIs(t, a.CheckAdmin(request(bearer("admin-token-0123456789")), "192.0.2.9"), ErrTooManyFailures)

	off, err := New(Config{Mode: ModePassthrough}, resolver{}, Options{})
	require.NoError(t, err)
	require.ErrorIs(t, off.CheckAdmin(request(bearer("anything")), "192.0.2.9"), ErrAdminDisabled)
}

func TestTokenFiles(t *testing.T) {
	f, err := LoadTokens("testdata/tokens_good.json")
	require.NoError(t, err)
	require.NoError(t, f.Validate())
	require.Len(t, f.Tokens, 3)

	f, err = LoadTokens("testdata/tokens_bad.json")
	require.NoError(t, err)
	err = f.Validate()
	for _, want := range []string{
		"tokens[0]: name is empty",
		"tokens[1] (twin): same token as tokens[0]",
		`tokens[2]: name "twin" already used by tokens[1]`,
		"tokens[2] (twin): sha256 must be 64 lowercase hex digits",
		"tokens[3] (pasted): sha256 holds a token, not its hash",
		"tokens[4] (limits): id must be 16 lowercase hex digits",
		"tokens[4] (limits): rpm and rpd must not be negative",
		`tokens[4] (limits): model "a b" is not a model name`,
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "gca_0123")

	// A broken file on reload keeps the current tokens.
	clk := newClock()
	tok, entry, _ := NewToken("keep")
	a := gateway(t, clk, entry)
	require.NoError(t, os.WriteFile(a.cfg.TokensFile, []byte(`{"tokens":[{"name":""}]}`), 0o600))
	require.Error(t, a.Reload())
	_, err = a.Authenticate(request(bearer(tok)), "192.0.2.1")
	require.NoError(t, err)

	require.Error(t, Config{Mode: "open"}.Validate())
	require.ErrorContains(t, Config{Mode: ModeGateway}.Validate(), "tokens file")
	require.ErrorContains(t, Config{Mode: ModePassthrough, AdminToken: NewSecret("short")}.Validate(), "admin token shorter")
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret("admin-token-0123456789")
	cfg := Config{AdminToken: s}
	var out strings.Builder
	for _, v := range []any{s, &s, cfg, &cfg} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		b, _ := json.Marshal(v)
		out.Write(b)
		slog.New(slog.NewTextHandler(&out, nil)).Info("m", "v", v)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("m", "v", v)
	}
	require.NotContains(t, out.String(), "admin-token")
	require.NotContains(t, out.String(), fmt.Sprintf("%x", "admin-token"))
	require.Contains(t, out.String(), "[redacted]")
}

func TestTokenIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok, _, err := NewToken("x")
		require.NoError(t, err)
		require.False(t, seen[tok])
		seen[tok] = true
	}
	_ = errors.New
}
