package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// readyPath is where the gateway's binaries answer 200 once they serve.
const readyPath = "/health/ready"

// Proc is a running binary with its output captured.
type Proc struct {
	Name  string
	Addr  string // its HTTP address
	path  string
	args  []string
	env   []string
	ready string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// NewProc returns a process, not started, for argv (argv[0] is the program) with env
// added to this process's environment. It is ready when GET http://addr+ready answers
// 200 ("" for ready: as soon as it started).
func NewProc(name, addr, ready string, argv, env []string) *Proc {
	return &Proc{Name: name, Addr: addr, path: argv[0], args: argv[1:], env: env, ready: ready, out: &syncBuffer{}}
}

// Pinned returns the command line that runs program with args on the CPUs of the list
// cpus (taskset's syntax, "1" or "0,2-3"); with cpus empty, the command line as it is.
// taskset execs the program, so the process keeps taskset's pid.
func Pinned(cpus, program string, args ...string) []string {
	if cpus == "" {
		return append([]string{program}, args...)
	}
	return append([]string{"taskset", "-c", cpus, program}, args...)
}

// Start launches the process (again, after it exited) and waits until it is ready.
func (p *Proc) Start(ready time.Duration) error {
	p.mu.Lock()
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	done := p.done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return p.WaitReady(ready)
}

// WaitReady polls the process's ready path.
func (p *Proc) WaitReady(limit time.Duration) error {
	if p.ready == "" {
		return nil
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v\n%s", p.Name, p.err, p.Output())
		default:
		}
		resp, err := http.Get("http://" + p.Addr + p.ready)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s after %s:\n%s", p.Name, p.Addr, limit, p.Output())
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("%s not started", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait(ctx context.Context) (int, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode(), nil
}

// Stop sends SIGTERM and waits up to limit, then kills.
func (p *Proc) Stop(limit time.Duration) (int, error) {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return -1, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	code, err := p.Wait(ctx)
	if err != nil {
		_ = p.Signal(syscall.SIGKILL)
		return p.Wait(context.Background())
	}
	return code, nil
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	_, _ = p.Wait(context.Background())
}

// PID is the process id of the last start, 0 before the first.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Output returns what the process printed.
func (p *Proc) Output() string { return p.out.String() }
