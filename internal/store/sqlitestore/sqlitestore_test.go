package sqlitestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openFile(t *testing.T, path string) (*Store, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Open(ctx, Config{Path: path, StatementTimeout: 5 * time.Second})
}

// flock belongs to the open file description, so even a second Store in
// this same process is refused while the first is open.
func TestFileInUseInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.db")
	first, err := openFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openFile(t, path); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open of %s: %v, want ErrInUse", path, err)
	} else if !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("the error does not point to PostgreSQL for several replicas: %v", err)
	}
	// A relative spelling of the same file is the same file.
	wd, _ := os.Getwd()
	if rel, err := filepath.Rel(wd, path); err == nil {
		if _, err := openFile(t, rel); !errors.Is(err, ErrInUse) {
			t.Fatalf("open of %s by a relative path: %v, want ErrInUse", rel, err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := openFile(t, path)
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	_ = again.Close()
}

const helperEnv = "SQLITESTORE_HOLD_FILE"

// TestHelperHoldFile is not a test: run as a child process by
// TestFileInUseByAnotherProcess, it opens the file, says so, and holds it
// until its stdin closes.
func TestHelperHoldFile(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestFileInUseByAnotherProcess")
	}
	st, err := openFile(t, path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = st.Close()
	os.Exit(0)
}

func TestFileInUseByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldFile$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "holding" {
		_ = cmd.Process.Kill()
		t.Fatalf("helper: %q, %v", line, err)
	}

	if _, err := openFile(t, path); !errors.Is(err, ErrInUse) {
		t.Errorf("open a file another process holds: %v, want ErrInUse", err)
	}

	_ = stdin.Close() // the helper closes its store and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	st, err := openFile(t, path)
	if err != nil {
		t.Fatalf("open after the other process exited: %v", err)
	}
	_ = st.Close()
}

func TestMemoryDescribe(t *testing.T) {
	st, err := Open(context.Background(), Config{StatementTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.InMemory() || st.Describe() != "in memory" {
		t.Fatalf("in-memory store: InMemory %v, Describe %q", st.InMemory(), st.Describe())
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
