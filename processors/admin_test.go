package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// The admin endpoints refuse a request without the token, or with a wrong one, before
// doing anything; a repair must be a POST. (What the check reports is tested end to end
// in e2e/replay_test.go.)
func TestAdminCheckGuards(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AdminToken = "s3cret-token"
	routes := adminRoutes(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Len(t, routes, 1)
	h := routes[0].handler
	for _, tc := range []struct {
		name, method, url, auth string
		want                    int
	}{
		{"no token", http.MethodGet, "/admin/check", "", http.StatusUnauthorized},
		{"wrong token", http.MethodGet, "/admin/check", "Bearer nope", http.StatusUnauthorized},
		{"not a bearer token", http.MethodGet, "/admin/check", "s3cret-token", http.StatusUnauthorized},
		{"repair with GET", http.MethodGet, "/admin/check?repair=1", "Bearer s3cret-token", http.StatusMethodNotAllowed},
		{"other method", http.MethodDelete, "/admin/check", "Bearer s3cret-token", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.url, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			if tc.want == http.StatusUnauthorized {
				require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
			}
		})
	}
}

// The admin token is a secret: it never prints.
func TestAdminTokenFromEnvOnly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LoadEnv(func(k string) string {
		if k == "GCA_ADMIN_TOKEN" {
			return "tok"
		}
		return ""
	})
	require.Equal(t, Secret("tok"), cfg.AdminToken)
	require.Equal(t, "[redacted]", cfg.AdminToken.String())
}
