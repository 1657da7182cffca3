package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this binary as the real candor command, so a test
// can kill it with SIGKILL like an operator or the OOM killer would.
func TestMain(m *testing.M) {
	if os.Getenv("CANDOR_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startCandor starts candor as a child process with args.
func startCandor(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CANDOR_TEST_AS_MAIN=1")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &out
}

func TestServeRecoversAfterKill9(t *testing.T) {
	dataDir := t.TempDir()
	addr, demoAddr := freeAddr(t), freeAddr(t)
	base := "http://" + addr

	cmd, out := startCandor(t, "serve", "--listen", addr, "--demo-listen", demoAddr, "--data-dir", dataDir)
	waitFor(t, base+"/readyz", 200, 60*time.Second)
	// Something to lose: an API token, written beside the running server.
	code, token, stderr := runCmd(t, t.Context(), "token", "create", "--role", "viewer", "--name", "survivor", "--data-dir", dataDir)
	token = strings.TrimSpace(token)
	if code != 0 || token == "" {
		t.Fatalf("token create beside candor serve: exit %d, %q %q", code, token, stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	cmd, out = startCandor(t, "serve", "--listen", addr, "--demo-listen", demoAddr, "--data-dir", dataDir)
	_, took := waitFor(t, base+"/readyz", 200, 30*time.Second)
	t.Logf("ready %s after restarting from kill -9", took)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/incidents", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the token made before kill -9 is refused after it (%s): the data did not survive", resp.Status)
	}
	if strings.Contains(out.String(), "applied migration") {
		t.Errorf("migrations ran again after kill -9: the data was lost\n%s", out.String())
	}
	// A graceful stop ends with exit status 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("candor exited with %v after SIGTERM:\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("candor did not stop within 60 s of SIGTERM:\n%s", out.String())
	}
}
