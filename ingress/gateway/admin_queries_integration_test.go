//go:build integration

package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/publish"
	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

type allowAdmin struct{}

func (allowAdmin) CheckAdmin(*http.Request, string) error { return nil }

// recordingPublisher keeps what the admin API publishes.
type recordingPublisher struct {
	mu     sync.Mutex
	topics []string
	events []publish.Event
}

func (p *recordingPublisher) Publish(topic string, e publish.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.topics = append(p.topics, topic)
	p.events = append(p.events, e)
	return nil
}
func (p *recordingPublisher) Admit() error               { return nil }
func (p *recordingPublisher) Full() bool                 { return false }
func (p *recordingPublisher) Policy() publish.FullPolicy { return publish.PolicyReject }

func adminServer(t *testing.T, ch ClickHouse, pub Publisher) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	NewAdmin(AdminDeps{Auth: allowAdmin{}, Publisher: pub, ClickHouse: ch, Instance: "ingress-test"}).routes(r.Group("/admin"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url string, header http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// Without ClickHouse the query routes say so instead of failing on use.
func TestAdminQueriesWithoutClickHouse(t *testing.T) {
	srv := adminServer(t, nil, &recordingPublisher{})
	for _, r := range []struct{ method, path string }{
		{"GET", "/admin/queries"}, {"GET", "/admin/queries/system_stats"}, {"POST", "/admin/storage/optimize"},
	} {
		status, _, body := call(t, r.method, srv.URL+r.path, nil)
		require.Equal(t, http.StatusServiceUnavailable, status, r.path)
		require.Contains(t, body, "no ClickHouse configured", r.path)
	}
}

// The queries run over the admin API with the same validation as the CLI, and an
// executed optimization is published as audit events.
func TestAdminQueries(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	require.NoError(t, chddl.Migrate(ctx, conn, chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}))
	// Two key-state rows of January 2024: a monthly partition long past retention.
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.key_state_log (id, timestamp, kind, project)", db))
	require.NoError(t, err)
	for i, at := range []time.Time{time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 4, 0, 0, 0, 0, time.UTC)} {
		require.NoError(t, b.Append(fmt.Sprintf("ks-%d", i), at, schemas.KindCooldown, "proj-a"))
	}
	require.NoError(t, b.Send())

	pub := &recordingPublisher{}
	srv := adminServer(t, conn, pub)

	status, ctype, body := call(t, "GET", srv.URL+"/admin/queries", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, ctype, "application/json")
	var list struct {
		Queries []struct {
			Name   string `json:"name"`
			Params []struct {
				Name, Type, Default string
			} `json:"params"`
		} `json:"queries"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Queries, 13)

	status, ctype, body = call(t, "GET", srv.URL+"/admin/queries/storage_metrics?format=csv", nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "text/csv; charset=utf-8", ctype)
	require.True(t, strings.HasPrefix(body, "table_name,engine,rows,"), body)
	require.Contains(t, body, "\nkey_state_log,ReplacingMergeTree,2,")

	// A hostile value is a value: it matches no model, and runs nothing else.
	status, _, body = call(t, "GET", srv.URL+"/admin/queries/token_usage?from=2024-01-01&model=x%27%20OR%201%3D1%20--", nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"rows":0`)

	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/admin/queries/nope", http.StatusNotFound, "unknown query"},
		{"/admin/queries/top_clients?limit=0", http.StatusBadRequest, "not in 1..10000"},
		{"/admin/queries/top_clients?bogus=1", http.StatusBadRequest, `no parameter \"bogus\"`},
		{"/admin/queries/top_clients?from=now-1h&from=now-2h", http.StatusBadRequest, "more than once"},
		{"/admin/queries/duplicates?table=system.users", http.StatusBadRequest, "not one of"},
		{"/admin/queries/system_stats?format=xml", http.StatusBadRequest, "use table, csv or json"},
	} {
		status, _, body := call(t, "GET", srv.URL+tc.path, nil)
		require.Equal(t, tc.status, status, tc.path)
		require.Contains(t, body, tc.want, tc.path)
	}

	// Dry run: the advice, nothing done.
	status, _, body = call(t, "POST", srv.URL+"/admin/storage/optimize?now=2025-01-01T00:00:00Z", nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"executed":false`)
	require.Contains(t, body, "DROP PARTITION ID '202401'")
	require.Empty(t, pub.events)

	status, _, body = call(t, "POST", srv.URL+"/admin/storage/optimize?execute=true&now=2025-01-01T00:00:00Z", http.Header{"X-Gca-Actor": {"sre@example.com"}})
	require.Equal(t, http.StatusOK, status, body)
	require.Len(t, pub.events, 1)
	require.Equal(t, schemas.TopicAudit, pub.topics[0])
	ev := pub.events[0].(auditRecord).AuditEvent
	require.NoError(t, ev.Validate())
	require.Equal(t, []string{"sre@example.com", "storage_drop_partition", db + ".key_state_log/202401", "ok", "ingress-test"},
		[]string{ev.Actor, ev.Action, ev.Target, ev.Result, ev.Instance})
	require.Equal(t, db+".key_state_log/202401", pub.events[0].RecordKey())
	var rows uint64
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM `%s`.key_state_log", db)).Scan(&rows))
	require.Zero(t, rows)
}
