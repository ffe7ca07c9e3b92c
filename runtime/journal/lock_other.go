//go:build !unix

package journal

import (
	"os"
	"time"
)

// lockFile does nothing where flock(2) does not exist: the journal runs in
// a gateway, on Linux; elsewhere it serves tests and tools.
func lockFile(*os.File, time.Duration) error { return nil }
