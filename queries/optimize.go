package queries

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/geminicodeapi/gca/schemas"
)

// Storage actions, as storage_recommendations names them.
const (
	ActionDropPartition     = "drop_partition"
	ActionOptimizePartition = "optimize_partition"
)

// Audit actions recorded for an executed recommendation (schemas.AuditEvent.Action).
const (
	AuditDropPartition     = "storage_drop_partition"
	AuditOptimizePartition = "storage_optimize_partition"
)

// Recommendation is a row of the storage_recommendations query.
type Recommendation struct {
	Action         string `json:"action"`
	Priority       string `json:"priority"`
	Database       string `json:"database"`
	Table          string `json:"table_name"`
	PartitionID    string `json:"partition_id"`
	ActiveParts    uint64 `json:"active_parts"`
	Rows           uint64 `json:"rows"`
	BytesOnDisk    uint64 `json:"bytes_on_disk"`
	Description    string `json:"description"`
	ExpectedImpact string `json:"expected_impact"`
	Statement      string `json:"statement"`
}

// Recommendations runs storage_recommendations with the parameters.
func (c *Catalog) Recommendations(ctx context.Context, conn Conn, params map[string]string) ([]Recommendation, error) {
	res, err := c.Run(ctx, conn, "storage_recommendations", params)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, col := range res.Columns {
		idx[col.Name] = i
	}
	str := func(row []any, name string) string { s, _ := row[idx[name]].(string); return s }
	num := func(row []any, name string) uint64 { n, _ := row[idx[name]].(uint64); return n }
	for _, name := range []string{"action", "priority", "database", "table_name", "partition_id", "active_parts", "rows", "bytes_on_disk", "description", "expected_impact", "statement"} {
		if _, ok := idx[name]; !ok {
			return nil, fmt.Errorf("storage_recommendations returned no column %s", name)
		}
	}
	out := make([]Recommendation, 0, len(res.Rows))
	for _, row := range res.Rows {
		out = append(out, Recommendation{
			Action: str(row, "action"), Priority: str(row, "priority"), Database: str(row, "database"),
			Table: str(row, "table_name"), PartitionID: str(row, "partition_id"),
			ActiveParts: num(row, "active_parts"), Rows: num(row, "rows"), BytesOnDisk: num(row, "bytes_on_disk"),
			Description: str(row, "description"), ExpectedImpact: str(row, "expected_impact"), Statement: str(row, "statement"),
		})
	}
	return out, nil
}

// Tables the optimizer may act on, and whether their partitions may be dropped
// (retention); the rest may only be optimized. audit_log is kept forever.
var storageTables = map[string]bool{
	"request_logs": true, "error_logs": true, "api_key_failures": true, "key_state_log": true,
	"system_stats_daily": true, "audit_log": false, "api_key_metrics_state": false,
}

var (
	databasePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	partitionPattern = regexp.MustCompile(`^[0-9]{6}([0-9]{2})?$`)
)

// ErrNotAllowed is returned for a recommendation the optimizer refuses to execute.
var ErrNotAllowed = errors.New("storage action not allowed")

// StorageStatement builds the statement that carries a recommendation out. It never
// uses the row's own statement text: it checks the action, the table (one of the
// project's, without or with the _local suffix of a cluster), the database name and
// the partition id, and writes the statement from them. cluster, when set, adds
// ON CLUSTER.
func StorageStatement(r Recommendation, cluster string) (string, error) {
	base := strings.TrimSuffix(r.Table, "_local")
	droppable, known := storageTables[base]
	onCluster := ""
	if cluster != "" {
		if !databasePattern.MatchString(cluster) {
			return "", fmt.Errorf("%w: cluster name %q", ErrNotAllowed, cluster)
		}
		onCluster = " ON CLUSTER `" + cluster + "`"
	}
	switch {
	case !known:
		return "", fmt.Errorf("%w: table %q is not one of the project's", ErrNotAllowed, r.Table)
	case !databasePattern.MatchString(r.Database):
		return "", fmt.Errorf("%w: database name %q", ErrNotAllowed, r.Database)
	}
	target := "`" + r.Database + "`.`" + r.Table + "`" + onCluster
	switch r.Action {
	case ActionDropPartition:
		if !droppable {
			return "", fmt.Errorf("%w: %s keeps its partitions", ErrNotAllowed, base)
		}
		if !partitionPattern.MatchString(r.PartitionID) {
			return "", fmt.Errorf("%w: partition id %q is not a day or month", ErrNotAllowed, r.PartitionID)
		}
		return "ALTER TABLE " + target + " DROP PARTITION ID '" + r.PartitionID + "'", nil
	case ActionOptimizePartition:
		if !partitionPattern.MatchString(r.PartitionID) && r.PartitionID != "all" {
			return "", fmt.Errorf("%w: partition id %q", ErrNotAllowed, r.PartitionID)
		}
		return "OPTIMIZE TABLE " + target + " PARTITION ID '" + r.PartitionID + "' FINAL", nil
	}
	return "", fmt.Errorf("%w: action %q", ErrNotAllowed, r.Action)
}

