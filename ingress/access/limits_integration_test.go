//go:build integration

package access

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
)

// replica builds an authenticator as one ingress replica would, on a shared tokens
// file and Valkey.
func replica(t *testing.T, path string, c valkey.Client, prefix string, clk *clock) *Authenticator {
	a, err := New(Config{Mode: ModeGateway, TokensFile: path}, nil, Options{
		Valkey: c, Prefix: prefix, Now: clk.Now, Timeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	return a
}

func tokensFile(t *testing.T, tokens ...Token) string {
	path := filepath.Join(t.TempDir(), "tokens.json")
	b, err := json.Marshal(TokenFile{Tokens: tokens})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// futureClock starts in the next minute, so the expiry the limiter writes from it is in
// Valkey's future.
func futureClock() *clock {
	return &clock{t: time.Now().Truncate(time.Minute).Add(time.Minute + 5*time.Second)}
}

// TestTokenLimitsShared: a token's RPM and daily limits hold across replicas under a
// concurrent burst, and reset with the minute and at Pacific midnight.
func TestTokenLimitsShared(t *testing.T) {
	c, prefix := testenv.Valkey(t)
	clk := futureClock()
	tok, entry, err := NewToken("shared")
	require.NoError(t, err)
	entry.RPM, entry.RPD = 20, 30
	path := tokensFile(t, entry)
	a, b := replica(t, path, c, prefix, clk), replica(t, path, c, prefix, clk)
	pa, err := a.Authenticate(request(bearer(tok)), "192.0.2.1")
	require.NoError(t, err)
	pb, err := b.Authenticate(request(bearer(tok)), "192.0.2.2")
	require.NoError(t, err)

	var admitted, limited atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			auth, p := a, pa
			if i%2 == 1 {
				auth, p = b, pb
			}
			switch err := auth.Admit(context.Background(), p, "gemini-2.5-flash"); {
			case err == nil:
				admitted.Add(1)
			default:
				require.ErrorIs(t, err, ErrTokenRateLimited)
				limited.Add(1)
			}
		}(i)
	}
	wg.Wait()
	t.Logf("token RPM 20, 60 concurrent requests over two replicas: %d admitted, %d limited", admitted.Load(), limited.Load())
	require.Equal(t, int32(20), admitted.Load())

	clk.Add(time.Minute)
	for i := 0; i < 10; i++ {
		require.NoError(t, b.Admit(context.Background(), pb, "gemini-2.5-flash"))
	}
	err = a.Admit(context.Background(), pa, "gemini-2.5-flash")
	require.ErrorIs(t, err, ErrTokenDailyLimit)
	require.Equal(t, schemas.NextPacificMidnight(clk.Now()), err.(*Error).RetryAt)

	clk.Set(schemas.NextPacificMidnight(clk.Now()))
	require.NoError(t, a.Admit(context.Background(), pa, "gemini-2.5-flash"))
}

// TestTokenLimitsFailOpen: without Valkey the limits hold per instance, from the last
// numbers Valkey gave.
func TestTokenLimitsFailOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, _ := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true,
		Dialer: net.Dialer{Timeout: 50 * time.Millisecond}})
	require.NotNil(t, c)
	t.Cleanup(c.Close)

	clk := futureClock()
	tok, entry, err := NewToken("outage")
	require.NoError(t, err)
	entry.RPM = 4
	a := replica(t, tokensFile(t, entry), c, "t_unused:", clk)
	p, err := a.Authenticate(request(bearer(tok)), "192.0.2.1")
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		require.NoError(t, a.Admit(context.Background(), p, "gemini-2.5-flash"))
	}
	require.ErrorIs(t, a.Admit(context.Background(), p, "gemini-2.5-flash"), ErrTokenRateLimited)
	require.True(t, a.limits.degraded.Load())
}
