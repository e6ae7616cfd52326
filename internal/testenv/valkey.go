package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Valkey returns a client and a key prefix unique to the test ("t_<random>:"). Keys
// under the prefix are deleted when the test ends.
func Valkey(t testing.TB) (valkey.Client, string) {
	t.Helper()
	c := OpenValkey(t)
	prefix := UniqueName(t, "t") + ":"
	t.Cleanup(func() { DeleteKeys(c, prefix+"*") })
	return c, prefix
}

// OpenValkey returns a client closed when the test ends.
func OpenValkey(t testing.TB) valkey.Client {
	t.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:  []string{ValkeyAddr()},
		DisableCache: true,
	})
	if err != nil {
		t.Fatalf("valkey at %s unreachable (start the stack with `make stack-up`): %v", ValkeyAddr(), err)
	}
	t.Cleanup(c.Close)
	return c
}

// DeleteKeys removes every key matching the pattern.
func DeleteKeys(c valkey.Client, pattern string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		if err != nil {
			return
		}
		if len(e.Elements) > 0 {
			c.Do(ctx, c.B().Unlink().Key(e.Elements...).Build())
		}
		if e.Cursor == 0 {
			return
		}
		cursor = e.Cursor
	}
}
