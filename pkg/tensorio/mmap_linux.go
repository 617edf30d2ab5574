package tensorio

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile reserves size bytes of f on disk (fallocate) and maps them for
// writing; it returns nil where either fails (a file system without
// fallocate), and the caller writes with WriteAt instead.
func mapFile(f *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	fd := int(f.Fd())
	if unix.Fallocate(fd, 0, 0, size) != nil {
		return nil
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return mem
}

func unmapFile(mem []byte) error { return unix.Munmap(mem) }
