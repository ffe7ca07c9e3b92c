//go:build unix

package journal

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive lock on f, trying for up to wait; it
// reports errLocked when another process holds it all that time.
func lockFile(f *os.File, wait time.Duration) error {
	for end := time.Now().Add(wait); ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		if time.Now().After(end) {
			return errLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}
