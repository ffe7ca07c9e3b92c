package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// defaultCompactAbove is the file size under which Open never compacts:
// below it the disk it would give back is not worth a copy at every start
// after a burst.
const defaultCompactAbove = 64 << 20

// compactSuffix names the file a compaction writes before it renames it
// over the journal.
const compactSuffix = ".compact"

// compactTxBytes bounds each transaction of a compaction, so that copying
// a large journal does not hold all of it in dirty pages at once.
const compactTxBytes = 16 << 20

// shouldCompact reports whether a file of fileSize bytes, of which live
// are in use, is worth compacting: it is over above, and over twice its
// live data. bbolt reuses freed pages, so a journal at its steady state
// has little free space; a file twice its live data is left by a burst
// (many executions unfinished at once, large bodies) or by a lower
// Retain, and would stay that large until the next burst.
func shouldCompact(fileSize, live, above int64) bool {
	return fileSize > above && fileSize > 2*live
}

// maybeCompact compacts db into a new file and renames it over db's when
// shouldCompact says so, and returns the database to use. The old file
// stays whole until the rename, which is atomic, so a crash at any point
// leaves one valid journal. When compaction fails before the rename, it
// logs why and goes on with the old file.
func (s *Store) maybeCompact(db *bolt.DB) (*bolt.DB, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open journal %s: %w", s.path, err)
	}
	// A writable transaction, rolled back, is how bbolt tells the size of
	// its freelist (in Stats); the file is not written.
	tx, err := db.Begin(true)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open journal %s: %w", s.path, err)
	}
	used := tx.Size()
	_ = tx.Rollback()
	live := used - int64(db.Stats().FreeAlloc)
	if !shouldCompact(fi.Size(), live, s.opts.compactAbove) {
		return db, nil
	}

	start := time.Now()
	tmp := s.path + compactSuffix
	if err := compactInto(tmp, db); err != nil {
		_ = os.Remove(tmp)
		s.logf("journal %s: compaction failed, keeping the file as it is: %v", s.path, err)
		return db, nil
	}
	if err := db.Close(); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("open journal %s: close it to compact: %w", s.path, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		_ = os.Remove(tmp)
		s.logf("journal %s: compaction failed, keeping the file as it is: %v", s.path, err)
	} else if err := syncDir(filepath.Dir(s.path)); err != nil {
		// The rename is done; only its durability is in doubt, and either
		// file is a valid journal.
		s.logf("journal %s: sync its directory after compaction: %v", s.path, err)
	}
	db, err = openChecked(s.path)
	if err != nil {
		return nil, err
	}
	if nfi, err := os.Stat(s.path); err == nil {
		s.logf("journal %s: compacted from %d to %d bytes in %v", s.path, fi.Size(), nfi.Size(), time.Since(start).Round(time.Millisecond))
	}
	return db, nil
}

// compactInto copies src's live data into a new file at path, synced.
func compactInto(path string, src *bolt.DB) error {
	dst, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, src, compactTxBytes); err != nil {
		_ = dst.Close()
		return err
	}
	// Compact's transactions are committed and synced; Close releases the
	// file.
	return dst.Close()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
