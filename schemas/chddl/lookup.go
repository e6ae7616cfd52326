package chddl

import "fmt"

// BatchTable is the name of the external table (sent with the query over the native
// protocol) that holds the batch a dedupe lookup checks.
const BatchTable = "_gca_batch"

// Lookup is the query a writer runs before an insert to learn which events of its batch
// a table already holds. It lives here, beside the DDL, because it is only cheap while
// it matches the table's sorting key: the batch's events are looked up by their full
// sorting key, `(key...) IN (SELECT ... FROM _gca_batch)`, which ClickHouse (18.16 as
// 26.x) answers from the primary index, reading only the granules that may hold them.
type Lookup struct {
	// Query selects the ids found. It has two %d verbs for the batch's time bounds in
	// Unix seconds, [lo, hi), which prune partitions.
	Query string
	// Columns is the external table's structure, in order; the writer fills it.
	Columns []LookupColumn
}

// LookupColumn is a column of the external batch table.
type LookupColumn struct {
	Name, Type string
}

// Columns of the lookups' external tables.
const (
	LookupID      = "id"
	LookupTime    = "ts"
	LookupKeyHash = "key_hash"
	LookupModel   = "model"
	LookupProject = "project"
)

// RequestLookup finds stored request_logs rows; the batch table holds each event's id,
// timestamp, api_key_hash and model.
func RequestLookup(v Version, opts Options) Lookup {
	return Lookup{
		Query: fmt.Sprintf(`SELECT id FROM %s.%s
WHERE timestamp >= toDateTime(%%d) AND timestamp < toDateTime(%%d)
  AND (toStartOfHour(timestamp), api_key_hash, model, timestamp, id) IN
      (SELECT toStartOfHour(%s), %s, %s, %s, %s FROM %s)`,
			quote(opts.Database), quote("request_logs"),
			LookupTime, LookupKeyHash, LookupModel, LookupTime, LookupID, BatchTable),
		Columns: []LookupColumn{{LookupID, "String"}, {LookupTime, datetime(v)}, {LookupKeyHash, "String"}, {LookupModel, "String"}},
	}
}

// KeyStateLookup finds stored key_state_log rows; the batch holds id, timestamp, project.
func KeyStateLookup(v Version, opts Options) Lookup {
	return Lookup{
		Query: fmt.Sprintf(`SELECT id FROM %s.%s
WHERE timestamp >= toDateTime(%%d) AND timestamp < toDateTime(%%d)
  AND (project, timestamp, id) IN (SELECT %s, %s, %s FROM %s)`,
			quote(opts.Database), quote("key_state_log"),
			LookupProject, LookupTime, LookupID, BatchTable),
		Columns: []LookupColumn{{LookupID, "String"}, {LookupTime, datetime(v)}, {LookupProject, "String"}},
	}
}

// AuditLookup finds stored audit_log rows; the batch holds id and timestamp.
func AuditLookup(v Version, opts Options) Lookup {
	return Lookup{
		Query: fmt.Sprintf(`SELECT id FROM %s.%s
WHERE timestamp >= toDateTime(%%d) AND timestamp < toDateTime(%%d)
  AND (timestamp, id) IN (SELECT %s, %s FROM %s)`,
			quote(opts.Database), quote("audit_log"),
			LookupTime, LookupID, BatchTable),
		Columns: []LookupColumn{{LookupID, "String"}, {LookupTime, datetime(v)}},
	}
}

func datetime(v Version) string {
	if v.Modern() {
		return "DateTime64(3, 'UTC')"
	}
	return "DateTime('UTC')"
}
