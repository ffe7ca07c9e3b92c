package journal

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/orchestro/orchestro/runtime/flow"
)

// Errors a caller branches on.
var (
	// ErrNotFound: the journal holds no execution of that id (it never
	// began, or retention dropped it).
	ErrNotFound = errors.New("execution not found")
	// ErrClosed: the Store is closed.
	ErrClosed = errors.New("journal closed")
)

// errLocked reports a journal another process holds.
var errLocked = errors.New("locked by another process")

// DefaultRetain is how many finished executions of a flow a Store keeps
// when Options.Retain is not set.
const DefaultRetain = 1000

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Retain is how many finished executions of each flow are kept, the
	// most recently started ones; DefaultRetain when 0 or less.
	// Unfinished executions are always kept.
	Retain int
	// Now is the clock, for records that carry no time; time.Now when nil.
	Now func() time.Time
	// OnCommit, when set, is called after each successful group commit
	// with its number of records and the time its write and fdatasync
	// took. It runs on the writer goroutine, after the batch's Commits are
	// resolved: it must be quick.
	OnCommit func(batch int, d time.Duration)
	// Logf, when set, receives what the Store does on its own: a torn
	// tail dropped at Open, a compaction, a failed commit.
	Logf func(format string, args ...any)

	// segmentSize and compactAbove override defaultSegmentSize and
	// defaultCompactAbove in tests.
	segmentSize, compactAbove int64
}

// Bounds of the write path and of the files.
const (
	// maxBatchRecords and maxBatchBytes bound one group commit, so that a
	// burst does not make the waits of a batch's first records grow
	// without limit.
	maxBatchRecords = 1000
	maxBatchBytes   = 4 << 20
	// maxQueuedBytes bounds the records queued and not yet committed: past
	// it, Begin, Intent, Step, Compensation and End wait for room. The
	// engine waits on some Commits of every execution, which bounds the
	// queue already; this bounds it when a disk is slower than the
	// executions that do not wait.
	maxQueuedBytes = 64 << 20
	// defaultSegmentSize is the size past which the writer starts a new
	// segment file.
	defaultSegmentSize = 16 << 20
	// defaultCompactAbove is the size of the log under which the writer
	// never copies records to compact it (see the package documentation).
	defaultCompactAbove = 64 << 20
	// lockTimeout is how long Open waits for another process to release
	// the journal.
	lockTimeout = time.Second
	// compactRetry is how long the writer waits after a failed compaction
	// before it tries again.
	compactRetry = time.Minute
)

// Store is a cell gateway's journal of flow executions: a log of segment
// files in one directory, and an index of it in memory. It implements
// flow.Journal, and reads executions back for recovery (Unfinished) and
// for the executions API and the CLI (Get, List). Its methods are safe for
// concurrent use.
type Store struct {
	dir  string
	opts Options
	lock *os.File

	// The queue, under mu.
	mu sync.Mutex
	// work wakes the writer when a batch is queued or the Store closes;
	// room wakes writers of records waiting for the queue to shrink.
	work, room sync.Cond
	// queue holds the batches not yet taken by the writer, oldest first;
	// records join the last one until it is full.
	queue []*batch
	// queued is the size of the records in queue and in the batch being
	// committed.
	queued int
	// live holds the executions that began and whose End is not durable
	// yet, so that records are checked and numbered in queue order.
	live    map[string]*liveExec
	closing bool
	// demand is set when someone waits for a queued batch, or the first
	// one is due (lazy): the writer commits the queue then.
	demand bool
	lazy   *time.Timer
	// committing is the batch the writer is committing.
	committing *batch
	// failed is set by the first failed commit: every later record fails
	// with it, since committing a later record without an earlier one
	// would break the rule that a crash loses only a suffix.
	failed error

	// writerDone is closed when the writer goroutine returns.
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	// The index of what is durable, under idx. Only the writer goroutine
	// changes it once Open returns; readers hold idx for reading while
	// they read frames, so that no segment they read is removed meanwhile.
	idx sync.RWMutex
	// entries holds every execution kept, by id.
	entries map[string]*entry
	// finished holds the ended executions of each flow, by start time
	// (then id): the order retention drops them in.
	finished map[string][]*entry
	// segs are the segment files, oldest first; the writer appends to the
	// last.
	segs []*segment
	// total is the size of every segment; liveBytes the size of the frames
	// of the executions kept.
	total, liveBytes int64

	// For the writer alone: compactAfter holds compaction back after one
	// failed; spare delivers the next segment once one is being prepared.
	compactAfter time.Time
	spare        chan spareResult
}

var _ flow.Journal = (*Store)(nil)

// liveExec is an execution that began and whose End is not durable.
type liveExec struct {
	// Set at Begin, read-only afterwards.
	id      string
	flow    string
	started time.Time
	async   bool

	// seq is the number of the next record and ended is set when End is
	// queued; both under Store.mu.
	seq   uint32
	ended bool
}

// entry is the index of one execution: what List shows, and where its
// records are.
type entry struct {
	sum   Summary
	ended bool
	// recs are where its records are, by their number in the execution.
	recs []loc
}

// loc is where one frame is.
type loc struct {
	seg *segment
	off int64
	n   int64
}

// Close commits the records already queued, stops the writer and closes
// the files. Records queued after Close begins fail with ErrClosed, as do
// reads after it ends. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.work.Signal()
		s.room.Broadcast()
		s.mu.Unlock()
		<-s.writerDone
		s.lazy.Stop()
		s.dropSpare()

		s.idx.Lock()
		defer s.idx.Unlock()
		var errs []error
		for _, seg := range s.segs {
			errs = append(errs, seg.f.Close())
		}
		s.segs, s.entries, s.finished = nil, nil, nil
		errs = append(errs, s.lock.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close journal %s: %w", s.dir, err)
		}
	})
	return s.closeErr
}

// Dir is the directory the Store keeps.
func (s *Store) Dir() string { return s.dir }

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}
