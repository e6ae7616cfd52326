// Package e2e runs the whole gateway for end-to-end tests, fault tests and benchmarks:
// the real ingress and processors binaries as processes (so they can be killed and
// restarted like in production), against the real Kafka, ClickHouse and Valkey of the
// local stack, with the Gemini simulator in-process as the only simulated party. Each
// Env gets its own topics, ClickHouse database, Valkey prefix and consumer groups, so
// environments never see each other's data.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Binaries are the built commands.
type Binaries struct {
	Ingress, Processors, Simulator string
}

var (
	buildOnce sync.Once
	built     Binaries
	buildErr  error
)

// Build compiles the binaries once per process into a temporary directory (or
// GCA_E2E_BIN when set, to reuse binaries across packages).
func Build() (Binaries, error) {
	buildOnce.Do(func() {
		dir := os.Getenv("GCA_E2E_BIN")
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "gca-e2e-bin-"); err != nil {
				buildErr = err
				return
			}
		}
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		b := Binaries{
			Ingress:    filepath.Join(dir, "ingress"),
			Processors: filepath.Join(dir, "processors"),
			Simulator:  filepath.Join(dir, "gemini-sim"),
		}
		for pkg, out := range map[string]string{"./ingress": b.Ingress, "./processors": b.Processors, "./simulator": b.Simulator} {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Dir = root
			if outp, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, outp)
				return
			}
		}
		built = b
	})
	return built, buildErr
}

// repoRoot finds the module root from this source file's location.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locate e2e source")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}
