package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// Flags may come before, between and after the positional arguments, and --param
// repeats.
func TestToolFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	params := paramFlag{}
	fs.Var(params, "param", "")
	format := fs.String("format", "table", "")
	pos, err := parseInterleaved(fs, []string{"--param", "a=1", "run", "--format", "csv", "name", "--param", "b=x=y"})
	require.NoError(t, err)
	require.Equal(t, []string{"run", "name"}, pos)
	require.Equal(t, paramFlag{"a": "1", "b": "x=y"}, params)
	require.Equal(t, "csv", *format)

	_, err = parseInterleaved(fs, []string{"--param", "a=2"})
	require.ErrorContains(t, err, "given twice")
	_, err = parseInterleaved(fs, []string{"--param", "novalue"})
	require.ErrorContains(t, err, "want name=value")
}

// The tools need no server to list and render; mistakes are reported, not run.
func TestToolsOffline(t *testing.T) {
	env := func(string) string { return "" }
	var out, errOut bytes.Buffer
	require.NoError(t, runTool(context.Background(), []string{"query", "list", "--format", "csv"}, env, &out, &errOut))
	require.Contains(t, out.String(), "name,parameters,summary\n")

	out.Reset()
	require.NoError(t, runTool(context.Background(), []string{"query", "sql", "top_clients", "--param", "limit=5"}, env, &out, &errOut))
	require.Contains(t, out.String(), "LIMIT 5")

	require.ErrorContains(t, runTool(context.Background(), []string{"query", "sql", "top_clients", "--param", "limit=5; DROP TABLE x"}, env, &out, &errOut), "not an unsigned")
	require.ErrorContains(t, runTool(context.Background(), []string{"query", "frobnicate"}, env, &out, &errOut), "unknown command")
	require.ErrorContains(t, runTool(context.Background(), []string{"query", "list", "--format", "xml"}, env, &out, &errOut), "use table, csv or json")
	require.True(t, isTool("query") && isTool("storage") && !isTool("run"))
}

// GCA_STORAGE_AUTO_OPTIMIZE switches the periodic optimizer on; it is off by default.
func TestStorageAutoOptimizeConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.False(t, cfg.StorageAutoOptimize)
	cfg.LoadEnv(func(k string) string {
		if k == "GCA_STORAGE_AUTO_OPTIMIZE" {
			return "true"
		}
		return ""
	})
	require.True(t, cfg.StorageAutoOptimize)
	bad := DefaultConfig()
	bad.LoadEnv(func(k string) string {
		if k == "GCA_STORAGE_AUTO_OPTIMIZE" {
			return "maybe"
		}
		return ""
	})
	require.ErrorContains(t, bad.Validate(), "GCA_STORAGE_AUTO_OPTIMIZE")
}
