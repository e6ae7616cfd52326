package gemsim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "zero config", cfg: Config{}},
		{name: "demo pool", cfg: Config{Projects: DemoProjects()}},
		{name: "bad projects", cfg: Config{Projects: []ProjectConfig{
			{ID: "", Keys: []string{"a"}},
			{ID: "p", Tier: "gold", Keys: []string{"a", ""}},
			{ID: "p"},
		}}, wantErr: []string{"projects[0]: empty id", `tier "gold"`, "key a is listed twice", "empty key", "duplicate id p", "projects[2] p: no keys"}},
		{name: "bad numbers", cfg: Config{
			Latency: Duration(-time.Second), StreamChunks: -1, AnswerWords: -1, Bare429Fraction: 1.5,
			Limits: map[string]Limits{"gemini-2.5-flash": {RPM: -1}, "": {}},
		}, wantErr: []string{"must not be negative", "streamChunks -1", "answerWords -1", "bare429Fraction 1.5", "limits[gemini-2.5-flash]: negative", "limits: empty model name"}},
		{name: "bad models", cfg: Config{Models: []gemini.Model{
			{Name: "models/x", SupportedGenerationMethods: []string{"generateContent"}},
			{Name: "x", SupportedGenerationMethods: []string{"generateContent"}},
			{Name: "y"},
		}}, wantErr: []string{"models[1]: duplicate model x", "models[2] y: no supportedGenerationMethods"}},
		{name: "bad fault", cfg: Config{Faults: []FaultRule{{Fault: Fault{Status: 503, Reset: true}}}},
			wantErr: []string{"faults[0]: set at most one"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tc.wantErr), "every problem is reported once: %v", err)
		})
	}
}

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/good.json")
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Equal(t, []ProjectConfig{
		{ID: "team-a", Tier: TierFree, Keys: []string{"AIzaSyTeamA-1", "AIzaSyTeamA-2"}, ForbiddenKeys: []string{"AIzaSyTeamA-banned"}},
		{ID: "team-b", Tier: TierOne, Keys: []string{"AIzaSyTeamB-1"}},
	}, cfg.Projects)
	require.Equal(t, map[string]Limits{"gemini-2.5-flash": {RPM: 20, TPM: 500_000, RPD: 500}}, cfg.Limits)
	require.Equal(t, Duration(40*time.Millisecond), cfg.Latency)
	require.Equal(t, Duration(2*time.Millisecond), cfg.ChunkInterval)
	require.Equal(t, 6, cfg.StreamChunks)
	require.Equal(t, 0.25, cfg.Bare429Fraction)
	require.Len(t, cfg.Faults, 1)
	require.Equal(t, 503, cfg.Faults[0].Fault.Status)

	_, err = LoadConfig("testdata/unknown_field.json")
	require.ErrorContains(t, err, `unknown field "rpm_limit"`)
	_, err = LoadConfig("testdata/missing.json")
	require.ErrorContains(t, err, "read simulator config")

	bad, err := LoadConfig("testdata/invalid.json")
	require.NoError(t, err, "it parses")
	require.ErrorContains(t, bad.Validate(), "key AIzaSyDup is listed twice")
}

func TestDuration(t *testing.T) {
	cases := []struct {
		in      string
		want    Duration
		wantErr bool
	}{
		{in: `"250ms"`, want: Duration(250 * time.Millisecond)},
		{in: `"1m30s"`, want: Duration(90 * time.Second)},
		{in: `250`, want: Duration(250 * time.Millisecond)},
		{in: `0.5`, want: Duration(500 * time.Microsecond)},
		{in: `"soon"`, wantErr: true},
		{in: `true`, wantErr: true},
	}
	for _, tc := range cases {
		var d Duration
		err := json.Unmarshal([]byte(tc.in), &d)
		if tc.wantErr {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, d, tc.in)
	}
	out, err := json.Marshal(Duration(1500 * time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, `"1.5s"`, string(out))
}

func TestParseKeys(t *testing.T) {
	cases := []struct {
		in      string
		want    []ProjectConfig
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "p1:k1, p1:k2 ,p2:k3", want: []ProjectConfig{
			{ID: "p1", Tier: TierFree, Keys: []string{"k1", "k2"}},
			{ID: "p2", Tier: TierFree, Keys: []string{"k3"}},
		}},
		{in: "k1,k2", want: []ProjectConfig{
			{ID: "solo-k1", Tier: TierFree, Keys: []string{"k1"}},
			{ID: "solo-k2", Tier: TierFree, Keys: []string{"k2"}},
		}},
		{in: "p1:", wantErr: true},
		{in: ":k1", wantErr: true},
	}
	for _, tc := range cases {
		got, err := ParseKeys(tc.in)
		if tc.wantErr {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestDemoProjects(t *testing.T) {
	demo := DemoProjects()
	require.Len(t, demo, 3)
	require.Equal(t, ProjectConfig{ID: "sim-project-1", Tier: TierFree, Keys: []string{"AIzaSySimDemoKey-p1-k1", "AIzaSySimDemoKey-p1-k2"}}, demo[0])
}
