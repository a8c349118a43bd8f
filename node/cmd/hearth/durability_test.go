package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles the hearth command once per test binary.
var buildOnce sync.Once
var binPath string
var buildErr error

func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hearth-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hearth")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
}

func start(t *testing.T, bin, dataDir, addr string, extra ...string) *proc {
	t.Helper()
	var logs bytes.Buffer
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", addr, "--rate-messages", "100000", "--rate-global", "100000"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, base: "http://" + addr, logs: &logs}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node did not become healthy:\n%s", logs.String())
	return nil
}

func (p *proc) call(method, path, token string, body, out any) (int, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, p.base+"/api/v10"+path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

// TestAcknowledgedMessagesSurviveKill9 writes messages from several clients, kills the node
// with SIGKILL in the middle, restarts it, and checks that every message the node answered
// with success is stored.
func TestAcknowledgedMessagesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freePort(t)
	p := start(t, bin, dir, addr)
	var reg struct{ Token string }
	if st, err := p.call("POST", "/auth/register", "", map[string]string{"username": "writer", "password": "durable password"}, &reg); err != nil || st != 201 {
		t.Fatalf("register: %d %v", st, err)
	}
	var g struct {
		Channels []struct {
			ID   string
			Type int
		}
	}
	p.call("POST", "/guilds", reg.Token, map[string]string{"name": "Durable"}, &g)
	var ch string
	for _, c := range g.Channels {
		if c.Type == 0 {
			ch = c.ID
		}
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var m struct{ ID string }
				st, err := p.call("POST", "/channels/"+ch+"/messages", reg.Token, map[string]string{"content": fmt.Sprintf("w%d-%d", w, i)}, &m)
				if err != nil {
					return // the node is gone
				}
				if st == 200 && m.ID != "" {
					mu.Lock()
					acked[m.ID] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	// Kill once a good number of writes have been acknowledged.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) < 300 {
		t.Fatalf("only %d messages acknowledged before the kill", len(acked))
	}

	p2 := start(t, bin, dir, addr)
	stored := map[string]bool{}
	before := ""
	for {
		var page []struct{ ID string }
		q := "?limit=100"
		if before != "" {
			q += "&before=" + before
		}
		if st, err := p2.call("GET", "/channels/"+ch+"/messages"+q, reg.Token, nil, &page); err != nil || st != 200 {
			t.Fatalf("history after restart: %d %v", st, err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			stored[m.ID] = true
		}
		before = page[len(page)-1].ID
	}
	var lost []string
	for id := range acked {
		if !stored[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged messages lost after kill -9 (e.g. %s)", len(lost), len(acked), lost[0])
	}
	t.Logf("%d acknowledged messages, all present after kill -9 (%d stored)", len(acked), len(stored))
}

// TestGracefulShutdown sends SIGTERM and expects a clean exit with the data intact.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freePort(t)
	p := start(t, bin, dir, addr)
	if st, _ := p.call("POST", "/auth/register", "", map[string]string{"username": "someone", "password": "graceful pw"}, nil); st != 201 {
		t.Fatalf("register: %d", st)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node did not stop after SIGTERM")
	}
	p2 := start(t, bin, dir, addr)
	if st, _ := p2.call("POST", "/auth/login", "", map[string]string{"login": "someone", "password": "graceful pw"}, nil); st != 200 {
		t.Fatalf("login after restart: %d", st)
	}
}
