package keypool

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// keyLike matches anything that looks like one of the test keys.
var keyLike = regexp.MustCompile(`AIzaSy\w+`)

func TestConfigFiles(t *testing.T) {
	cases := []struct {
		file string
		// want lists substrings of the error, each its own problem; empty: valid.
		want []string
	}{
		{"good.json", nil},
		{"good_minimal.json", nil},
		{"bad_projects.json", []string{
			`projects[0]: project "has space" must match`,
			`projects[1]: project "{tag}" must match`,
			`projects[3]: project "twice" declared twice`,
			`keys[0] (`, `project "a:b" must match`,
		}},
		{"bad_keys.json", []string{
			`keys[1]: key is empty`,
			`keys[2] (`, `): duplicate of `,
			`key contains whitespace, a comma or a colon`,
			`weight -2 is negative`,
			`models: model "gemini/../x" must match`,
		}},
		{"bad_limits.json", []string{
			`default_tier "gold" has no limits`,
			`limits.free.gemini-2.5-pro: limits must not be negative (rpm -1`,
			`limits.tier1: model "bad model" must match`,
			`projects[0] (p1) limits.gemini-2.5-flash: limits must not be negative`,
			`projects[1] (p2): tier "platinum" has no limits`,
			`tier "free" contradicts project p1's tier "tier1"`,
			`tier "tier1" contradicts tier "free" of another key of project p3`,
		}},
		{"bad_unknown_field.json", []string{`unknown field "projcet"`}},
		{"bad_syntax.json", []string{`invalid character '}'`}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", tc.file), "")
			if err == nil {
				err = cfg.Validate()
			}
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotRegexp(t, keyLike, err.Error(), "an error message names a key")
		})
	}
}

func TestConfigResolution(t *testing.T) {
	cfg, err := Load("testdata/good.json", "")
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	set := newKeySet(cfg)
	require.Len(t, set.keys, 5)

	prod := set.keys[0]
	require.Equal(t, "acme-prod", prod.Project())
	require.Equal(t, TierOne, prod.Tier())
	require.Equal(t, 3, prod.Weight())
	require.Equal(t, Limits{RPM: 800, TPM: 1_000_000, RPD: 10_000}, prod.Limits("gemini-2.5-flash"), "tier override")
	require.Equal(t, Limits{RPM: 150, TPM: 2_000_000, RPD: 10_000}, prod.Limits("gemini-2.5-pro"), "built-in tier1")
	require.Equal(t, Limits{RPM: 1000, TPM: 1_000_000, RPD: 10_000}, prod.Limits("gemini-3-preview"), "tier1 default row")

	restricted := set.keys[1]
	require.True(t, restricted.Allows("gemini-2.5-pro"), "models/ prefix stripped")
	require.False(t, restricted.Allows("gemini-2.0-flash"))
	require.Equal(t, 1, restricted.Weight())

	free := set.keys[2]
	require.Equal(t, TierFree, free.Tier())
	require.Equal(t, Limits{RPM: 2, TPM: 125_000, RPD: 50}, free.Limits("gemini-2.5-pro"), "project override")
	require.Equal(t, Limits{RPM: 10, TPM: 250_000, RPD: 250}, free.Limits("gemini-2.5-flash"), "built-in free")
	require.Equal(t, Limits{RPM: 5, TPM: 100_000, RPD: 100}, free.Limits("unknown-model"), "configured default row")

	own := set.keys[3]
	require.Equal(t, own.Hash(), own.Project(), "a key without a project is its own")
	require.Equal(t, "tier2", own.Tier())
	require.Equal(t, Limits{RPM: 2000, TPM: 4_000_000}, own.Limits("gemini-2.5-pro"))

	require.Equal(t, TierFree, set.keys[4].Tier())
}

func TestParseEnvKeys(t *testing.T) {
	keys, err := ParseEnvKeys(" AIzaSyA1 , projA:AIzaSyB2,projB:tier1:AIzaSyC3,, ")
	require.NoError(t, err)
	require.Len(t, keys, 3)
	require.Equal(t, "AIzaSyA1", keys[0].Key.Reveal())
	require.Equal(t, "", keys[0].Project)
	require.Equal(t, "projA", keys[1].Project)
	require.Equal(t, "AIzaSyB2", keys[1].Key.Reveal())
	require.Equal(t, "projB", keys[2].Project)
	require.Equal(t, TierOne, keys[2].Tier)

	_, err = ParseEnvKeys("a:b:c:AIzaSySecretSecret")
	require.ErrorContains(t, err, "GCA_GEMINI_KEYS item 1: 4 colon-separated parts")
	require.NotContains(t, err.Error(), "AIzaSySecretSecret")

	// File and environment merge, and a key in both is a duplicate.
	cfg, err := Load("testdata/good_minimal.json", "AIzaSyGoodKeyNumber0009xxxxxxxxxxxxxxxx,p:AIzaSyOther")
	require.NoError(t, err)
	require.Len(t, cfg.Keys, 3)
	err = cfg.Validate()
	require.ErrorContains(t, err, "GCA_GEMINI_KEYS item 1 (")
	require.ErrorContains(t, err, "duplicate of testdata/good_minimal.json keys[0]")
	require.NotRegexp(t, keyLike, err.Error())

	env := map[string]string{EnvKeysFile: "testdata/good_minimal.json", EnvKeys: "p:free:AIzaSyOther"}
	cfg, err = LoadEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Len(t, cfg.Keys, 2)

	_, err = Load("testdata/missing.json", "")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestEmptyConfigIsValid(t *testing.T) {
	// A pass-through deployment needs no keys at all.
	require.NoError(t, (&Config{}).Validate())
	require.True(t, strings.HasPrefix(KeyFromSecret("AIzaSyX").Project(), KeyFromSecret("AIzaSyX").Hash()))
}

func TestSaveRoundTrip(t *testing.T) {
	cfg, err := Load("testdata/good.json", "")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "keys.json")
	cfg.Keys = append(cfg.Keys, KeyConfig{Key: NewSecret("AIzaSyAddedByTheAdminAPI0000000000000000"), Project: "acme-free", Name: "added"})
	require.NoError(t, cfg.Save(path))
	back, err := Load(path, "")
	require.NoError(t, err)
	require.NoError(t, back.Validate())
	require.Len(t, back.Keys, len(cfg.Keys))
	for i := range cfg.Keys {
		require.Equal(t, cfg.Keys[i].Key.Reveal(), back.Keys[i].Key.Reveal())
		require.Equal(t, cfg.Keys[i].Models, back.Keys[i].Models)
		require.Equal(t, cfg.Keys[i].Project, back.Keys[i].Project)
	}
	require.Equal(t, cfg.Limits, back.Limits)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}
