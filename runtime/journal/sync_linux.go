package journal

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable, and its size, without its other
// metadata (times), which a journal does not need.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
