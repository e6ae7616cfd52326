package keypool

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce lets an editor finish writing before the file is read.
const watchDebounce = 100 * time.Millisecond

// Watch calls onChange whenever the file at path changes, until ctx ends; the caller
// loads the config and calls Pool.Reload, as it does on SIGHUP. Bursts of events (an
// editor's write, rename and chmod) are coalesced into one call after 100ms of quiet.
// It watches the file's directory, so it sees editors that replace the file by a
// rename and Kubernetes ConfigMaps that swap their "..data" symlink.
func Watch(ctx context.Context, path string, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch keys file: %w", err)
	}
	defer func() { _ = w.Close() }()
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	name := filepath.Clean(path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != name && filepath.Base(ev.Name) != "..data" {
				continue
			}
			timer.Reset(watchDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("watch %s: %w", path, err)
		case <-timer.C:
			onChange()
		}
	}
}
