package chddl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCurrentEngine applies the DDL on the engine users deploy (ClickHouse 26.x, in
// process through chdb) by running the chdbtest package in a child `go test`: chdb-go
// loads libchdb.so when its package initialises and panics when the library is missing,
// so it cannot be linked into this test binary. The library is installed on first use
// by deploy/local/chdb.sh (npm package @chdb/lib-linux-x64-gnu into .run/chdb).
func TestCurrentEngine(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("libchdb is packaged for linux/amd64 only")
	}
	root := repoRoot(t)
	lib := os.Getenv("CHDB_LIB_PATH")
	if lib == "" {
		out, err := exec.Command(filepath.Join(root, "deploy", "local", "chdb.sh")).Output()
		if err != nil {
			t.Fatalf("install libchdb with deploy/local/chdb.sh: %v\n%s", err, stderr(err))
		}
		lib = strings.TrimSpace(string(out))
	}
	args := []string{"test", "-tags", "chdb", "-count=1", "./schemas/chddl/chdbtest/"}
	if testing.Verbose() {
		args = append(args, "-v")
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CHDB_LIB_PATH="+lib)
	out, err := cmd.CombinedOutput()
	t.Logf("CHDB_LIB_PATH=%s go %s\n%s", lib, strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("schema on the current engine: %v", err)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
