//go:build faults

package faults

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geminicodeapi/gca/internal/testenv"
)

// stack stops and starts services of the local stack through deploy/local/stack.sh, for
// the run folder and ports this process's environment describes (GCA_RUN_DIR,
// GCA_KAFKA_PORT, ...). It first checks that those are the services the tests talk
// to, so a fault test can never stop another stack.
type stack struct {
	script string
	mu     sync.Mutex
}

var (
	stackOnce sync.Once
	theStack  *stack
	stackErr  string
)

// localStack returns the stack, or fails the test when the script's addresses differ
// from the tests' (GCA_KAFKA_BROKERS, GCA_CLICKHOUSE_ADDR, GCA_VALKEY_ADDR).
func localStack(t *testing.T) *stack {
	t.Helper()
	stackOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "deploy", "local", "stack.sh")
		out, err := exec.Command(script, "env").Output()
		if err != nil {
			stackErr = "stack.sh env: " + err.Error()
			return
		}
		got := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok {
				got[k] = v
			}
		}
		want := map[string]string{
			"GCA_KAFKA_BROKERS":   strings.Join(testenv.KafkaBrokers(), ","),
			"GCA_CLICKHOUSE_ADDR": testenv.ClickHouseAddr(),
			"GCA_VALKEY_ADDR":     testenv.ValkeyAddr(),
		}
		for k, v := range want {
			if got[k] != v {
				stackErr = "stack.sh (GCA_RUN_DIR=" + os.Getenv("GCA_RUN_DIR") + ") manages " + k + "=" + got[k] +
					" but the tests use " + v + ": set GCA_RUN_DIR and the GCA_*_PORT variables of the stack under test"
				return
			}
		}
		theStack = &stack{script: script}
	})
	if theStack == nil {
		t.Fatalf("%s", stackErr)
	}
	return theStack
}

func (s *stack) run(t *testing.T, verb, svc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, s.script, verb, svc).CombinedOutput()
	if err != nil {
		t.Fatalf("stack.sh %s %s: %v\n%s", verb, svc, err, out)
	}
	t.Logf("stack.sh %s %s took %s", verb, svc, time.Since(start).Round(time.Millisecond))
}

// stop stops svc (kafka, clickhouse or valkey) and makes sure it runs again when the
// test ends, whatever happens in between.
func (s *stack) stop(t *testing.T, svc string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run(t, "stop-one", svc)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		// Idempotent: start-one does nothing when the service already runs.
		out, err := exec.Command(s.script, "start-one", svc).CombinedOutput()
		if err != nil {
			t.Errorf("restart %s after the test: %v\n%s", svc, err, out)
		}
	})
}

// start starts svc again and waits until it is ready.
func (s *stack) start(t *testing.T, svc string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run(t, "start-one", svc)
}
