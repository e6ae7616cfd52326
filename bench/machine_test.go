//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// machine is what the results were measured on.
type machine struct {
	NProc       int     `json:"nproc"`
	CPUModel    string  `json:"cpu_model"`
	MemTotalMB  int64   `json:"mem_total_mb"`
	Kernel      string  `json:"kernel"`
	GoVersion   string  `json:"go_version"`
	Date        string  `json:"date"`
	LoadAvg     string  `json:"loadavg_at_start"`
	LoadAvgEnd  string  `json:"loadavg_at_end,omitempty"`
	ClockTickHz float64 `json:"clock_tick_hz"`
}

func readMachine() machine {
	m := machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339), ClockTickHz: clockTicks}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, err := procField("/proc/meminfo", "MemTotal:"); err == nil {
		m.MemTotalMB = kb / 1024
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = string(bytes.TrimRight(u.Release[:], "\x00"))
	}
	m.LoadAvg = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// layout is where the load generator and the servers under test run.
type layout struct {
	// LoadGen and Servers are CPU lists in taskset's syntax; empty when unpinned.
	LoadGen string `json:"load_generator"`
	Servers string `json:"servers"`
	All     string `json:"all"`
	Note    string `json:"note"`

	loadCPUs, allCPUs []int
}

// newLayout splits the CPUs this process may use: the first for the load generator,
// the rest for the servers. With one CPU, or without taskset, nothing is pinned.
func newLayout() layout {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return layout{Note: "unpinned: " + err.Error()}
	}
	var cpus []int
	for c := 0; c < 1024 && len(cpus) < set.Count(); c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if _, err := exec.LookPath("taskset"); err != nil || len(cpus) < 2 {
		return layout{Note: fmt.Sprintf("unpinned: %d CPU(s), taskset found: %v", len(cpus), err == nil), allCPUs: cpus}
	}
	l := layout{LoadGen: cpuList(cpus[:1]), Servers: cpuList(cpus[1:]), All: cpuList(cpus), loadCPUs: cpus[:1], allCPUs: cpus}
	l.Note = "parts 1-3 and 6: load generator (this process) on CPU " + l.LoadGen +
		"; ingress or bare proxy, and the simulator, on CPU " + l.Servers +
		"; the Valkey state consumer, Kafka, ClickHouse and Valkey unpinned. Parts 4-5: everything unpinned."
	return l
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// pinLoadGen moves every thread of this process to the load generator's CPUs.
func (l layout) pinLoadGen() error { return pinSelf(l.loadCPUs) }

// unpin lets this process use every CPU again.
func (l layout) unpin() error { return pinSelf(l.allCPUs) }

// pinSelf sets the affinity of every thread of the process (a Go process has many,
// and sched_setaffinity applies to one) and sizes GOMAXPROCS to match. Threads
// created later inherit the mask of the thread that creates them.
func pinSelf(cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for range 2 { // a thread started during the first pass is caught by the second
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d to %v: %w", tid, cpus, err)
			}
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on
// every Linux architecture Go supports (sysconf needs cgo).
const clockTicks = 100.0

// procCPU returns the CPU time (user + system, all threads) the process has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat of %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat of %d: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse cpu times of %d", pid)
	}
	return time.Duration(float64(ut+st) / clockTicks * float64(time.Second)), nil
}

// procMem returns the resident set and its high-water mark, in kB.
func procMem(pid int) (rssKB, hwmKB int64, err error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	if rssKB, err = procField(path, "VmRSS:"); err != nil {
		return 0, 0, err
	}
	hwmKB, err = procField(path, "VmHWM:")
	return rssKB, hwmKB, err
}

// procField reads a "Name:   123 kB" line of a /proc file.
func procField(path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				break
			}
			return strconv.ParseInt(fs[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}

// raiseFileLimit lifts this process's open-files limit to its hard limit; processes
// started afterwards inherit it (an explicit Setrlimit also stops Go from restoring
// the original soft limit in children).
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
