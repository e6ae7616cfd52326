package main

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunRejectsBadInput(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     string
		wantErr string
	}{
		{name: "invalid config", args: []string{"-config", "gemsim/testdata/invalid.json"}, wantErr: "key AIzaSyDup is listed twice"},
		{name: "missing config", args: []string{"-config", "gemsim/testdata/none.json"}, wantErr: "read simulator config"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
		{name: "bad key list", env: "p1:", wantErr: "read GCA_SIM_KEYS"},
		{name: "bad address", args: []string{"-addr", "256.0.0.1:1"}, wantErr: "listen on 256.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GCA_SIM_KEYS", tc.env)
			err := run(slog.New(slog.DiscardHandler), tc.args)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
