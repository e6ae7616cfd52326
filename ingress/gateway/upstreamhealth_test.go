package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUpstreamHealthProbesOncePerTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	probes := 0
	var fail error
	h := NewUpstreamHealth(func(context.Context) error { probes++; return fail }, 5*time.Minute, func() time.Time { return now })
	ctx := context.Background()

	require.NoError(t, h.Check(ctx))
	require.NoError(t, h.Check(ctx))
	require.Equal(t, 1, probes, "the second check is served from the cache")

	fail = errors.New("dial tcp: connection refused")
	now = now.Add(4 * time.Minute)
	require.NoError(t, h.Check(ctx), "a cached success holds for the TTL")
	now = now.Add(time.Minute)
	require.EqualError(t, h.Check(ctx), "dial tcp: connection refused")
	require.Equal(t, 2, probes)
	s := h.Stats()
	require.Equal(t, uint64(2), s.Hits)
	require.Equal(t, uint64(2), s.Misses)
}
