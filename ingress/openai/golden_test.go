package openai

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// update rewrites the golden files from the current output:
//
//	go test ./ingress/openai -update
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with the file at path, or rewrites the file under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./ingress/openai -update")
	require.Equal(t, string(want), string(got), "output differs from %s; run with -update if the change is intended", path)
}

// indented marshals v as indented JSON ending in a newline, the form of the golden
// files.
func indented(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return indentBytes(t, b)
}

// indentBytes indents JSON text.
func indentBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, b, "", "  "))
	buf.WriteByte('\n')
	return buf.Bytes()
}

// readFile reads a test data file.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// inputsWithSuffix lists the base names of the files in dir ending in suffix, so that
// a test can check that every input file has a case.
func inputsWithSuffix(t testing.TB, dir, suffix string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	require.NoError(t, err)
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), suffix))
	}
	sort.Strings(names)
	return names
}

// requireAllCovered fails when an input file has no test case.
func requireAllCovered(t *testing.T, files []string, covered map[string]bool) {
	t.Helper()
	for _, f := range files {
		require.True(t, covered[f], "testdata input %q has no test case", f)
	}
}
