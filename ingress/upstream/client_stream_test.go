package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/keypool"
)

// onePicker leases the same key for every attempt, with no Valkey behind it.
type onePicker struct{ key *keypool.Key }

func (p onePicker) Select(_ context.Context, req keypool.SelectRequest) (*keypool.Lease, error) {
	return &keypool.Lease{Key: p.key, Model: req.Model}, nil
}

func (onePicker) Release(context.Context, *keypool.Lease, keypool.Outcome) error { return nil }

func newOnePicker(t *testing.T) onePicker {
	t.Helper()
	pool, err := keypool.New(nil, &keypool.Config{}, keypool.Options{})
	require.NoError(t, err)
	return onePicker{key: pool.PassthroughKey("AIzaSyStreamTest-" + "xxxxxxxxxxxxxxxxxxxxx")}
}

// TestStreamOutlivesDo reads a stream whose events are spaced in time after Do has
// returned. Do's own deadline context ends when it returns; a stream bound to it was
// cut right after its first event (the official SDKs saw "upstream stream
// interrupted" on every spaced stream).
func TestStreamOutlivesDo(t *testing.T) {
	const events = 4
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			_, _ = fmt.Fprintf(w, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"%d\"}]}}]}\r\n\r\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	c := New(newOnePicker(t), Options{BaseURL: srv.URL})

	resp, err := c.Do(context.Background(), &Call{Model: "gemini-2.5-flash", Method: "generateContent", Body: []byte(`{}`), Stream: true})
	require.NoError(t, err)
	require.NotNil(t, resp.Stream)
	defer func() { require.NoError(t, resp.Stream.Close()) }()
	n := 0
	for {
		_, err := resp.Stream.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "event %d", n)
		n++
	}
	require.Equal(t, events, n)
}

// TestStreamEndsWithClient cuts the upstream stream when the client's request ends.
func TestStreamEndsWithClient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"candidates\":[]}\r\n\r\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := New(newOnePicker(t), Options{BaseURL: srv.URL})

	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.Do(ctx, &Call{Model: "gemini-2.5-flash", Method: "generateContent", Body: []byte(`{}`), Stream: true})
	require.NoError(t, err)
	defer func() { _ = resp.Stream.Close() }()
	_, err = resp.Stream.Next()
	require.NoError(t, err, "the first event")
	cancel()
	done := make(chan error, 1)
	go func() { _, err := resp.Stream.Next(); done <- err }()
	select {
	case err := <-done:
		require.Error(t, err)
		require.NotErrorIs(t, err, io.EOF)
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived the client's request")
	}
}
