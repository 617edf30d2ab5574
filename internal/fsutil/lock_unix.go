//go:build unix

package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// haveLocks says whether lock works on this platform.
const haveLocks = true

// lock takes an exclusive advisory lock (flock) on f without waiting; it
// fails if another open file description holds one. Closing the file, or
// the death of the process, releases it.
func lock(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}
