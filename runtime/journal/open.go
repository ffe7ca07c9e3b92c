package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Open opens the journal at path, creating it (and its directory) when
// it does not exist, and starts its writer. A file that is not a journal,
// is corrupt, is locked by another process for over a second, or cannot be
// read makes Open fail with an error naming path; Open never deletes or
// rewrites such a file. A file much larger than its live data is compacted
// first (see the package documentation).
func Open(path string, opts Options) (*Store, error) {
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.compactAbove == 0 {
		opts.compactAbove = defaultCompactAbove
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	s := &Store{
		path:       path,
		opts:       opts,
		live:       make(map[string]*liveExec),
		finished:   make(map[string]int),
		writerDone: make(chan struct{}),
	}
	s.work.L = &s.mu
	s.room.L = &s.mu

	db, err := openChecked(path)
	if err != nil {
		return nil, err
	}
	// Our own leftover of a compaction that was interrupted; we hold the
	// journal's lock, so no other process is compacting.
	if err := os.Remove(path + compactSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.logf("journal %s: remove the leftover of a compaction: %v", path, err)
	}
	if db, err = s.maybeCompact(db); err != nil {
		return nil, err
	}
	s.db = db
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	go s.write()
	return s, nil
}

// openChecked opens the bbolt file at path and checks it all (see
// verify). A corrupt file can make bbolt panic or read outside its
// mapping; both become an error here, since the gateway goes on without a
// journal rather than crash.
func openChecked(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if db != nil {
			_ = db.Close()
		}
		db = nil
		if _, fault := r.(interface{ Addr() uintptr }); fault {
			err = fmt.Errorf("open journal %s: corrupt file: read outside the file (truncated?): %v", path, r)
		} else {
			err = fmt.Errorf("open journal %s: corrupt file: %v", path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open journal %s: locked by another process for over %v", path, lockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open journal %s: not a journal or corrupt: %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if err := verify(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open journal %s: corrupt file: %w", path, err)
	}
	return db, nil
}

// verify checks the whole file before the Store writes to it: that the
// file holds every page its meta page counts, that every page of every
// bucket and every value can be read (with faults turned into panics by
// the caller), and bbolt's own consistency check (every page reachable
// or free, once; keys in order). A gateway opens its journal once, and
// the journal is bounded (see the package documentation), so reading it
// all is cheap; writing to a corrupt file could spread the damage.
func verify(db *bolt.DB) error {
	fi, err := os.Stat(db.Path())
	if err != nil {
		return err
	}
	readAhead(db.Path())
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("truncated: %d bytes, its meta page counts %d", fi.Size(), tx.Size())
		}
		var sum byte
		err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			sum ^= touchBucket(b)
			return nil
		})
		goruntime.KeepAlive(sum)
		if err != nil {
			return err
		}
		// Read the channel to its end: the check reads the transaction's
		// pages until it closes it.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}

// readAhead reads the file at path from start to end and drops what it
// reads, so that the walk of verify finds its pages in the page cache: a
// walk of a cold mmap reads one page at a time, in tree order (8 s for
// a 350 MB journal on a virtual disk, against 0.6 s read in order). A
// failure is left for the walk to find.
func readAhead(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
	}
}

// touchBucket reads every key of b and its nested buckets, and the first
// and last byte of every value, so that every page of the bucket is read:
// its branch and leaf pages, and the overflow pages of large values (a
// truncated file loses the last ones first).
func touchBucket(b *bolt.Bucket) byte {
	var sum byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				sum ^= touchBucket(nb)
			}
			continue
		}
		if len(v) > 0 {
			sum ^= v[0] ^ v[len(v)-1]
		}
	}
	return sum
}

// pendingValue is the value of an execution in bucketUnfinished.
type pendingValue struct {
	Flow    string    `json:"flow"`
	Started time.Time `json:"started"`
}

// load creates the buckets of a new file, checks the layout version, and
// rebuilds what the Store keeps in memory: the executions not ended, with
// the number of their next record, and the count of finished executions
// of each flow.
func (s *Store) load() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyVersion); {
		case v == nil:
			if err := meta.Put(keyVersion, []byte(layoutVersion)); err != nil {
				return err
			}
		case string(v) != layoutVersion:
			return fmt.Errorf("layout version %q, this gateway reads %q", v, layoutVersion)
		}
		for _, name := range [][]byte{bucketRecords, bucketIDs, bucketUnfinished, bucketStarted, bucketFlows} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		bk := bucketsOf(tx)
		err := bk.unfinished.ForEach(func(k, v []byte) error {
			ex, err := loadLive(bk, string(k), v)
			if err != nil {
				return fmt.Errorf("unfinished execution %q: %w", k, err)
			}
			s.live[ex.id] = ex
			return nil
		})
		if err != nil {
			return err
		}
		return bk.flows.ForEach(func(k, _ []byte) error {
			flowName, skey, err := splitFlowKey(k)
			if err != nil {
				return err
			}
			if bk.unfinished.Get(skey[8:]) == nil {
				s.finished[flowName]++
			}
			return nil
		})
	})
}

// loadLive rebuilds an unfinished execution from its entries.
func loadLive(bk buckets, id string, v []byte) (*liveExec, error) {
	var p pendingValue
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, err
	}
	ex := &liveExec{id: id, flow: p.Flow, started: p.Started, skey: bk.startedKey([]byte(id))}
	if ex.skey == nil {
		return nil, errors.New("not in the id index")
	}
	sv := bk.started.Get(ex.skey)
	if sv == nil {
		return nil, errors.New("no index entry")
	}
	var sum Summary
	if err := json.Unmarshal(sv, &sum); err != nil {
		return nil, fmt.Errorf("index entry: %w", err)
	}
	ex.async = sum.Async
	ex.compensating = sum.State == Compensating
	// The last record is the one before the first key past the prefix.
	prefix := recordPrefix(ex.skey)
	c := bk.records.Cursor()
	k, _ := c.Seek(prefixEnd(prefix))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k == nil {
		return nil, errors.New("no records")
	}
	seq, _, err := parseRecordKey(prefix, k)
	if err != nil {
		return nil, errors.New("no records")
	}
	ex.seq = seq + 1
	return ex, nil
}

// buckets are the layout's buckets in one transaction.
type buckets struct {
	records, ids, unfinished, started, flows *bolt.Bucket
}

func bucketsOf(tx *bolt.Tx) buckets {
	return buckets{
		records:    tx.Bucket(bucketRecords),
		ids:        tx.Bucket(bucketIDs),
		unfinished: tx.Bucket(bucketUnfinished),
		started:    tx.Bucket(bucketStarted),
		flows:      tx.Bucket(bucketFlows),
	}
}
