package image

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileDigest: the digest is the file's SHA-256, kept under the file's
// identity, so the next run reads it instead of hashing; a file written
// again (a new modification time) is hashed again; one just written is
// not kept.
func TestFileDigest(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "orchestro")
	write := func(content string, mtime time.Time) string {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		return hex.EncodeToString(sum[:])
	}
	kept := func() string {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return digestPath(path, fi)
	}

	old := time.Now().Add(-time.Hour)
	want := write("binary one", old)
	if got, err := fileDigest(path); err != nil || got != want {
		t.Fatalf("fileDigest = %q, %v; want %q", got, err, want)
	}
	// The next call reads what was kept: make it recognisable.
	fake := hex.EncodeToString(make([]byte, sha256.Size))
	if err := os.WriteFile(kept(), []byte(fake), 0o644); err != nil {
		t.Fatalf("the digest was not kept: %v", err)
	}
	if got, _ := fileDigest(path); got != fake {
		t.Errorf("fileDigest = %q, want the kept %q", got, fake)
	}

	// Written again, same size: a new identity, hashed again.
	want = write("binary two", old.Add(time.Minute))
	if got, err := fileDigest(path); err != nil || got != want {
		t.Errorf("after a rewrite fileDigest = %q, %v; want %q", got, err, want)
	}

	// Just written: hashed, not kept.
	want = write("binary three", time.Now())
	if got, err := fileDigest(path); err != nil || got != want {
		t.Errorf("fileDigest = %q, %v; want %q", got, err, want)
	}
	if _, err := os.Stat(kept()); err == nil {
		t.Error("the digest of a file written a moment ago was kept")
	}
}
