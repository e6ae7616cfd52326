// Package deploy holds the production-like stack description (docker-compose.yml at the
// repository root, the Dockerfile and example configs here). No Docker engine runs on
// the development machines, so this test keeps the compose file honest by loading it
// with compose-go, the loader Docker Compose itself uses, and checking it against what
// the binaries actually read.
package deploy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."), cli.WithProfiles([]string{"demo"}),
		cli.WithEnv([]string{"GCA_ADMIN_TOKEN=compose-test-admin-token"}))
	require.NoError(t, err)
	p, err := opts.LoadProject(context.Background())
	require.NoError(t, err)
	return p
}

// envNames returns the GCA_* variables a binary's source reads.
func envNames(t *testing.T, files ...string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`"(GCA_[A-Z0-9_]+)"`)
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", f))
		require.NoError(t, err)
		for _, m := range re.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	require.NotEmpty(t, out, "found no GCA_ variables in %v", files)
	return out
}

func TestComposeMatchesTheBinaries(t *testing.T) {
	p := loadProject(t)
	ingressVars := envNames(t, "ingress/config.go")
	processorVars := envNames(t, "processors/config.go")

	want := []string{"clickhouse", "ingress-1", "ingress-2", "init", "kafka", "processors", "simulator", "valkey"}
	var got []string
	for name := range p.Services {
		got = append(got, name)
	}
	sort.Strings(got)
	require.Equal(t, want, got)

	cases := []struct {
		service  string
		command  string
		known    map[string]bool
		required []string
		// port is the container port the binary listens on, from its listen variable.
		listenVar string
	}{
		{"ingress-1", "ingress", ingressVars, []string{"GCA_KAFKA_BROKERS", "GCA_VALKEY_ADDR", "GCA_KEYS_FILE", "GCA_TOKENS_FILE", "GCA_LISTEN", "GCA_SPOOL_DIR", "GCA_INSTANCE"}, "GCA_LISTEN"},
		{"ingress-2", "ingress", ingressVars, []string{"GCA_KAFKA_BROKERS", "GCA_VALKEY_ADDR", "GCA_KEYS_FILE", "GCA_TOKENS_FILE", "GCA_LISTEN", "GCA_SPOOL_DIR", "GCA_INSTANCE"}, "GCA_LISTEN"},
		{"processors", "processors", processorVars, []string{"GCA_KAFKA_BROKERS", "GCA_CLICKHOUSE_ADDR", "GCA_VALKEY_ADDR", "GCA_LISTEN_ADDR"}, "GCA_LISTEN_ADDR"},
		{"init", "processors", processorVars, []string{"GCA_KAFKA_BROKERS", "GCA_CLICKHOUSE_ADDR"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.service, func(t *testing.T) {
			s := p.Services[tc.service]
			require.Equal(t, tc.command, s.Command[0])
			for k := range s.Environment {
				require.True(t, tc.known[k], "%s sets %s, which %s never reads", tc.service, k, tc.command)
			}
			for _, k := range tc.required {
				v := s.Environment[k]
				require.NotNil(t, v, "%s lacks %s", tc.service, k)
				require.NotEmpty(t, *v, "%s has an empty %s", tc.service, k)
			}
			// Addresses must name services of this project on the ports they serve.
			serves := map[string]string{"kafka": "9092", "clickhouse": "9000", "valkey": "6379"}
			for _, k := range []string{"GCA_KAFKA_BROKERS", "GCA_CLICKHOUSE_ADDR", "GCA_VALKEY_ADDR"} {
				v := s.Environment[k]
				if v == nil {
					continue
				}
				host, port, err := net.SplitHostPort(*v)
				require.NoError(t, err, k)
				require.Equal(t, serves[host], port, "%s=%s names a service port that does not exist", k, *v)
				if tc.service != "init" {
					require.Contains(t, s.DependsOn, "init", "%s must wait for the topics and schema", tc.service)
				}
			}
			if tc.listenVar != "" {
				_, port, err := net.SplitHostPort(*s.Environment[tc.listenVar])
				require.NoError(t, err)
				require.NotEmpty(t, s.Ports, "%s publishes its port", tc.service)
				require.Equal(t, port, strconv.FormatUint(uint64(s.Ports[0].Target), 10), "%s publishes the port it listens on", tc.service)
				require.Equal(t, "127.0.0.1", s.Ports[0].HostIP, "%s is published on loopback only", tc.service)
			}
		})
	}

	// Two ingress replicas must not share a spool directory: each owns its log.
	v1 := p.Services["ingress-1"].Volumes
	v2 := p.Services["ingress-2"].Volumes
	spool := func(vs []types.ServiceVolumeConfig) string {
		for _, v := range vs {
			if strings.HasPrefix(*p.Services["ingress-1"].Environment["GCA_SPOOL_DIR"], v.Target) {
				return v.Source
			}
		}
		return ""
	}
	require.NotEmpty(t, spool(v1))
	require.NotEqual(t, spool(v1), spool(v2))
	require.NotEqual(t, *p.Services["ingress-1"].Environment["GCA_INSTANCE"], *p.Services["ingress-2"].Environment["GCA_INSTANCE"])
	require.Contains(t, p.Services["clickhouse"].Image, "clickhouse-server:25")
	require.Contains(t, p.Services["valkey"].Image, "valkey:8")
	require.Contains(t, p.Services["kafka"].Image, "kafka:4")
}
