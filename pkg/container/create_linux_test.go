//go:build linux

package container

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/fsutil"
)

// Environment of the child process of TestCreateKilled: the directory it
// writes into, and whether it forces a named temporary file.
const (
	killChildDirEnv   = "NTC_CONTAINER_KILL_CHILD_DIR"
	killChildNamedEnv = "NTC_CONTAINER_KILL_CHILD_NAMED"
)

// TestCreateKilled re-executes the test binary as a child that writes a few
// megabytes through Create and then waits; the parent kills it with SIGKILL
// and lists the directory. With an unnamed temporary file (O_TMPFILE) the
// directory must be empty. The named fallback is run too, to show that the
// test sees what a killed writer leaves: there, only the temporary file.
func TestCreateKilled(t *testing.T) {
	if dir := os.Getenv(killChildDirEnv); dir != "" {
		fsutil.ForceNamedTemp = os.Getenv(killChildNamedEnv) == "1"
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for _, named := range []bool{false, true} {
		name := map[bool]string{false: "unnamed", true: "named"}[named]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mode, n := runKilledChild(t, dir, named)
			names := listDir(t, dir)
			if slices.Contains(names, "out.ntcb") {
				t.Fatalf("destination exists after SIGKILL: %v", names)
			}
			switch {
			case mode == "unnamed" && len(names) != 0:
				t.Errorf("after SIGKILL of a writer that wrote %d bytes, the directory holds %v", n, names)
			case mode == "named" && len(tempFiles(names)) != 1:
				t.Errorf("named mode: expected the killed writer's temporary file, directory holds %v", names)
			case mode == "named" && !named:
				t.Skipf("O_TMPFILE unsupported in %s: a killed writer leaves its named temporary file", dir)
			}
			t.Logf("child wrote %d bytes in %s mode; directory after SIGKILL: %v", n, mode, names)
		})
	}
}

// runKilledChild starts the child, waits for it to report, checks the
// directory while it runs, kills it and reaps it.
func runKilledChild(t *testing.T, dir string, named bool) (mode string, n int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCreateKilled$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildDirEnv+"="+dir, killChildNamedEnv+"="+map[bool]string{false: "0", true: "1"}[named])
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "written ") || strings.HasPrefix(sc.Text(), "error") {
				line <- sc.Text()
				return
			}
		}
		close(line)
	}()
	var msg string
	select {
	case msg = <-line:
	case <-time.After(60 * time.Second):
		t.Fatal("child did not report writing")
	}
	if _, err := fmt.Sscanf(msg, "written %s %d", &mode, &n); err != nil {
		t.Fatalf("child said %q: %v", msg, err)
	}
	if n < 4<<20 {
		t.Fatalf("child wrote only %d bytes", n)
	}
	if names := listDir(t, dir); slices.Contains(names, "out.ntcb") || (mode == "unnamed" && len(names) != 0) {
		t.Errorf("while the child writes, the directory holds %v", names)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	return mode, n
}

// killChild is the child side of TestCreateKilled: it writes, makes sure
// the data reached the file, reports, and waits to be killed.
func killChild(dir string) {
	fail := func(v ...any) {
		fmt.Println(append([]any{"error"}, v...)...)
		os.Exit(1)
	}
	f, err := Create(filepath.Join(dir, "out.ntcb"))
	if err != nil {
		fail(err)
	}
	payload := make([]byte, 1<<20)
	for i := range 4 {
		if err := f.WriteChunk(1, payload, []SampleInfo{{fmt.Sprint(i), 1, 1}}); err != nil {
			fail(err)
		}
	}
	if err := f.bw.Flush(); err != nil {
		fail(err)
	}
	fi, err := f.af.OS().Stat()
	if err != nil || fi.Size() != f.Offset() {
		fail("file holds", fi.Size(), err)
	}
	mode := "unnamed"
	if f.af.TempName() != "" {
		mode = "named"
	}
	fmt.Printf("written %s %d\n", mode, f.Offset())
	time.Sleep(time.Hour)
}
