package queries

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

// The statement is built from checked fields; anything else is refused.
func TestStorageStatement(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rec     Recommendation
		cluster string
		want    string
	}{
		{"drop a day", Recommendation{Action: ActionDropPartition, Database: "gca", Table: "request_logs", PartitionID: "20250308"}, "",
			"ALTER TABLE `gca`.`request_logs` DROP PARTITION ID '20250308'"},
		{"drop a month on a cluster", Recommendation{Action: ActionDropPartition, Database: "gca", Table: "key_state_log_local", PartitionID: "202503"}, "main",
			"ALTER TABLE `gca`.`key_state_log_local` ON CLUSTER `main` DROP PARTITION ID '202503'"},
		{"optimize an unpartitioned table", Recommendation{Action: ActionOptimizePartition, Database: "gca", Table: "api_key_metrics_state", PartitionID: "all"}, "",
			"OPTIMIZE TABLE `gca`.`api_key_metrics_state` PARTITION ID 'all' FINAL"},
		{"optimize the audit log", Recommendation{Action: ActionOptimizePartition, Database: "gca", Table: "audit_log", PartitionID: "202503"}, "",
			"OPTIMIZE TABLE `gca`.`audit_log` PARTITION ID '202503' FINAL"},
	} {
		got, err := StorageStatement(tc.rec, tc.cluster)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
	for _, tc := range []struct {
		name    string
		rec     Recommendation
		cluster string
	}{
		{"the audit trail is kept", Recommendation{Action: ActionDropPartition, Database: "gca", Table: "audit_log", PartitionID: "202503"}, ""},
		{"a table of someone else's", Recommendation{Action: ActionDropPartition, Database: "gca", Table: "users", PartitionID: "20250308"}, ""},
		{"a system table", Recommendation{Action: ActionOptimizePartition, Database: "system", Table: "query_log", PartitionID: "202503"}, ""},
		{"a partition id with a quote", Recommendation{Action: ActionDropPartition, Database: "gca", Table: "request_logs", PartitionID: "2025' OR '1"}, ""},
		{"dropping the unpartitioned", Recommendation{Action: ActionDropPartition, Database: "gca", Table: "request_logs", PartitionID: "all"}, ""},
		{"a database with a backquote", Recommendation{Action: ActionOptimizePartition, Database: "g`; DROP DATABASE gca; --", Table: "request_logs", PartitionID: "all"}, ""},
		{"a cluster with a backquote", Recommendation{Action: ActionOptimizePartition, Database: "gca", Table: "request_logs", PartitionID: "all"}, "c` x"},
		{"an unknown action", Recommendation{Action: "truncate", Database: "gca", Table: "request_logs", PartitionID: "20250308"}, ""},
	} {
		_, err := StorageStatement(tc.rec, tc.cluster)
		require.ErrorIs(t, err, ErrNotAllowed, tc.name)
	}
}

type fakeExec struct {
	ran  []string
	fail map[string]error
}

func (f *fakeExec) Exec(_ context.Context, q string, _ ...any) error {
	f.ran = append(f.ran, q)
	return f.fail[q]
}

type fakeRecorder struct {
	results []string
	failAt  int
}

func (f *fakeRecorder) Record(_ context.Context, actor, action, target string, params map[string]string, result string) (*schemas.AuditEvent, error) {
	if len(f.results) == f.failAt {
		return nil, errors.New("kafka unreachable")
	}
	f.results = append(f.results, action+" "+target+" "+result)
	return &schemas.AuditEvent{Actor: actor, Action: action, Target: target, Params: params, Result: result}, nil
}

// A failed statement is recorded and the rest still run; a refused row never reaches
// the server; a failure to record stops the run.
func TestOptimizerExecute(t *testing.T) {
	recs := []Recommendation{
		{Action: ActionDropPartition, Database: "gca", Table: "request_logs", PartitionID: "20250301"},
		{Action: ActionDropPartition, Database: "gca", Table: "audit_log", PartitionID: "202503"},
		{Action: ActionOptimizePartition, Database: "gca", Table: "error_logs", PartitionID: "20250309"},
		{Action: ActionDropPartition, Database: "gca", Table: "error_logs", PartitionID: "20250301"},
	}
	exec := &fakeExec{fail: map[string]error{"OPTIMIZE TABLE `gca`.`error_logs` PARTITION ID '20250309' FINAL": errors.New("timeout")}}
	rec := &fakeRecorder{failAt: -1}
	out, err := (&Optimizer{Conn: exec, Audit: rec, Actor: "op"}).Execute(context.Background(), recs)
	require.Error(t, err)
	require.ErrorIs(t, err, ErrNotAllowed)
	require.Len(t, out, 4)
	require.Equal(t, []string{
		"ALTER TABLE `gca`.`request_logs` DROP PARTITION ID '20250301'",
		"OPTIMIZE TABLE `gca`.`error_logs` PARTITION ID '20250309' FINAL",
		"ALTER TABLE `gca`.`error_logs` DROP PARTITION ID '20250301'",
	}, exec.ran)
	require.Equal(t, "storage_drop_partition gca.request_logs/20250301 ok", rec.results[0])
	require.Contains(t, rec.results[1], "storage_drop_partition gca.audit_log/202503 error: storage action not allowed")
	require.Contains(t, rec.results[2], "storage_optimize_partition gca.error_logs/20250309 error: ")
	require.Equal(t, "storage_drop_partition gca.error_logs/20250301 ok", rec.results[3])

	exec = &fakeExec{}
	rec = &fakeRecorder{failAt: 1}
	out, err = (&Optimizer{Conn: exec, Audit: rec, Actor: "op"}).Execute(context.Background(), recs)
	require.ErrorContains(t, err, "audit event was not recorded")
	require.Len(t, out, 1)
	require.Len(t, exec.ran, 1, "nothing after the lost audit event")
}