// Execer runs a statement; a clickhouse-go connection is one.
type Execer interface {
	Exec(ctx context.Context, query string, args ...any) error
}

// Recorder records an operator action as an audit event and returns the event: the
// processors write it to the audit topic (processors/replay.Auditor), the ingress
// publishes it through its spool.
type Recorder interface {
	Record(ctx context.Context, actor, action, target string, params map[string]string, result string) (*schemas.AuditEvent, error)
}

// Optimizer executes storage recommendations, each recorded as an audit event.
type Optimizer struct {
	Conn  Execer
	Audit Recorder
	// Actor names who asked (an operator, "admin-api", "auto-optimize").
	Actor string
	// Cluster adds ON CLUSTER to the statements (the processors' cluster setting).
	Cluster string
}

// Outcome is what executing one recommendation did.
type Outcome struct {
	Recommendation Recommendation      `json:"recommendation"`
	Statement      string              `json:"statement,omitempty"`
	Err            error               `json:"-"`
	Error          string              `json:"error,omitempty"`
	Audit          *schemas.AuditEvent `json:"audit_event,omitempty"`
}

// Execute runs the recommendations in order and records each, done or failed, as an
// audit event after it ran. A failed statement does not stop the rest (a partition
// TTL dropped meanwhile is no reason to leave the others); a failure to record does:
// Execute returns at once, naming the action whose event was lost, and takes no
// further action that could not be audited either.
func (o *Optimizer) Execute(ctx context.Context, recs []Recommendation) ([]Outcome, error) {
	out := make([]Outcome, 0, len(recs))
	var errs []error
	for _, r := range recs {
		oc := Outcome{Recommendation: r}
		stmt, err := StorageStatement(r, o.Cluster)
		if err == nil {
			oc.Statement = stmt
			if err = o.Conn.Exec(ctx, stmt); err != nil {
				err = fmt.Errorf("%s %s.%s partition %s: %w", r.Action, r.Database, r.Table, r.PartitionID, err)
			}
		}
		result := "ok"
		if err != nil {
			oc.Err, oc.Error = err, err.Error()
			result = "error: " + err.Error()
			errs = append(errs, err)
		}
		action := AuditOptimizePartition
		if r.Action == ActionDropPartition {
			action = AuditDropPartition
		}
		ev, aerr := o.Audit.Record(ctx, o.Actor, action, r.Database+"."+r.Table+"/"+r.PartitionID, map[string]string{
			"statement":     stmt,
			"priority":      r.Priority,
			"reason":        r.Description,
			"rows":          strconv.FormatUint(r.Rows, 10),
			"bytes_on_disk": strconv.FormatUint(r.BytesOnDisk, 10),
			"active_parts":  strconv.FormatUint(r.ActiveParts, 10),
		}, result)
		if aerr != nil {
			return out, errors.Join(append(errs, fmt.Errorf("%s of %s.%s partition %s ran (%s) but its audit event was not recorded; stopped: %w", action, r.Database, r.Table, r.PartitionID, result, aerr))...)
		}
		oc.Audit = ev
		out = append(out, oc)
	}
	return out, errors.Join(errs...)
}
