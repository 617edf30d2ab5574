//go:build linux

package tensorio

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killWriterDirEnv tells the child of TestWriterKilled where to write.
const killWriterDirEnv = "NTC_TENSORIO_KILL_CHILD_DIR"

// TestWriterKilled re-executes the test binary as a child that writes part
// of a .npy file through Create (the writer of 'ntc decode') and waits;
// the parent kills it with SIGKILL. Nothing may be left in the directory:
// a killed decode used to leave its ".OUT.npy.tmpNNNN" behind.
func TestWriterKilled(t *testing.T) {
	if dir := os.Getenv(killWriterDirEnv); dir != "" {
		w, err := Create(filepath.Join(dir, "out.npy"), Float32, 64, 256, 256)
		if err != nil {
			println("error", err.Error())
			os.Exit(1)
		}
		v := make([]float32, 256*256)
		for range 8 {
			if err := w.WriteSample(v); err != nil {
				println("error", err.Error())
				os.Exit(1)
			}
		}
		w.(*fileWriter).bw.Flush()
		os.Stdout.WriteString("written\n")
		time.Sleep(time.Hour)
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriterKilled$", "-test.count=1")
	cmd.Env = append(os.Environ(), killWriterDirEnv+"="+dir)
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
	said := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Scan()
		said <- sc.Text()
	}()
	select {
	case s := <-said:
		if s != "written" {
			t.Fatalf("child said %q", s)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("child did not report writing")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) == 1 && strings.Contains(names[0], ".tmp-ntc-") {
		t.Skipf("O_TMPFILE unsupported in %s: the named fallback is left for the next run to remove", dir)
	}
	if len(names) != 0 {
		t.Fatalf("a killed writer left %v", names)
	}
}
