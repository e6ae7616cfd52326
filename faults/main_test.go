//go:build faults

package faults

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// row is one line of the table the run prints: what clients were served in a scenario
// and what became of their events.
type row struct {
	Scenario string
	// Served is the number of requests a client got a complete answer for (2xx, whole
	// body or stream); for the input and upstream scenarios, every answer counts, since
	// each must be recorded, errors included.
	Served int
	// Events is the number of distinct request events in the scenario's Kafka topic.
	Events int
	// Rows is the number of distinct request_logs rows (by event id).
	Rows int
	// Lost is the number of served requests without a row; Duplicated the number of
	// extra rows (the same event twice, one request recorded twice, or system_stats
	// counting more requests than request_logs holds).
	Lost, Duplicated int
	// AllowedLoss marks a scenario where the design allows loss (spool policy drop) and
	// counts it; Lost must then equal the counted loss.
	AllowedLoss bool
	// Note says what else was checked or measured.
	Note   string
	failed bool
}

var table struct {
	mu   sync.Mutex
	rows []*row
}

// report adds the scenario's row to the table; the row is marked FAIL if the test fails.
func report(t *testing.T, r row) {
	t.Helper()
	p := &r
	table.mu.Lock()
	table.rows = append(table.rows, p)
	table.mu.Unlock()
	t.Logf("scenario %q: served=%d events=%d rows=%d lost=%d duplicated=%d %s", r.Scenario, r.Served, r.Events, r.Rows, r.Lost, r.Duplicated, r.Note)
	t.Cleanup(func() {
		table.mu.Lock()
		p.failed = t.Failed()
		table.mu.Unlock()
	})
}

func TestMain(m *testing.M) {
	start := time.Now()
	code := m.Run()
	printTable(time.Since(start))
	os.Exit(code)
}

func printTable(took time.Duration) {
	table.mu.Lock()
	defer table.mu.Unlock()
	if len(table.rows) == 0 {
		return
	}
	fmt.Println()
	fmt.Printf("| scenario | requests served | events produced | rows found | lost | duplicated | result | notes |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range table.rows {
		lost := fmt.Sprint(r.Lost)
		if r.AllowedLoss {
			lost += " (allowed: counted)"
		}
		res := "ok"
		if r.failed {
			res = "FAIL"
		}
		fmt.Printf("| %s | %d | %d | %d | %s | %d | %s | %s |\n", r.Scenario, r.Served, r.Events, r.Rows, lost, r.Duplicated, res, strings.ReplaceAll(r.Note, "|", "/"))
	}
	fmt.Printf("| total runtime %s | | | | | | | |\n", took.Round(time.Second))
}
