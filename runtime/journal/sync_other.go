//go:build !linux

package journal

import "os"

// fdatasync makes f's data durable; elsewhere than Linux, with Sync.
func fdatasync(f *os.File) error { return f.Sync() }
