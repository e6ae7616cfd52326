package keypool

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWatchReloads: rewriting the keys file (by rename, as editors and ConfigMaps do)
// swaps the pool's keys through Watch and Reload; a broken file is refused and the
// pool keeps its keys.
func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	write := func(body string) {
		tmp := filepath.Join(dir, "keys.json.tmp")
		require.NoError(t, os.WriteFile(tmp, []byte(body), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write(`{"keys":[{"key":"AIzaSyWatchKey01"}]}`)
	cfg, err := Load(path, "")
	require.NoError(t, err)
	p, err := New(nil, cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)

	reloads := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, path, func() {
			cfg, err := Load(path, "")
			if err == nil {
				_, err = p.Reload(cfg)
			}
			reloads <- err
		})
	}()
	// fsnotify delivers asynchronously and the watcher may not be watching yet: write
	// now and then until a reload shows, bounded.
	tick := 0
	require.Eventually(t, func() bool {
		if tick%20 == 0 {
			write(`{"keys":[{"key":"AIzaSyWatchKey02"},{"key":"AIzaSyWatchKey03"}]}`)
		}
		tick++
		return len(p.Keys()) == 2
	}, 10*time.Second, 25*time.Millisecond)
	want := p.Keys()
	for len(reloads) > 0 {
		<-reloads
	}

	write(`{"keys":[{"key":""}]}`)
	deadline := time.After(10 * time.Second)
	for refused := false; !refused; {
		select {
		case err := <-reloads:
			// A late reload of the previous file may come first.
			refused = err != nil
			if refused {
				require.ErrorContains(t, err, "key is empty")
			}
		case <-deadline:
			t.Fatal("no reload after the file changed")
		}
	}
	require.Equal(t, want, p.Keys())
	cancel()
	require.NoError(t, <-done)
}
